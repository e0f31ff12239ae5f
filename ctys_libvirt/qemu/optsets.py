"""When QEMU options appeared and disappeared (x86 system emulator), for two jobs:
a synthetic option set for ``--qemu-version X.Y.Z`` (no binary at hand) and lint
messages that name the release that removed an option and its replacement.

Sources: QEMU's removed-features documentation (docs/about/removed-features.rst) and
the help texts rendered from each release's qemu-options.hx (0.9.0 .. 10.2, see
tests/fakeqemu/help); versions are (major, minor, micro).

Two different facts are kept apart: HISTORY says when QEMU *accepted* an option,
HIDDEN says from when it was still accepted but no longer *listed* in ``-h`` (its
help text was emptied: ``-localtime`` from 0.12, the slirp shorthands, ``-M``)."""
from __future__ import annotations

from typing import Dict, FrozenSet, Optional, Tuple

Version = Tuple[int, int, int]
NEVER: Optional[Version] = None

# option -> (first release listing it, first release NOT listing it / None)
HISTORY: Dict[str, Tuple[Version, Optional[Version]]] = {
    "-h": ((0, 9, 0), None), "-help": ((0, 10, 50), None), "-version": ((0, 10, 50), None),
    "-M": ((0, 9, 0), None), "-machine": ((0, 15, 0), None), "-cpu": ((0, 9, 1), None),
    "-accel": ((2, 10, 0), None), "-smp": ((0, 9, 0), None), "-m": ((0, 9, 0), None),
    "-fda": ((0, 9, 0), None), "-fdb": ((0, 9, 0), None), "-hda": ((0, 9, 0), None),
    "-hdb": ((0, 9, 0), None), "-hdc": ((0, 9, 0), None), "-hdd": ((0, 9, 0), None),
    "-cdrom": ((0, 9, 0), None), "-drive": ((0, 9, 1), None), "-boot": ((0, 9, 0), None),
    "-snapshot": ((0, 9, 0), None), "-no-fd-bootchk": ((0, 9, 0), None),
    "-nographic": ((0, 9, 0), None), "-k": ((0, 9, 0), None),
    "-audio-help": ((0, 9, 0), (8, 2, 0)), "-soundhw": ((0, 9, 0), (7, 1, 0)),
    "-localtime": ((0, 9, 0), (3, 1, 0)), "-full-screen": ((0, 9, 0), None),
    "-win2k-hack": ((0, 9, 0), None), "-usb": ((0, 9, 0), None),
    "-usbdevice": ((0, 9, 0), None), "-name": ((0, 9, 0), None), "-uuid": ((0, 10, 0), None),
    "-net": ((0, 9, 0), None), "-netdev": ((0, 12, 0), None), "-nic": ((2, 12, 0), None),
    "-device": ((0, 12, 0), None), "-chardev": ((0, 12, 0), None),
    "-tftp": ((0, 9, 0), (3, 1, 0)), "-bootp": ((0, 9, 1), (3, 1, 0)),
    "-smb": ((0, 9, 0), (3, 1, 0)), "-redir": ((0, 9, 0), (3, 1, 0)),
    "-kernel": ((0, 9, 0), None), "-append": ((0, 9, 0), None), "-initrd": ((0, 9, 0), None),
    "-monitor": ((0, 9, 0), None), "-qmp": ((0, 12, 0), None), "-mon": ((0, 12, 0), None),
    "-serial": ((0, 9, 0), None), "-parallel": ((0, 9, 0), None),
    "-pidfile": ((0, 9, 0), None), "-S": ((0, 9, 0), None), "-s": ((0, 9, 0), None),
    "-p": ((0, 9, 0), (0, 10, 50)), "-gdb": ((0, 10, 0), None), "-d": ((0, 9, 0), None),
    "-hdachs": ((0, 9, 0), (2, 12, 0)), "-L": ((0, 9, 0), None), "-bios": ((0, 10, 0), None),
    "-std-vga": ((0, 9, 0), (0, 10, 0)), "-vga": ((0, 10, 0), None),
    "-no-acpi": ((0, 9, 0), (9, 0, 0)), "-no-hpet": ((0, 10, 0), (9, 0, 0)),
    "-no-reboot": ((0, 9, 0), None), "-no-shutdown": ((0, 9, 1), None),
    "-loadvm": ((0, 9, 0), None), "-vnc": ((0, 9, 0), None), "-daemonize": ((0, 9, 0), None),
    "-option-rom": ((0, 9, 0), None), "-clock": ((0, 9, 1), (2, 1, 0)),
    "-rtc": ((0, 12, 0), None), "-incoming": ((0, 10, 0), None),
    "-nodefaults": ((0, 12, 0), None), "-chroot": ((0, 10, 0), (9, 0, 0)),
    "-runas": ((0, 10, 0), (10, 0, 0)), "-no-quit": ((0, 9, 0), (7, 0, 0)),
    "-alt-grab": ((0, 9, 1), (7, 1, 0)), "-ctrl-grab": ((0, 11, 0), (7, 1, 0)),
    "-no-frame": ((0, 9, 0), (4, 0, 0)), "-sdl": ((0, 10, 0), (7, 1, 0)),
    "-curses": ((0, 9, 1), (7, 1, 0)), "-display": ((0, 15, 0), None),
    "-portrait": ((0, 9, 0), (9, 2, 0)), "-enable-kvm": ((0, 10, 0), None),
    # 0.9-0.10 used kqemu unless -no-kqemu; 0.11 only with -enable-kqemu; 0.12 dropped it
    "-no-kqemu": ((0, 9, 0), (0, 11, 0)), "-kernel-kqemu": ((0, 9, 0), (0, 12, 0)),
    "-enable-kqemu": ((0, 11, 0), (0, 12, 0)),
    "-balloon": ((0, 10, 50), (3, 1, 0)), "-icount": ((0, 9, 1), None),
    "-echr": ((0, 10, 0), None),
    "-object": ((1, 3, 0), None), "-blockdev": ((2, 9, 0), None),
}

