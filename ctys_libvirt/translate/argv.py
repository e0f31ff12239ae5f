"""MachinePlan + probed QEMU -> argv list for the direct backend (never a shell string).

The spelling is chosen by what the binary lists in ``-h`` (exact tokens), not by the
version number alone:

* disks: ``-drive file=..,format=..,if=ide,index=N,media=disk|cdrom`` when ``-drive``,
  ``-netdev`` and ``-device`` are listed (0.12+), else ``-hda..-hdd/-cdrom/-fda/-fdb``
  and ``-usb -usbdevice disk:PATH``;
* NIC: ``-netdev user,id=n0 -device MODEL,netdev=n0,mac=..`` vs
  ``-net nic,macaddr=..,model=.. -net user`` (``-net vde,sock=..`` only when asked);
* boot: ``-boot order=..`` vs ``-boot c|d|a|n``;
* clock: ``-rtc base=localtime`` vs ``-localtime``; VGA: ``-vga T`` vs ``-std-vga``;
* accelerator: ``-accel kvm|tcg`` / ``-enable-kvm`` or ``-machine accel=tcg`` (0.15-2.9) /
  fork builds (KVM implicit, ``-no-kvm`` for TCG) / ``-kernel-kqemu`` / ``-no-kqemu``;
* display: ``-vnc 127.0.0.1:N``, ``-display none|sdl`` (``-nographic`` where no ``-display``);
* monitor: QMP (``-qmp``, 0.13+) else HMP (``-monitor``), on a unix socket in the runtime
  dir; ``server=on,wait=off`` from 6.0 (short booleans deprecated).

Legacy defects fixed: CD goes to ``-cdrom``, FDD to ``-fda``, APPEND is emitted, CONSOLE
NONE keeps disks and ARGSADD, CLI0 is a real foreground ``-nographic`` console."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from ctys_libvirt.errors import BackendError, ConfError, UsageError
from ctys_libvirt.model import ConsoleType
from ctys_libvirt.qemu.lint import lint_findings
from ctys_libvirt.qemu.probe import QemuProbe
from ctys_libvirt.qemu.runtime import RuntimeDirs
from ctys_libvirt.translate.plan import MachinePlan, PlanDisk

# ctys NIC model -> QEMU -device name (modern spelling)
NIC_DEVICE = {"virtio": "virtio-net-pci", "ne2k_pci": "ne2k_pci", "rtl8139": "rtl8139",
              "e1000": "e1000", "pcnet": "pcnet", "i82551": "i82551", "i82557b": "i82557b",
              "i82559er": "i82559er", "ne2k_isa": "ne2k_isa", "smc91c111": "smc91c111"}
_BOOT_LETTER = {"hd": "c", "cdrom": "d", "fd": "a", "network": "n"}
_IDE_INDEX = {"hda": 0, "hdb": 1, "hdc": 2, "hdd": 3}


@dataclass
class ArgvResult:
    argv: List[str]
    warnings: List[str] = field(default_factory=list)
    monitor_kind: str = "hmp"            # hmp | qmp
    monitor_path: Optional[str] = None
    serial: Optional[str] = None         # serial log file or socket
    vnc_display: Optional[int] = None
    modern: bool = True


def _esc(path: str) -> str:
    """QEMU option values: a comma is written as two commas."""
    return str(path).replace(",", ",,")


def _initrd(plan: MachinePlan, probe: QemuProbe) -> str:
    """-initrd is taken as is, except by QEMU's multiboot loader: it splits the value into
    modules at ',' (',,' is a literal comma since get_opt_value parses it) and treats text
    after a blank as the module's command line, which no escape avoids."""
    path = str(plan.kernel.initrd)
    if not plan.kernel_multiboot or (" " not in path and "," not in path):
        return path
    if " " in path or probe.version < (1, 0, 0):
        raise ConfError(
            f"{plan.name}: multiboot module {path} has a {'blank' if ' ' in path else 'comma'} in "
            f"its path, which QEMU {probe.version_text}'s multiboot loader splits on "
            "(',' separates modules, a blank starts the module's command line)",
            hint="move or symlink the module to a path without blanks"
                 + (" and commas" if probe.version < (1, 0, 0) else ""))
    return _esc(path)


def is_modern(probe: QemuProbe) -> bool:
    return all(probe.has(o) for o in ("-drive", "-netdev", "-device"))


def _sockopt(probe: QemuProbe) -> str:
    return "server=on,wait=off" if probe.version >= (6, 0, 0) else "server,nowait"


