"""Every QEMU release/build we have a ``-h`` text for (tests/support/fakeqemu/help): version,
MAGIC id, accelerator detection, the exact option-set membership the argv builder
depends on, the argv built for HDD / CD / KERNEL / INSTMODE with VNC and NONE consoles,
and an end-to-end start/stop through the fake binary.  Plus the probe's robustness
against banners, exit codes and output streams we have not seen yet.

The help texts listed in FULL were rendered whole from each release's own
qemu-options.hx (DEF help strings, #ifdefs evaluated for an x86_64 Linux build) plus the
banner and frame printed by that release's vl.c help(); 7.2.22-debian12 is the output
of the real Debian 12 binary.  The older fixtures are trimmed by hand."""
from __future__ import annotations

import dataclasses
import json
import os
import pwd
import re
import shlex
import shutil
import stat
import tempfile
from pathlib import Path

import psutil
import pytest

from ctys_libvirt.errors import QemuProbeError, UsageError
from ctys_libvirt.model import BootMode, BootRequest, CancelMode, ConsoleType, CreateOptions
from ctys_libvirt.qemu import optsets
from ctys_libvirt.qemu.probe import (magic_for, parse_version, parse_version_arg, probe, probe_text,
                                     synthetic_probe)
from ctys_libvirt.qemu.runtime import RuntimeDirs
from ctys_libvirt.translate.argv import build_argv_result, is_modern
from ctys_libvirt.host.facts import host_facts
from ctys_libvirt.translate.plan import resolve_plan
from ctys_libvirt.translate.request import parse_instmode
from support.fakeqemu import HELP_DIR, VERSIONS, fix_host, make_fake, recorded_argv, vms

# key: (version, MAGIC, qemu-kvm fork (-no-kvm listed), fork tag in the banner, KQEMU options)
RELEASES = {
    "0.9.0": ((0, 9, 0), "QEMU_090", False, None, False),
    "0.9.1": ((0, 9, 1), "QEMU_091", False, None, False),
    "0.9.1-kqemu": ((0, 9, 1), "QEMU_091", False, None, True),
    "0.9.1-kvm-83": ((0, 9, 1), "QEMU_091", True, "kvm-83", False),
    "0.10.6": ((0, 10, 6), "QEMU_010", False, None, True),
    "0.10.50-kvm-88": ((0, 10, 50), "QEMU_010", True, "kvm-88", False),
    "0.11.1": ((0, 11, 1), "QEMU_011", False, None, True),
    "0.12.3-qemu-kvm": ((0, 12, 3), "QEMU_012", True, "qemu-kvm-0.12.3", False),
    "0.12.5": ((0, 12, 5), "QEMU_012", False, None, False),
    "0.12.5-qemu-kvm": ((0, 12, 5), "QEMU_012", True, "qemu-kvm-0.12.5", False),
    "0.13.0": ((0, 13, 0), "QEMU_GENERIC", False, None, False),
    "0.14.1-qemu-kvm": ((0, 14, 1), "QEMU_GENERIC", True, "qemu-kvm-0.14.1", False),
    "0.15.1": ((0, 15, 1), "QEMU_GENERIC", False, None, False),
    "1.0": ((1, 0, 0), "QEMU_GENERIC", False, None, False),
    "1.2.0": ((1, 2, 0), "QEMU_GENERIC", False, None, False),
    "1.2.0-qemu-kvm": ((1, 2, 0), "QEMU_GENERIC", True, "qemu-kvm-1.2.0", False),
    # RHEL 7 names its package qemu-kvm, but it is upstream QEMU: no -no-kvm, not a fork
    "1.5.3-rhel7": ((1, 5, 3), "QEMU_GENERIC", False, "qemu-kvm-1.5.3-175.el7", False),
    "1.7.0": ((1, 7, 0), "QEMU_GENERIC", False, None, False),
    "2.0.0-ubuntu": ((2, 0, 0), "QEMU_GENERIC", False, None, False),
    "2.11.1": ((2, 11, 1), "QEMU_GENERIC", False, None, False),
    "3.1.0-debian": ((3, 1, 0), "QEMU_GENERIC", False, None, False),
    "4.1.1": ((4, 1, 1), "QEMU_GENERIC", False, None, False),
    "5.2.0-debian": ((5, 2, 0), "QEMU_GENERIC", False, None, False),
    "6.2.0-ubuntu": ((6, 2, 0), "QEMU_GENERIC", False, None, False),
    "7.2.22-debian12": ((7, 2, 22), "QEMU_GENERIC", False, None, False),
    "8.2.2-ubuntu": ((8, 2, 2), "QEMU_GENERIC", False, None, False),
    "9.2.4-fedora": ((9, 2, 4), "QEMU_GENERIC", False, None, False),
    "10.2.0": ((10, 2, 0), "QEMU_GENERIC", False, None, False),
}

# The options the argv builder (and its callers) decide on, and which of them each
# release does NOT list in -h.  Membership is exact-token: -vga is absent from 0.9.1
# although its -std-vga contains the letters.
ARGV_OPTS = ("-drive", "-netdev", "-device", "-rtc", "-localtime", "-vga", "-std-vga", "-display",
             "-nographic", "-qmp", "-monitor", "-accel", "-enable-kvm", "-no-kvm", "-machine",
             "-no-kqemu", "-kernel-kqemu", "-enable-kqemu", "-usb", "-usbdevice", "-no-quit", "-uuid",
             "-cpu", "-k", "-pidfile", "-daemonize", "-serial", "-incoming", "-cdrom", "-hda", "-fda",
             "-boot", "-kernel", "-initrd", "-append", "-vnc", "-name", "-m", "-smp", "-net", "-L",
             "-sdl", "-nic", "-blockdev")
