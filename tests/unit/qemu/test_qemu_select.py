"""Backend choice: auto -> libvirt when reachable and able to run the conf, else direct."""
from __future__ import annotations

import dataclasses

import pytest

from ctys_libvirt.backends.select import explain_choice
from ctys_libvirt.errors import UsageError
from support.fakeqemu import make_fake, vms

DEAD_URI = "qemu+unix:///system?socket=/nonexistent/libvirt-sock"


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.mark.libvirt
def test_auto_picks_libvirt_when_reachable(tmp_path):
    c = explain_choice("auto", uri="qemu:///system", vm=vms.centos55(tmp_path))
    assert c.kind == "libvirt" and c.libvirt_reachable and c.libvirt_version
    assert c.reasons == [f"libvirt reachable at qemu:///system (libvirt {c.libvirt_version})"]


def test_auto_falls_back_when_libvirt_unreachable():
    c = explain_choice("auto", uri=DEAD_URI)
    assert c.kind == "direct" and c.libvirt_reachable is False
    assert c.reasons[0].startswith(f"libvirt not reachable at {DEAD_URI}: ")


def test_auto_direct_for_kqemu_and_old_startercall(tmp_path):
    vm = dataclasses.replace(vms.centos55(tmp_path), accelerator="KQEMU")
    c = explain_choice("auto", uri="qemu:///system", vm=vm)
    assert c.kind == "direct" and "KQEMU" in c.reasons[0] and c.libvirt_reachable is None
    old = dataclasses.replace(vms.centos55(tmp_path), startercall=str(make_fake(tmp_path, "0.12.5-qemu-kvm")))
    c = explain_choice("auto", uri="qemu:///system", vm=old)
    assert c.kind == "direct"
    assert "is QEMU 0.12.5; libvirt needs QEMU >= 4.2 with QMP" in c.reasons[0]


@pytest.mark.libvirt
def test_missing_startercall_uses_libvirt_and_names_its_emulator(tmp_path):
    # the direct backend could not run it either: libvirt runs its own emulator, said so
    missing = dataclasses.replace(vms.centos55(tmp_path), startercall="/opt/none/qemu-kvm")
    c = explain_choice("auto", uri="qemu:///system", vm=missing)
    assert c.kind == "libvirt" and c.emulator and c.emulator.startswith("/")
    assert c.reasons[1] == (f"{missing.label}: STARTERCALL /opt/none/qemu-kvm is not installed on this "
                            f"host; libvirt runs its emulator {c.emulator} instead")
    c = explain_choice("auto", uri=DEAD_URI, vm=missing)
    assert c.kind == "direct" and "is not installed on this host either" in c.reasons[1]


@pytest.mark.libvirt
def test_modern_startercall_keeps_libvirt(tmp_path):
    vm = dataclasses.replace(vms.centos55(tmp_path), startercall="/usr/bin/qemu-system-x86_64")
    assert explain_choice("auto", uri="qemu:///system", vm=vm).kind == "libvirt"


def test_explicit_kinds_and_bad_kind():
    assert explain_choice("direct").kind == "direct"
    assert explain_choice("LIBVIRT", uri=DEAD_URI).kind == "libvirt"
    with pytest.raises(UsageError, match="unknown backend 'xen'"):
        explain_choice("xen")