def _accel(plan: MachinePlan, probe: QemuProbe, out: List[str], warn: List[str]) -> bool:
    """Append the accelerator options; True when the guest runs on KVM."""
    acc = plan.accelerator
    if acc == "KQEMU":
        if not probe.kqemu_capable:
            raise BackendError(
                f"{plan.name}: ACCELERATOR=KQEMU but QEMU {probe.version_text} ({probe.path}) has no "
                "KQEMU support (-kernel-kqemu/-no-kqemu not listed; KQEMU ended with 0.11)",
                hint="use a 0.9-0.11 build with kqemu, or set ACCELERATOR=QEMU")
        if not probe.kqemu_present:
            raise BackendError(f"{plan.name}: ACCELERATOR=KQEMU but /dev/kqemu does not exist",
                               hint="load the kqemu module (modprobe kqemu) or set ACCELERATOR=QEMU")
        out.append("-kernel-kqemu" if probe.has("-kernel-kqemu") else "-enable-kqemu")
        return False
    want_kvm = acc == "KVM"
    if want_kvm and "KVM" not in probe.accelerators:
        warn.append(f"{plan.name}: ACCELERATOR=KVM but KVM is not usable with QEMU "
                    f"{probe.version_text} ({'no usable /dev/kvm' if not probe.kvm_usable else 'no KVM option'}); using TCG")
        want_kvm = False
    if probe.has("-no-kqemu"):
        out.append("-no-kqemu")  # never use kqemu implicitly (0.9-0.11 builds)
    if probe.is_kvm_fork:
        if not want_kvm:
            out.append("-no-kvm")
        return want_kvm  # fork builds use KVM by default
    if probe.has("-accel"):
        out += ["-accel", "kvm" if want_kvm else "tcg"]
    elif want_kvm and probe.has("-enable-kvm"):
        out.append("-enable-kvm")
    elif not want_kvm and probe.has("-machine"):
        # 0.15-2.9 without -accel: say TCG explicitly, the default is the build's choice
        # (RHEL 7's qemu-kvm 1.5.3 defaults to "kvm:tcg" although its -h says tcg)
        out += ["-machine", "accel=tcg"]
    return want_kvm


def _cpu(plan: MachinePlan, probe: QemuProbe, kvm: bool, warn: List[str]) -> Optional[str]:
    """The -cpu value: CPU=host needs KVM; QEMU refuses it under TCG/KQEMU, where
    'max' (2.9+) is the nearest, or the build's default model before that."""
    if plan.cpu != "host" or kvm:
        return plan.cpu
    if probe.version >= (2, 9, 0):
        warn.append(f"{plan.name}: CPU=host needs KVM; using -cpu max under TCG")
        return "max"
    warn.append(f"{plan.name}: CPU=host needs KVM; QEMU {probe.version_text} under TCG "
                "uses its default CPU model")
    return None


def _vga(plan: MachinePlan, probe: QemuProbe, out: List[str], warn: List[str]) -> None:
    if not plan.vga:
        return
    if probe.has("-vga"):
        out += ["-vga", plan.vga]
    elif plan.vga == "std" and probe.has("-std-vga"):
        out.append("-std-vga")
    elif plan.vga == "cirrus":
        pass  # the default card of every pre-0.10 build
    else:
        warn.append(f"VGADRIVER {plan.vga}: QEMU {probe.version_text} lists neither -vga nor a "
                    "matching option; using its default card")


def _legacy_disk(d: PlanDisk, out: List[str]) -> None:
    if d.role == "hdc" and d.device == "cdrom":
        out += ["-cdrom", d.path]
    elif d.role in ("usb", "usb1"):
        out += ["-usbdevice", f"disk:{d.path}"]
    else:
        out += [f"-{d.role}", d.path]


def _modern_disk(d: PlanDisk, out: List[str], n: int, bootindex: bool = True) -> None:
    if d.role in ("usb", "usb1"):
        did = f"usbdisk{n}"
        out += ["-drive", f"file={_esc(d.path)},format={d.format},if=none,id={did}"]
        dev = f"usb-storage,drive={did}"
        if d.boot_order is not None and bootindex:   # the property exists since QEMU 0.14
            dev += f",bootindex={d.boot_order}"
        out += ["-device", dev]
        return
    if d.role in ("fda", "fdb"):
        spec = f"file={_esc(d.path)},format={d.format},if=floppy,index={0 if d.role == 'fda' else 1}"
    else:
        media = "cdrom" if d.device == "cdrom" else "disk"
        spec = f"file={_esc(d.path)},format={d.format},if=ide,index={_IDE_INDEX[d.role]},media={media}"
    out += ["-drive", spec]


def parse_network(network: str) -> Tuple[str, str]:
    """The direct backend's ``--network``: ``user`` | ``vde:SOCKETDIR`` | ``tap[:IFNAME]``."""
    kind, _, arg = (network or "user").partition(":")
    if kind not in ("user", "vde", "tap") or (kind == "user" and arg) or (kind == "vde" and not arg):
        raise UsageError(f"--network {network!r} is not user, vde:SOCKETDIR or tap[:IFNAME]",
                         hint="e.g. --network user, --network vde:/var/tmp/vde_switch0.$USER")
    return kind, arg