_KQ = ["-no-kqemu", "-kernel-kqemu", "-enable-kqemu"]
_PRE_DISPLAY = ["-localtime", "-std-vga", "-display", "-accel", "-machine"] + _KQ + ["-nic", "-blockdev"]
_MID = ["-localtime", "-std-vga", "-accel", "-no-kvm"] + _KQ + ["-nic", "-blockdev"]
_MODERN = ["-localtime", "-std-vga", "-no-kvm"] + _KQ
ABSENT = {
    "0.9.0": ["-drive", "-netdev", "-device", "-rtc", "-vga", "-display", "-qmp", "-accel",
              "-enable-kvm", "-no-kvm", "-machine"] + _KQ + ["-no-quit", "-uuid", "-cpu", "-incoming",
                                                              "-sdl", "-nic", "-blockdev"],
    "0.9.1": ["-netdev", "-device", "-rtc", "-vga", "-display", "-qmp", "-accel", "-enable-kvm",
              "-no-kvm", "-machine"] + _KQ + ["-uuid", "-incoming", "-sdl", "-nic", "-blockdev"],
    "0.9.1-kqemu": ["-netdev", "-device", "-rtc", "-vga", "-display", "-qmp", "-accel", "-enable-kvm",
                    "-no-kvm", "-machine", "-enable-kqemu", "-uuid", "-incoming", "-sdl", "-nic",
                    "-blockdev"],
    "0.9.1-kvm-83": ["-netdev", "-device", "-rtc", "-vga", "-display", "-qmp", "-accel", "-enable-kvm",
                     "-machine"] + _KQ + ["-uuid", "-incoming", "-sdl", "-nic", "-blockdev"],
    # 0.10: kqemu on unless -no-kqemu; 0.11: off unless -enable-kqemu (fixtures corrected)
    "0.10.6": ["-netdev", "-device", "-rtc", "-std-vga", "-display", "-qmp", "-accel", "-no-kvm",
               "-machine", "-enable-kqemu", "-nic", "-blockdev"],
    "0.10.50-kvm-88": ["-netdev", "-device", "-rtc", "-std-vga", "-display", "-qmp", "-accel",
                       "-machine"] + _KQ + ["-nic", "-blockdev"],
    "0.11.1": ["-netdev", "-device", "-rtc", "-std-vga", "-display", "-qmp", "-accel", "-no-kvm",
               "-machine", "-no-kqemu", "-nic", "-blockdev"],
    "0.12.3-qemu-kvm": _PRE_DISPLAY,
    "0.12.5": _PRE_DISPLAY + ["-no-kvm"],
    "0.12.5-qemu-kvm": _PRE_DISPLAY,
    "0.13.0": _PRE_DISPLAY + ["-no-kvm"],
    "0.14.1-qemu-kvm": _PRE_DISPLAY,
    "0.15.1": _MID, "1.0": _MID, "1.2.0": _MID, "1.5.3-rhel7": _MID, "1.7.0": _MID,
    "2.0.0-ubuntu": _MID,
    "1.2.0-qemu-kvm": ["-localtime", "-std-vga", "-accel"] + _KQ + ["-nic", "-blockdev"],
    "2.11.1": _MODERN + ["-nic", "-blockdev"],
    "3.1.0-debian": _MODERN, "4.1.1": _MODERN, "5.2.0-debian": _MODERN, "6.2.0-ubuntu": _MODERN,
    "7.2.22-debian12": _MODERN + ["-no-quit", "-sdl"], "8.2.2-ubuntu": _MODERN + ["-no-quit", "-sdl"],
    "9.2.4-fedora": _MODERN + ["-no-quit", "-sdl"], "10.2.0": _MODERN + ["-no-quit", "-sdl"],
}
# help texts rendered whole from the release sources (the older fixtures are trimmed)
FULL = ["0.10.50-kvm-88", "0.12.3-qemu-kvm", "0.13.0", "0.15.1", "1.0", "1.2.0", "1.2.0-qemu-kvm",
        "1.5.3-rhel7", "2.0.0-ubuntu", "3.1.0-debian", "4.1.1", "5.2.0-debian", "6.2.0-ubuntu",
        "7.2.22-debian12", "8.2.2-ubuntu", "9.2.4-fedora", "10.2.0"]
EXACT_BANNER = {
    "0.10.50-kvm-88": "QEMU PC emulator version 0.10.50 (kvm-88), Copyright (c) 2003-2008 Fabrice Bellard",
    "0.12.3-qemu-kvm": "QEMU PC emulator version 0.12.3 (qemu-kvm-0.12.3), Copyright (c) 2003-2008 Fabrice Bellard",
    "0.13.0": "QEMU emulator version 0.13.0, Copyright (c) 2003-2008 Fabrice Bellard",
    "1.0": "QEMU emulator version 1.0, Copyright (c) 2003-2008 Fabrice Bellard",
    "1.5.3-rhel7": "QEMU emulator version 1.5.3 (qemu-kvm-1.5.3-175.el7), Copyright (c) 2003-2008 Fabrice Bellard",
    "2.0.0-ubuntu": "QEMU emulator version 2.0.0 (Debian 2.0.0+dfsg-2ubuntu1.46), Copyright (c) 2003-2008 Fabrice Bellard",
    "7.2.22-debian12": "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)",
    "10.2.0": "QEMU emulator version 10.2.0",
}


@pytest.fixture(autouse=True)
def _host(tmp_path, monkeypatch):
    fix_host(tmp_path, monkeypatch)


def _text(key: str) -> str:
    return (HELP_DIR / f"qemu-{key}.txt").read_text()


def _probe(key: str):
    return probe_text("/usr/bin/qemu", _text(key))


def test_every_help_text_is_in_the_tables():
    assert sorted(RELEASES) == sorted(VERSIONS) == sorted(ABSENT)
    assert set(FULL) <= set(VERSIONS)


# -- version, MAGIC, fork, accelerators ------------------------------------------------

