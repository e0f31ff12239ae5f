"""Golden argv per fake QEMU release and boot mode (tests/data/argv/<release>.json).

Regenerate after an intended change with ``pytest --update-goldens`` and review the diff.
Paths are normalised: the VM tree -> @VM@, the runtime dir -> @RUN@, the binary -> @QEMU@."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from ctys_libvirt.model import BootMode, BootRequest, ConsoleType
from ctys_libvirt.qemu.probe import probe
from ctys_libvirt.qemu.runtime import RuntimeDirs
from ctys_libvirt.translate.argv import build_argv_result
from ctys_libvirt.host.facts import host_facts
from ctys_libvirt.translate.plan import resolve_plan
from ctys_libvirt.translate.request import parse_instmode
from support.fakeqemu import VERSIONS, make_fake, vms
from support.paths import DATA

GOLDEN = DATA / "argv"

CASES = {
    "hdd-vnc": ("debian5", BootRequest(bootmode=BootMode.HDD, console=ConsoleType.VNC, vnc_display=1)),
    "cd-none": ("debian5", BootRequest(bootmode=BootMode.CD, console=ConsoleType.NONE)),
    "fdd-cli": ("debian5", BootRequest(bootmode=BootMode.FDD, boot_path="../isos/fd.img",
                                       console=ConsoleType.CLI)),
    "pxe-sdl": ("debian5", BootRequest(bootmode=BootMode.PXE, console=ConsoleType.SDL)),
    "kernel-vnc": ("kvmkern", BootRequest(console=ConsoleType.VNC, vnc_display=4)),
    "install-vnc": ("centos55", BootRequest(instmode=parse_instmode("DEFAULT"), console=ConsoleType.VNC, vnc_display=2)),
    "usb-none": ("centos55", BootRequest(bootmode=BootMode.USB, boot_path="../isos/usb.img",
                                         console=ConsoleType.NONE)),
}


def _normalise(argv, root: Path, rt: RuntimeDirs, qemu: str):
    out = []
    for a in argv:
        a = a.replace(str(rt.dir), "@RUN@").replace(str(root), "@VM@")
        out.append("@QEMU@" if a == qemu else a)
    return out


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("vms")
    (root / "isos").mkdir()
    (root / "isos" / "fd.img").write_bytes(b"\0" * 512)
    (root / "isos" / "usb.img").write_bytes(b"\0" * 512)
    return root, {"debian5": vms.debian5(root), "centos55": vms.centos55(root), "kvmkern": vms.kvmkern(root)}


@pytest.mark.parametrize("key", VERSIONS)
def test_golden_argv_per_release(key, tree, tmp_path, monkeypatch, golden):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("CTYS_KQEMU_DEVICE", str(tmp_path / "no-kqemu"))
    kvm = tmp_path / "kvm"
    kvm.write_bytes(b"")
    monkeypatch.setenv("CTYS_KVM_DEVICE", str(kvm))  # goldens must not depend on the host
    root, confs = tree
    fake = make_fake(tmp_path / "bin", key)
    pr = probe(str(fake))
    got = {}
    for case, (label, req) in CASES.items():
        rt = RuntimeDirs(Path("/run/ctys-libvirt") / label)
        res = build_argv_result(resolve_plan(confs[label], req, host_facts()), pr, runtime=rt)
        got[case] = _normalise(res.argv, root, rt, str(fake))
    path = GOLDEN / f"{key}.json"
    golden.check(path, json.dumps(got, indent=1) + "\n")


def test_no_stray_argv_goldens():
    """One golden per fake release: a release dropped from support/fakeqemu/help leaves no
    golden behind that nothing compares any more."""
    assert sorted(p.stem for p in GOLDEN.glob("*.json")) == sorted(VERSIONS)