def _nic(plan: MachinePlan, probe: QemuProbe, modern: bool, network: str, out: List[str]) -> None:
    nic = plan.nic
    if nic is None:
        out += ["-net", "none"]
        return
    kind, arg = parse_network(network)
    if modern:
        if kind == "vde":
            out += ["-netdev", f"vde,id=n0,sock={_esc(arg)}"]
        elif kind == "tap":
            out += ["-netdev", "tap,id=n0" + (f",ifname={_esc(arg)}" if arg else "")]
        else:
            out += ["-netdev", "user,id=n0"]
        dev = f"{NIC_DEVICE.get(nic.model, nic.model)},netdev=n0"
        if nic.mac:
            dev += f",mac={nic.mac}"
        out += ["-device", dev]
        return
    spec = "nic"
    if nic.mac:
        spec += f",macaddr={nic.mac}"
    spec += f",model={nic.model}"
    out += ["-net", spec]
    if kind == "vde":
        out += ["-net", f"vde,sock={_esc(arg)}"]
    elif kind == "tap":
        out += ["-net", "tap" + (f",ifname={_esc(arg)}" if arg else "")]
    else:
        out += ["-net", "user"]


def build_argv_result(plan: MachinePlan, probe: QemuProbe, *, runtime: Optional[RuntimeDirs] = None,
                      daemonize: bool = True, strict: bool = False, network: str = "user",
                      vnc_display: Optional[int] = None, incoming: Optional[str] = None,
                      serial_log: Optional[str] = None, supervised: bool = False,
                      run_as: Optional[str] = None, sandbox: Optional[str] = None) -> ArgvResult:
    """The full argv plus what the backend needs to know about it.  ``serial_log``: where a
    headless/VNC/SDL guest's serial goes instead of the runtime dir's serial.log (the
    serial consoles keep their socket).  ``supervised``: the backend starts QEMU detached
    itself and knows its pid (no -daemonize, no -pidfile: a sandboxed QEMU may not fork);
    ``run_as``: ``-runas USER``; ``sandbox``: the ``-sandbox`` value."""
    rt = runtime or RuntimeDirs.for_label(plan.name)
    warn: List[str] = list(plan.warnings)
    modern = is_modern(probe)
    if supervised:
        daemonize = False
    for need in ("-pidfile", "-serial", "-daemonize"):
        if daemonize and not probe.has(need):
            raise BackendError(f"QEMU {probe.version_text} ({probe.path}) does not list {need}",
                               hint="the direct backend needs it; use another binary with --qemu")
    a: List[str] = [probe.path]
    a += ["-name", plan.name]
    if probe.has("-uuid"):
        a += ["-uuid", plan.uuid_dashed]
    if plan.qemubios:
        a += ["-L", plan.qemubios]
    kvm = _accel(plan, probe, a, warn)
    a += ["-m", str(plan.memory_mib)]
    a += ["-smp", str(plan.smp)]
    cpu = _cpu(plan, probe, kvm, warn)
    if probe.has("-cpu") and cpu:
        a += ["-cpu", cpu]
    _vga(plan, probe, a, warn)
    if plan.localtime:
        if probe.has("-rtc"):
            a += ["-rtc", "base=localtime"]
        elif probe.has("-localtime"):
            a.append("-localtime")
        else:
            warn.append(f"QEMU {probe.version_text} lists neither -rtc nor -localtime; clock stays UTC")
    a += list(plan.timeopt_args)
    if plan.keymap and probe.has("-k"):
        a += ["-k", plan.keymap]
    # media
    usb_started = False
    for n, d in enumerate(plan.disks):
        if d.role in ("usb", "usb1") and not usb_started:
            a.append("-usb")
            usb_started = True
        (_modern_disk(d, a, n, probe.version >= (0, 14, 0)) if modern else _legacy_disk(d, a))
    if plan.boot_order:
        letters = "".join(dict.fromkeys(_BOOT_LETTER[k] for k in plan.boot_order))
        if modern and probe.version >= (0, 12, 0):
            a += ["-boot", f"order={letters}"]
        else:
            a += ["-boot", letters[0]]
    _nic(plan, probe, modern, network, a)
    if plan.kernel:
        a += ["-kernel", str(plan.kernel.kernel)]
        if plan.kernel.initrd:
            a += ["-initrd", _initrd(plan, probe)]
        if plan.kernel.append:
            a += ["-append", plan.kernel.append]
    # console
    console = plan.console
    serial: Optional[str] = None
    display = vnc_display if vnc_display is not None else plan.vnc_display
    res_vnc = None
    foreground_cli0 = console is ConsoleType.CLI0 and not daemonize and not supervised
    if console is ConsoleType.VNC:
        if display is None:
            raise UsageError(f"{plan.name}: CONSOLE VNC needs a display number",
                             hint="give CONSOLE:VNC:<N> or let the backend pick one")
        a += ["-vnc", f"127.0.0.1:{display}"]
        res_vnc = display
    elif console is ConsoleType.SDL:
        if probe.has("-display"):
            a += ["-display", "sdl"]
        elif probe.has("-no-quit"):
            a.append("-no-quit")
    elif foreground_cli0:
        a.append("-nographic")
    elif console.is_serial and vnc_display is not None and probe.has("-vnc"):
        # the manual: CLI, XTERM, GTERM and EMACS* also get the VNC port for later attachment
        a += ["-vnc", f"127.0.0.1:{vnc_display}"]
        res_vnc = vnc_display
    else:  # NONE and the serial consoles: headless
        if probe.has("-display"):
            a += ["-display", "none"]
        else:
            a.append("-nographic")
    sock = _sockopt(probe)
    if foreground_cli0:
        serial = "stdio"
    elif console.is_serial:
        serial = str(rt.serial_sock)
        a += ["-serial", f"unix:{_esc(serial)},{sock}"]
    else:
        # file: takes the rest of the value as the path, verbatim (no ',,' escaping)
        serial = str(serial_log or rt.serial_log)
        a += ["-serial", f"file:{serial}"]
    use_qmp = probe.has("-qmp") and probe.version >= (0, 13, 0)
    mon = str(rt.qmp if use_qmp else rt.monitor)
    a += ["-qmp" if use_qmp else "-monitor", f"unix:{_esc(mon)},{sock}"]
    if not supervised:
        a += ["-pidfile", str(rt.pidfile)]
    if daemonize and not foreground_cli0:
        a.append("-daemonize")
    if run_as:
        a += ["-runas", run_as]
    if sandbox:
        a += ["-sandbox", sandbox]
    if incoming:
        if not probe.has("-incoming"):
            raise BackendError(f"QEMU {probe.version_text} ({probe.path}) has no -incoming: cannot RESUME",
                               hint="resume needs QEMU 0.10 or newer")
        a += ["-incoming", incoming]
    # ARGSADD last, verbatim, linted
    findings = lint_findings(list(plan.timeopt_args) + list(plan.argsadd), probe)
    errors = [m for sev, m in findings if sev == "error"]
    if errors and strict:
        raise UsageError(errors[0] + (f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""),
                         hint="fix ARGSADD or drop --strict")
    warn += [m for _sev, m in findings]
    a += _without_our_options(plan.argsadd, warn)
    return ArgvResult(argv=a, warnings=warn, monitor_kind="qmp" if use_qmp else "hmp",
                      monitor_path=mon, serial=serial, vnc_display=res_vnc, modern=modern)