@pytest.mark.parametrize("key", VERSIONS)
def test_version_magic_and_fork(key):
    ver, magic, fork, tag, kq = RELEASES[key]
    pr = _probe(key)
    assert (pr.version, pr.magic, pr.is_kvm_fork, pr.kvm_release, pr.kqemu_capable) == (ver, magic, fork, tag, kq)
    assert pr.accelerator == ("KVM" if fork else "QEMU")             # the legacy word
    base = f"qemu-{optsets.vstr(ver)}"
    assert pr.hyperrel == (f"{base}-{tag}" if fork else base)
    if key in EXACT_BANNER:
        assert pr.banner == EXACT_BANNER[key]


@pytest.mark.parametrize("key", VERSIONS)
def test_accelerators_follow_options_and_host(key, tmp_path, monkeypatch):
    _ver, _magic, fork, _tag, kq = RELEASES[key]
    pr = _probe(key)
    modern_kvm = pr.has("-enable-kvm") or pr.has("-accel")
    assert pr.accelerators == (("KVM",) if fork or modern_kvm else ()) + ("TCG",)
    dev = tmp_path / "kqemu"
    dev.write_bytes(b"")
    monkeypatch.setenv("CTYS_KQEMU_DEVICE", str(dev))
    monkeypatch.setenv("CTYS_KVM_DEVICE", str(tmp_path / "no-kvm"))
    assert _probe(key).accelerators == (("KQEMU",) if kq else ()) + ("TCG",)


@pytest.mark.parametrize("key", VERSIONS)
def test_option_membership_is_exact(key):
    pr = _probe(key)
    assert sorted(o for o in ARGV_OPTS if not pr.has(o)) == sorted(ABSENT[key])


@pytest.mark.parametrize("key", FULL)
def test_synthetic_option_set_matches_the_real_help(key):
    """optsets.HISTORY/HIDDEN reproduce what each release really lists (the basis of
    --qemu-version and of the 'removed in X' lint messages)."""
    ver, _magic, fork, _tag, kq = RELEASES[key]
    pr = _probe(key)
    listed = {o for o in pr.options if o in optsets.HISTORY}
    assert optsets.option_set(ver, kvm_fork=fork, kqemu=kq) & set(optsets.HISTORY) == listed
    if fork:
        assert {"-no-kvm", "-no-kvm-irqchip", "-no-kvm-pit"} <= pr.options


def test_hidden_but_accepted_options():
    assert _probe("7.2.22-debian12").accepts("-M") and not _probe("7.2.22-debian12").has("-M")
    assert _probe("0.12.3-qemu-kvm").accepts("-localtime") and not _probe("0.12.3-qemu-kvm").has("-localtime")
    assert not _probe("7.2.22-debian12").accepts("-localtime")          # really removed in 3.1
    assert _probe("0.9.1").accepts("-localtime") and _probe("0.9.1").has("-localtime")
    assert optsets.removed_in("-alt-grab") == (7, 1, 0) and optsets.removed_in("-runas") == (10, 0, 0)
    assert optsets.removed_in("-win2k-hack") is None                     # 10.2 still lists it


# -- argv ----------------------------------------------------------------------------------

CASES = {
    "hdd-vnc": ("debian5", BootRequest(bootmode=BootMode.HDD, console=ConsoleType.VNC, vnc_display=3)),
    "cd-none": ("debian5", BootRequest(bootmode=BootMode.CD, console=ConsoleType.NONE)),
    "kernel-vnc": ("kvmkern", BootRequest(console=ConsoleType.VNC, vnc_display=4)),
    "inst-none": ("centos55", BootRequest(instmode=parse_instmode("DEFAULT"), console=ConsoleType.NONE)),
    "usb-none": ("centos55", BootRequest(bootmode=BootMode.USB, boot_path="../isos/usb.img",
                                         console=ConsoleType.NONE)),
}


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("vms")
    (root / "isos").mkdir()
    (root / "isos" / "usb.img").write_bytes(b"\0" * 512)
    return root, {"debian5": vms.debian5(root), "centos55": vms.centos55(root), "kvmkern": vms.kvmkern(root)}


def _argv(tree, key, case):
    root, confs = tree
    label, req = CASES[case]
    rt = RuntimeDirs(Path("/run/ctys-libvirt") / label)
    res = build_argv_result(resolve_plan(confs[label], req, host_facts()), _probe(key), runtime=rt)
    return [a.replace(str(root), "@VM@") for a in res.argv[1:]], res