# option -> first release that still accepts it but no longer lists it in -h
HIDDEN: Dict[str, Version] = {
    "-localtime": (0, 12, 0),            # replaced by -rtc base=localtime
    "-tftp": (0, 10, 50), "-bootp": (0, 10, 50), "-smb": (0, 10, 50), "-redir": (0, 10, 50),
    "-M": (0, 15, 0),                    # listed as -machine since
}

# Options only qemu-kvm fork builds list (kvm-NN, qemu-kvm-0.x .. 1.2).
KVM_FORK_OPTIONS = frozenset({"-no-kvm", "-no-kvm-irqchip", "-no-kvm-pit",
                              "-no-kvm-pit-reinjection", "-kvm-shadow-memory", "-tdf"})
KQEMU_OPTIONS = frozenset({"-no-kqemu", "-kernel-kqemu", "-enable-kqemu"})

# What to use instead, for lint messages.
REPLACEMENT: Dict[str, str] = {
    "-localtime": "-rtc base=localtime",
    "-soundhw": "-device AC97 / -audio",
    "-no-kvm": "-accel tcg",
    "-sdl": "-display sdl",
    "-curses": "-display curses",
    "-no-acpi": "-machine acpi=off",
    "-no-hpet": "-machine hpet=off",
    "-chroot": "-run-with chroot=DIR",
    "-runas": "-run-with user=USER",
    "-std-vga": "-vga std",
    "-no-quit": "-display sdl,window-close=off",
    "-balloon": "-device virtio-balloon",
    "-redir": "-netdev user,hostfwd=...",
    "-usbdevice": "-device usb-tablet / usb-storage",
    "-no-kqemu": "nothing (KQEMU was removed in 0.12)",
    "-kernel-kqemu": "nothing (KQEMU was removed in 0.12)",
    "-enable-kqemu": "nothing (KQEMU was removed in 0.12)",
    "-tftp": "-netdev user,tftp=DIR",
    "-smb": "-netdev user,smb=DIR",
    "-bootp": "-netdev user,bootfile=FILE",
}
# Listed, but deprecated: warn even when the binary accepts them.
DEPRECATED: Dict[str, Tuple[Version, str]] = {
    "-usbdevice": ((2, 10, 0), "-device usb-tablet / usb-storage"),
}


def vstr(v: Version) -> str:
    return "%d.%d.%d" % v


def option_set(version: Version, *, kvm_fork: bool = False, kqemu: bool = False) -> FrozenSet[str]:
    """The options a QEMU ``version`` build lists in ``-h`` (synthetic probe)."""
    opts = {o for o in HISTORY if accepts(o, version) and not (o in HIDDEN and version >= HIDDEN[o])}
    if not kqemu:
        opts -= KQEMU_OPTIONS
    if kvm_fork and version < (1, 3, 0):
        opts |= KVM_FORK_OPTIONS
    return frozenset(opts)


def accepts(option: str, version: Version) -> bool:
    """Whether a QEMU ``version`` build accepts ``option`` (listed in -h or hidden)."""
    rng = HISTORY.get(option)
    return rng is not None and rng[0] <= version and (rng[1] is None or version < rng[1])


def hidden_accepted(option: str, version: Version) -> bool:
    """Accepted by ``version`` although its ``-h`` does not list it (lint must not call
    such an option unknown: ``-M pc`` on 7.2, ``-localtime`` on 0.12)."""
    return option in HIDDEN and version >= HIDDEN[option] and accepts(option, version)


def removed_in(option: str) -> Optional[Version]:
    rng = HISTORY.get(option)
    if rng is None:
        if option in KVM_FORK_OPTIONS:
            return (1, 3, 0)  # qemu-kvm merged back into QEMU 1.3
        return None
    return rng[1]