# How QEMU runs is the backend's: ARGSADD never replaces our pidfile or daemonize, nor the
# user, sandbox or root directory (the ARGSADD policy refuses them first; this keeps the
# backend robust when a policy allows them).  Option -> takes an argument.
OUR_OPTIONS = {"-daemonize": False, "-pidfile": True, "-runas": True, "-run-with": True,
               "-sandbox": True, "-chroot": True}


def _without_our_options(words, warn: List[str]) -> List[str]:
    out: List[str] = []
    i = 0
    words = list(words)
    while i < len(words):
        w = words[i]
        key = "-" + w.lstrip("-") if w.startswith("-") else w
        if key in OUR_OPTIONS:
            n = 2 if OUR_OPTIONS[key] else 1
            warn.append(f"ARGSADD {' '.join(words[i:i + n])} dropped: the direct backend decides "
                        f"{key} itself")
            i += n
            continue
        out.append(w)
        i += 1
    return out


def sandbox_value(probe: QemuProbe) -> Optional[str]:
    """The -sandbox argument this binary understands (libvirt's set where it has the
    suboptions, QEMU 2.11+), None when it lists no -sandbox."""
    if not probe.has("-sandbox"):
        return None
    if probe.version >= (2, 11, 0):
        return "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"
    return "on"


def build_argv(plan: MachinePlan, probe: QemuProbe, *, runtime: Optional[RuntimeDirs] = None,
               daemonize: bool = True, strict: bool = False, network: str = "user",
               vnc_display: Optional[int] = None) -> List[str]:
    """The argv list only (see ``build_argv_result`` for the warnings)."""
    return build_argv_result(plan, probe, runtime=runtime, daemonize=daemonize, strict=strict,
                             network=network, vnc_display=vnc_display).argv