_RT = "/run/ctys-libvirt/"
EXACT = {
    ("0.9.1", "hdd-vnc"):
        "-name debian5 -m 1024 -smp 2 -cpu qemu64 -localtime -k de -hda @VM@/debian5/hda.img -boot c "
        "-net nic,macaddr=00:50:56:13:11:40,model=rtl8139 -net user -vnc 127.0.0.1:3 "
        f"-serial file:{_RT}debian5/serial.log -monitor unix:{_RT}debian5/monitor.sock,server,nowait "
        f"-pidfile {_RT}debian5/qemu.pid -daemonize",
    ("0.9.1", "cd-none"):
        "-name debian5 -m 1024 -smp 2 -cpu qemu64 -localtime -k de -hda @VM@/debian5/hda.img "
        "-cdrom @VM@/isos/debian-508-amd64-DVD-1.iso -boot d -net nic,macaddr=00:50:56:13:11:40,model=rtl8139 "
        f"-net user -nographic -serial file:{_RT}debian5/serial.log "
        f"-monitor unix:{_RT}debian5/monitor.sock,server,nowait -pidfile {_RT}debian5/qemu.pid -daemonize",
    ("0.9.1", "kernel-vnc"):
        "-name kvmkern -m 2048 -smp 4 -cpu qemu64 -std-vga -localtime -k en-us -hda @VM@/kvmkern/hda.img "
        "-hdb @VM@/kvmkern/hdb.img -boot c -net nic,macaddr=00:50:56:13:11:42,model=virtio -net user "
        "-kernel @VM@/kvmkern/boot/vmlinuz-2.6.32-5-amd64 -initrd @VM@/kvmkern/boot/initrd.img-2.6.32-5-amd64 "
        "-append 'root=/dev/sda1 ro console=ttyS0' -vnc 127.0.0.1:4 -serial file:/run/ctys-libvirt/kvmkern/serial.log "
        f"-monitor unix:{_RT}kvmkern/monitor.sock,server,nowait -pidfile {_RT}kvmkern/qemu.pid -daemonize "
        "-usb -usbdevice tablet",
    ("0.9.1", "inst-none"):
        "-name centos55 -m 512 -smp 1 -cpu qemu32 -localtime -k en-us -hda @VM@/centos55/hda.img "
        "-cdrom @VM@/isos/CentOS-5.5-i386-bin-DVD.iso -boot d -net nic,macaddr=00:50:56:13:11:41,model=rtl8139 "
        f"-net user -nographic -serial file:{_RT}centos55/serial.log "
        f"-monitor unix:{_RT}centos55/monitor.sock,server,nowait -pidfile {_RT}centos55/qemu.pid -daemonize",
    ("0.12.3-qemu-kvm", "hdd-vnc"):
        "-name debian5 -uuid 3f2a6c1e-9b7d-4e0a-8c5b-1d2e3f4a5b6c -m 1024 -smp 2 -cpu qemu64 -vga cirrus "
        "-rtc base=localtime -k de -drive file=@VM@/debian5/hda.img,format=raw,if=ide,index=0,media=disk "
        "-boot order=c -netdev user,id=n0 -device rtl8139,netdev=n0,mac=00:50:56:13:11:40 -vnc 127.0.0.1:3 "
        f"-serial file:{_RT}debian5/serial.log -monitor unix:{_RT}debian5/monitor.sock,server,nowait "
        f"-pidfile {_RT}debian5/qemu.pid -daemonize",
    ("0.12.3-qemu-kvm", "inst-none"):
        "-name centos55 -uuid 5b8e0c2a-7d3f-4e1b-9a6c-2d4e6f8a0b1c -no-kvm -m 512 -smp 1 -cpu qemu32 "
        "-vga cirrus -rtc base=localtime -k en-us "
        "-drive file=@VM@/centos55/hda.img,format=raw,if=ide,index=0,media=disk "
        "-drive file=@VM@/isos/CentOS-5.5-i386-bin-DVD.iso,format=raw,if=ide,index=2,media=cdrom "
        "-boot order=dc -netdev user,id=n0 -device rtl8139,netdev=n0,mac=00:50:56:13:11:41 -nographic "
        f"-serial file:{_RT}centos55/serial.log -monitor unix:{_RT}centos55/monitor.sock,server,nowait "
        f"-pidfile {_RT}centos55/qemu.pid -daemonize",
    ("1.5.3-rhel7", "cd-none"):
        "-name debian5 -uuid 3f2a6c1e-9b7d-4e0a-8c5b-1d2e3f4a5b6c -enable-kvm -m 1024 -smp 2 -cpu qemu64 "
        "-vga cirrus -rtc base=localtime -k de -drive file=@VM@/debian5/hda.img,format=raw,if=ide,index=0,media=disk "
        "-drive file=@VM@/isos/debian-508-amd64-DVD-1.iso,format=raw,if=ide,index=2,media=cdrom -boot order=dc "
        "-netdev user,id=n0 -device rtl8139,netdev=n0,mac=00:50:56:13:11:40 -display none "
        f"-serial file:{_RT}debian5/serial.log -qmp unix:{_RT}debian5/qmp.sock,server,nowait "
        f"-pidfile {_RT}debian5/qemu.pid -daemonize",
    # RHEL's qemu-kvm defaults to kvm:tcg: ACCELERATOR=QEMU must say tcg explicitly
    ("1.5.3-rhel7", "inst-none"):
        "-name centos55 -uuid 5b8e0c2a-7d3f-4e1b-9a6c-2d4e6f8a0b1c -machine accel=tcg -m 512 -smp 1 "
        "-cpu qemu32 -vga cirrus -rtc base=localtime -k en-us "
        "-drive file=@VM@/centos55/hda.img,format=raw,if=ide,index=0,media=disk "
        "-drive file=@VM@/isos/CentOS-5.5-i386-bin-DVD.iso,format=raw,if=ide,index=2,media=cdrom "
        "-boot order=dc -netdev user,id=n0 -device rtl8139,netdev=n0,mac=00:50:56:13:11:41 -display none "
        f"-serial file:{_RT}centos55/serial.log -qmp unix:{_RT}centos55/qmp.sock,server,nowait "
        f"-pidfile {_RT}centos55/qemu.pid -daemonize",
    ("10.2.0", "hdd-vnc"):
        "-name debian5 -uuid 3f2a6c1e-9b7d-4e0a-8c5b-1d2e3f4a5b6c -accel kvm -m 1024 -smp 2 -cpu qemu64 "
        "-vga cirrus -rtc base=localtime -k de -drive file=@VM@/debian5/hda.img,format=raw,if=ide,index=0,media=disk "
        "-boot order=c -netdev user,id=n0 -device rtl8139,netdev=n0,mac=00:50:56:13:11:40 -vnc 127.0.0.1:3 "
        f"-serial file:{_RT}debian5/serial.log -qmp unix:{_RT}debian5/qmp.sock,server=on,wait=off "
        f"-pidfile {_RT}debian5/qemu.pid -daemonize",
    ("10.2.0", "kernel-vnc"):
        "-name kvmkern -uuid 9c1d2e3f-4a5b-4c6d-8e7f-0a1b2c3d4e5f -accel kvm -m 2048 -smp 4 -cpu qemu64 "
        "-vga std -rtc base=localtime -k en-us -drive file=@VM@/kvmkern/hda.img,format=raw,if=ide,index=0,media=disk "
        "-drive file=@VM@/kvmkern/hdb.img,format=raw,if=ide,index=1,media=disk -boot order=c -netdev user,id=n0 "
        "-device virtio-net-pci,netdev=n0,mac=00:50:56:13:11:42 -kernel @VM@/kvmkern/boot/vmlinuz-2.6.32-5-amd64 "
        "-initrd @VM@/kvmkern/boot/initrd.img-2.6.32-5-amd64 -append 'root=/dev/sda1 ro console=ttyS0' "
        f"-vnc 127.0.0.1:4 -serial file:{_RT}kvmkern/serial.log "
        f"-qmp unix:{_RT}kvmkern/qmp.sock,server=on,wait=off -pidfile {_RT}kvmkern/qemu.pid -daemonize "
        "-usb -usbdevice tablet",
    ("10.2.0", "inst-none"):
        "-name centos55 -uuid 5b8e0c2a-7d3f-4e1b-9a6c-2d4e6f8a0b1c -accel tcg -m 512 -smp 1 -cpu qemu32 "
        "-vga cirrus -rtc base=localtime -k en-us "
        "-drive file=@VM@/centos55/hda.img,format=raw,if=ide,index=0,media=disk "
        "-drive file=@VM@/isos/CentOS-5.5-i386-bin-DVD.iso,format=raw,if=ide,index=2,media=cdrom "
        "-boot order=dc -netdev user,id=n0 -device rtl8139,netdev=n0,mac=00:50:56:13:11:41 -display none "
        f"-serial file:{_RT}centos55/serial.log -qmp unix:{_RT}centos55/qmp.sock,server=on,wait=off "
        f"-pidfile {_RT}centos55/qemu.pid -daemonize",
}


@pytest.mark.parametrize("key,case", sorted(EXACT))
def test_exact_argv(tree, key, case):
    argv, _res = _argv(tree, key, case)
    assert argv == shlex.split(EXACT[(key, case)])


def _value(argv, opt):
    return argv[argv.index(opt) + 1]


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("key", VERSIONS)
def test_argv_structure_every_release(tree, key, case):
    pr = _probe(key)
    argv, res = _argv(tree, key, case)
    label = CASES[case][0]
    conf_args = {"kvmkern": ["-usb", "-usbdevice", "tablet"]}.get(label, [])   # ARGSADD, verbatim last
    ours = argv[:len(argv) - len(conf_args)]
    assert argv[len(ours):] == conf_args
    # never an option the binary does not list (exact tokens)
    assert [a for a in ours if a.startswith("-") and not pr.has(a)] == []
    modern = is_modern(pr)
    assert res.modern == modern == all(pr.has(o) for o in ("-drive", "-netdev", "-device"))
    # disks and boot order
    if modern:
        assert "-hda" not in ours and "-cdrom" not in ours and "-drive" in ours
        assert _value(ours, "-boot").startswith("order=")
        assert "-netdev" in ours and "-net" not in ours
    else:
        assert "-drive" not in ours and "-hda" in ours and len(_value(ours, "-boot")) == 1
        assert _value(ours, "-net").startswith("nic,macaddr=") and "-netdev" not in ours
    first = {"hdd-vnc": "c", "cd-none": "d", "kernel-vnc": "c", "inst-none": "d", "usb-none": "c"}[case]
    assert _value(ours, "-boot").replace("order=", "")[0] == first
    if case in ("cd-none", "inst-none"):
        assert ("-cdrom" in ours) != modern
        assert any("media=cdrom" in a for a in ours) == modern
    if case == "usb-none":
        assert "-usb" in ours
        if modern:
            dev = [a for a in ours if a.startswith("usb-storage,drive=")]
            assert len(dev) == 1 and ("bootindex=1" in dev[0]) == (pr.version >= (0, 14, 0))
        else:
            assert _value(ours, "-usbdevice") == "disk:@VM@/isos/usb.img"
    if case == "kernel-vnc":
        assert _value(ours, "-append") == "root=/dev/sda1 ro console=ttyS0"
        assert _value(ours, "-kernel").endswith("vmlinuz-2.6.32-5-amd64")
        # VGADRIVER std: -vga std where listed, else the pre-0.10 -std-vga
        assert ("-vga" in ours and _value(ours, "-vga") == "std") if pr.has("-vga") else "-std-vga" in ours
    # clock: -rtc where listed, else -localtime
    assert (_value(ours, "-rtc") == "base=localtime") if pr.has("-rtc") else "-localtime" in ours
    assert not (pr.has("-rtc") and "-localtime" in ours)
    # accelerator: conf KVM (debian5, kvmkern) or QEMU (centos55)
    wants_kvm = label != "centos55"
    if pr.is_kvm_fork:
        assert ("-no-kvm" in ours) != wants_kvm and "-enable-kvm" not in ours and "-accel" not in ours
    elif pr.has("-accel"):
        assert _value(ours, "-accel") == ("kvm" if wants_kvm else "tcg")
    elif wants_kvm:
        assert ("-enable-kvm" in ours) == pr.has("-enable-kvm")
        assert any("KVM is not usable" in w for w in res.warnings) == (not pr.has("-enable-kvm"))
    else:
        assert ("-machine" in ours and _value(ours, "-machine") == "accel=tcg") == pr.has("-machine")
    assert ("-no-kqemu" in ours) == pr.has("-no-kqemu")
    # console
    if case.endswith("-vnc"):
        assert _value(ours, "-vnc") == f"127.0.0.1:{CASES[case][1].vnc_display}"
    else:
        assert "-vnc" not in ours
        assert (_value(ours, "-display") == "none") if pr.has("-display") else "-nographic" in ours
    # monitor: QMP from 0.13 where listed, short socket booleans before 6.0
    qmp = pr.has("-qmp") and pr.version >= (0, 13, 0)
    mon = _value(ours, "-qmp" if qmp else "-monitor")
    assert mon.endswith(",server=on,wait=off" if pr.version >= (6, 0, 0) else ",server,nowait")
    assert res.monitor_kind == ("qmp" if qmp else "hmp")
    assert ours[-3:] == ["-pidfile", f"{_RT}{label}/qemu.pid", "-daemonize"]


# -- end to end through the fake binary ----------------------------------------------------

@pytest.fixture
def base(tmp_path):
    # short (unix socket paths) and reachable: as root, a QEMU with -sandbox runs as
    # libvirt-qemu, so its runtime dir, the fake script and its interpreter must be too
    b = Path(tempfile.mkdtemp(prefix="ctqv", dir="/tmp"))
    os.chmod(b, 0o755)
    yield b
    for p in psutil.process_iter(["cmdline"]):
        if any(str(b) in c for c in (p.info["cmdline"] or [])[:3]):
            p.kill()
    shutil.rmtree(b, ignore_errors=True)


@pytest.mark.parametrize("key", VERSIONS)
def test_fake_binary_end_to_end(key, tmp_path, base):
    from ctys_libvirt.backends.direct import DirectBackend

    fake = make_fake(base / "bin", key, python="/usr/bin/python3")
    # the fake logs its argv next to itself, possibly as libvirt-qemu: the log file is
    # writable, the directory is not (the binary rule refuses binaries in writable dirs)
    log = Path(str(fake) + ".argv.jsonl")
    log.touch()
    os.chmod(log, 0o666)
    be = DirectBackend(qemu=str(fake), base=base / "rt")
    vm = dataclasses.replace(vms.debian5(tmp_path), label="ctystest-qv", memory_mib=16)
    res = be.create(vm, BootRequest(console=ConsoleType.VNC, vnc_display=9), CreateOptions())
    try:
        assert res.state == "running" and res.vnc_port == 5909
        rt = be.runtime(vm.label)
        assert recorded_argv(fake)[-1][1:] == json.loads(rt.argv_file.read_text())[1:]
        meta = json.loads(rt.meta_file.read_text())
        ver, magic, _fork, _tag, _kq = RELEASES[key]
        assert (meta["qemu_version"], meta["magic"]) == (optsets.vstr(ver), magic)
        assert "CTYS-GUEST-OK" in rt.serial_log.read_text()
        argv = json.loads(rt.argv_file.read_text())
        help_text = (HELP_DIR / f"qemu-{key}.txt").read_text()
        lists = lambda o: re.search(rf"^{o}\b", help_text, re.M) is not None   # noqa: E731
        if os.geteuid() == 0 and lists("-sandbox"):       # as libvirt: sandboxed, not root
            assert meta["sandbox"] and meta["run_as"] == "libvirt-qemu"
            assert "-sandbox" in argv and "-daemonize" not in argv and "-pidfile" not in argv
            assert os.stat(f"/proc/{res.pid}").st_uid == pwd.getpwnam("libvirt-qemu").pw_uid
        elif os.geteuid() == 0 and lists("-runas"):
            assert argv[argv.index("-runas") + 1] == "libvirt-qemu" and "-daemonize" in argv
            assert os.stat(f"/proc/{res.pid}").st_uid == pwd.getpwnam("libvirt-qemu").pw_uid
        else:
            assert "-sandbox" not in argv and "-runas" not in argv
    finally:
        r = be.cancel(vm.label, CancelMode.FORCE)
    assert r.state == "shutoff" and not be.runtime(vm.label).dir.exists()


# -- the probe against what we have not seen -----------------------------------------------

@pytest.mark.parametrize("text,version,banner", [
    # the banner not on the first line (warnings first), CRLF, upper-case (C)
    ("qemu-system-x86_64: warning: could not load module\nQEMU emulator version 3.0.1\nCopyright (c) 2003-2018\n",
     (3, 0, 1), "QEMU emulator version 3.0.1"),
    ("QEMU PC emulator version 0.11.0, Copyright (C) 2003-2008 Fabrice Bellard\r\nusage: qemu\r\n",
     (0, 11, 0), "QEMU PC emulator version 0.11.0, Copyright (C) 2003-2008 Fabrice Bellard"),
    ("QEMU PC emulator version 0.9.1, Copyright 2003-2008 Fabrice Bellard\n", (0, 9, 1), None),
    ("QEMU emulator version 0.15.50, Copyright (c) 2003-2008 Fabrice Bellard\n", (0, 15, 50), None),
    ("QEMU emulator version 1.0.50, Copyright (c) 2003-2008 Fabrice Bellard\n", (1, 0, 50), None),
    ("QEMU emulator version 2.12.92 (v3.0.0-rc2-dirty)\nCopyright (c) 2003-2017\n", (2, 12, 92), None),
    ("QEMU emulator version 9.1.50 (v9.1.0-123-gabcdef)\nCopyright (c) 2003-2024\n", (9, 1, 50), None),
    ("QEMU emulator version v9.1.0-123-gabcdef\nCopyright (c) 2003-2024\n", (9, 1, 0), None),
    ("QEMU PC emulator version 0.12.1.2 (qemu-kvm-0.12.1.2), Copyright (c) 2003-2008 Fabrice Bellard\n",
     (0, 12, 1), None),
    ("QEMU emulator version 11.0.0 (Debian 1:11.0+ds-1)\nCopyright (c) 2003-2026\n", (11, 0, 0), None),
    # an option line mentioning a version is never the banner
    ("-smbios type=0,version=1.2 blah\nQEMU emulator version 4.2.1 (Debian 1:4.2-3ubuntu6.27)\n",
     (4, 2, 1), "QEMU emulator version 4.2.1 (Debian 1:4.2-3ubuntu6.27)"),
])
def test_banner_variants(text, version, banner):
    v, line, _fork = parse_version(text)
    assert v == version
    if banner:
        assert line == banner


def test_fork_tag_and_magic_globs():
    assert parse_version("QEMU PC emulator version 0.12.1.2 (qemu-kvm-0.12.1.2), Copyright\n")[2] == "qemu-kvm-0.12.1.2"
    assert parse_version("QEMU emulator version 1.2.0 (qemu-kvm-devel), Copyright\n")[2] == "qemu-kvm-devel"
    assert parse_version("QEMU emulator version 2.0.0 (Debian 2.0.0+dfsg-2ubuntu1.46), Copyright\n")[2] is None
    # the legacy case patterns: qemu-0.9.1* also matches a 0.9.1x, 0.10.50 is 0.10*
    assert [magic_for(v) for v in ((0, 9, 10), (0, 9, 2), (0, 10, 50), (0, 12, 91), (0, 13, 0), (10, 1, 0))] == \
        ["QEMU_091", "QEMU_09x", "QEMU_010", "QEMU_012", "QEMU_GENERIC", "QEMU_GENERIC"]


def _script(tmp_path: Path, name: str, body: str) -> Path:
    p = tmp_path / name
    p.write_text("#!/bin/sh\n" + body)
    p.chmod(p.stat().st_mode | stat.S_IXUSR)
    return p


def test_help_exiting_one_is_accepted(tmp_path):
    """QEMU 0.9-0.11 and distro wrapper scripts exit 1 after printing the help."""
    q = _script(tmp_path, "qemu", f"cat {HELP_DIR / 'qemu-0.10.50-kvm-88.txt'}\nexit 1\n")
    pr = probe(str(q))
    assert pr.version == (0, 10, 50) and pr.is_kvm_fork and pr.has("-drive")


def test_help_on_stderr(tmp_path):
    q = _script(tmp_path, "qemu", f"cat {HELP_DIR / 'qemu-0.9.1.txt'} >&2\n")
    pr = probe(str(q))
    assert pr.version == (0, 9, 1) and pr.has("-std-vga") and pr.has("-hda")


def test_banner_on_stderr_options_on_stdout(tmp_path):
    help_file = HELP_DIR / "qemu-1.0.txt"
    q = _script(tmp_path, "qemu", f"head -1 {help_file} >&2\ntail -n +2 {help_file}\n")
    pr = probe(str(q))
    assert pr.version == (1, 0, 0) and pr.has("-machine") and pr.has("-netdev")


def test_warning_lines_on_stdout_before_the_banner(tmp_path):
    q = _script(tmp_path, "qemu", "echo 'audio: Could not init oss audio driver'\n"
                f"cat {HELP_DIR / 'qemu-6.2.0-ubuntu.txt'}\n")
    assert probe(str(q)).version == (6, 2, 0)


def test_unknown_banner_is_a_clear_error_and_can_be_overridden(tmp_path):
    help_file = HELP_DIR / "qemu-1.5.3-rhel7.txt"
    q = _script(tmp_path, "qemu-kvm", f"echo 'Acme Hypervisor build 42'\ntail -n +2 {help_file}\n")
    with pytest.raises(QemuProbeError) as ei:
        probe(str(q))
    e = ei.value
    assert e.exit_code == 4 and str(q) in e.one_line() and "Acme Hypervisor build 42" in e.one_line()
    assert "--qemu-version X.Y.Z" in e.hint
    pr = probe(str(q), assume_version="1.5.3")
    assert pr.version == (1, 5, 3) and pr.has("-machine") and not pr.is_kvm_fork
    with pytest.raises(UsageError):
        probe(str(q), assume_version="one.five")


def test_missing_libraries_exit_127(tmp_path):
    q = _script(tmp_path, "qemu", "echo 'qemu: error while loading shared libraries: libSDL-1.2.so.0' >&2\n"
                "exit 127\n")
    with pytest.raises(QemuProbeError, match=r"failed on '-h' \(exit 127\): .*libSDL") as ei:
        probe(str(q))
    assert ei.value.exit_code == 4 and str(q) in ei.value.one_line()


def test_silent_binary(tmp_path):
    q = _script(tmp_path, "qemu", "exit 0\n")
    with pytest.raises(QemuProbeError, match=r"unparseable version .*\(no output\)"):
        probe(str(q))


def test_probe_text_never_crashes_on_junk():
    for junk in ("", "\0\0\0", "-h\n-m\n", "QEMU\n", "version 1.2.3\n", "\xff" * 100):
        with pytest.raises(QemuProbeError) as ei:
            probe_text("/x/qemu", junk)
        assert "/x/qemu" in ei.value.one_line() and ei.value.exit_code == 4


@pytest.mark.parametrize("arg,version", [
    ("1.0", (1, 0, 0)), ("0.15.50", (0, 15, 50)), ("2.12.92", (2, 12, 92)), ("v9.1.0-123-gabcdef", (9, 1, 0)),
    ("7.2.22 (Debian 1:7.2+dfsg-7+deb12u18)", (7, 2, 22)), (" 10.1 ", (10, 1, 0)), ("5.2.0+dfsg", (5, 2, 0)),
])
def test_qemu_version_argument(arg, version):
    assert parse_version_arg(arg) == version
    assert synthetic_probe(arg).version == version


@pytest.mark.parametrize("bad", ["", "7", "seven", "7.x", "1.2.3.4.5x", "-7.2"])
def test_qemu_version_argument_rejected(bad):
    with pytest.raises(UsageError, match="is not X.Y or X.Y.Z"):
        parse_version_arg(bad)


def test_cache_format_survives_new_parser(tmp_path):
    """A cached probe of an older parser generation is re-probed, never trusted."""
    fake = make_fake(tmp_path / "bin", "1.0")
    pr = probe(str(fake))
    cached = list((tmp_path / "cache" / "ctys-libvirt" / "qemu-probe").glob("*.json"))
    assert len(cached) == 1
    data = json.loads(cached[0].read_text())
    data["format"] = 2
    data["version"] = [1, 0, 9]
    cached[0].write_text(json.dumps(data))
    assert probe(str(fake)) == pr and pr.version == (1, 0, 0)


def test_real_binary_matches_its_fixture():
    """The 7.2 fixture is the installed binary's own -h (when it is still that build)."""
    real = "/usr/bin/qemu-system-x86_64"
    if not os.path.exists(real):
        pytest.skip("no qemu-system-x86_64")
    pr = probe(real, use_cache=False)
    assert pr.version >= (7, 2, 0) and pr.magic == "QEMU_GENERIC" and not pr.is_kvm_fork
    fx = _probe("7.2.22-debian12")
    if pr.banner == fx.banner:
        assert pr.options == fx.options
    assert {o for o in ARGV_OPTS if not pr.has(o)} == set(ABSENT["7.2.22-debian12"])


def test_flags_with_long_names_take_no_argument():
    """After a 15+ character name one blank starts the description: those are flags
    (lint would otherwise swallow the next ARGSADD word as their value)."""
    kvm88 = _probe("0.10.50-kvm-88")
    assert not {"-no-kvm-irqchip", "-no-kvm-pit-reinjection", "-enable-nesting"} & kvm88.options_with_arg
    assert {"-kvm-shadow-memory", "-usbdevice", "-m", "-drive", "-fda", "-fdb"} <= kvm88.options_with_arg
    assert "-async-teardown" not in _probe("7.2.22-debian12").options_with_arg
    modern = _probe("10.2.0")
    assert {"--preconfig", "-preconfig"} <= modern.options        # QEMU takes both spellings


def test_daemonize_is_required(tmp_path):
    from ctys_libvirt.errors import BackendError

    text = "\n".join(l for l in _text("0.9.1").splitlines() if not l.startswith("-daemonize"))
    pr = probe_text("/usr/bin/qemu", text)
    plan = resolve_plan(vms.debian5(tmp_path), BootRequest(console=ConsoleType.NONE), host_facts())
    with pytest.raises(BackendError, match=r"QEMU 0\.9\.1 \(/usr/bin/qemu\) does not list -daemonize"):
        build_argv_result(plan, pr)
    assert "-daemonize" not in build_argv_result(plan, pr, daemonize=False).argv


def test_find_qemu_assume_version_and_blacklist(tmp_path):
    from ctys_libvirt.qemu import discovery

    q = _script(tmp_path, "qemu-kvm", f"echo 'custom build'\ntail -n +2 {HELP_DIR / 'qemu-1.2.0.txt'}\n")
    with pytest.raises(QemuProbeError, match="--qemu-version"):
        discovery.find_qemu(explicit=str(q))
    assert discovery.find_qemu(explicit=str(q), assume_version="1.2.0").version == (1, 2, 0)
    for tool in ("qemu-ga", "qemu-edid", "kvm-img"):
        make_fake(tmp_path / "tools", "1.0", name=tool)
        assert discovery.candidates(explicit=str(tmp_path / "tools" / tool), search_path="", dirs=()) == []


@pytest.mark.parametrize("key,listed,plain,kqemu_run", [
    # 0.9/0.10 use kqemu by default: a plain run says -no-kqemu
    ("0.9.1-kqemu", {"-no-kqemu", "-kernel-kqemu"}, ["-no-kqemu"], "-kernel-kqemu"),
    ("0.10.6", {"-no-kqemu", "-kernel-kqemu"}, ["-no-kqemu"], "-kernel-kqemu"),
    # 0.11 only with -enable-kqemu: nothing to switch off (-no-kqemu would be rejected)
    ("0.11.1", {"-kernel-kqemu", "-enable-kqemu"}, [], "-kernel-kqemu"),
])
def test_kqemu_generations(key, listed, plain, kqemu_run, tmp_path, monkeypatch):
    pr = _probe(key)
    assert pr.options & optsets.KQEMU_OPTIONS == listed
    ver = RELEASES[key][0]
    assert optsets.option_set(ver, kqemu=True) & optsets.KQEMU_OPTIONS == listed
    vm = vms.centos55(tmp_path)                               # ACCELERATOR=QEMU
    argv = build_argv_result(resolve_plan(vm, BootRequest(console=ConsoleType.NONE), host_facts()), pr).argv
    assert [a for a in argv if a in optsets.KQEMU_OPTIONS] == plain
    dev = tmp_path / "kqemu"
    dev.write_bytes(b"")
    monkeypatch.setenv("CTYS_KQEMU_DEVICE", str(dev))
    kq = dataclasses.replace(vm, accelerator="KQEMU")
    argv = build_argv_result(resolve_plan(kq, BootRequest(console=ConsoleType.NONE), host_facts()), _probe(key)).argv
    assert [a for a in argv if a in optsets.KQEMU_OPTIONS] == [kqemu_run]


def test_distro_banners_are_not_forks():
    for banner in ("QEMU emulator version 8.1.5 (pve-qemu-kvm_8.1.5-6)\nCopyright (c) 2003-2023\n",
                   "QEMU emulator version 7.1.0 (SUSE Linux Enterprise 15)\nCopyright (c) 2003-2022\n",
                   "QEMU emulator version 9.2.4 (qemu-9.2.4-1.fc42)\nCopyright (c) 2003-2024\n"):
        v, _line, fork = parse_version(banner)
        assert fork is None and v[0] >= 7


def test_nul_in_path_is_a_probe_error():
    with pytest.raises(QemuProbeError, match="not found"):
        probe("/opt/qemu\0/bin/qemu")
