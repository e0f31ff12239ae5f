"""The real qemu-system-x86_64 through the direct backend (TCG, 16 MiB): the shared
guests boot from HDD, CD, FDD and KERNEL (serial marker), ACPI POWEROFF, escalation
for a guest that ignores ACPI, SUSPEND/RESUME through migrate, a few clean cycles."""
from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from ctys_libvirt.backends.direct import DirectBackend
from ctys_libvirt.model import BootMode, BootRequest, CancelMode, ConsoleType, CreateOptions
from ctys_libvirt.translate.request import parse_kernel
from fakeqemu import vms
from lifecycle_helpers import wait_marker

pytestmark = pytest.mark.qemu
QEMU = "/usr/bin/qemu-system-x86_64"


@pytest.fixture
def be(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    base = Path(tempfile.mkdtemp(prefix="ctrq", dir="/tmp"))
    b = DirectBackend(qemu=QEMU, base=base)
    yield b
    for rt in b._dirs():   # clean up whatever a failed test left running
        try:
            b.cancel(rt.label, CancelMode.FORCE)
        except Exception:
            pass
    shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("mode,medium", [
    (BootMode.HDD, None), (BootMode.CD, "hello-iso"), (BootMode.FDD, "hello-floppy")])
def test_boot_media_reach_the_marker(be, vmroot, media, mode, medium):
    vm = vms.guest(vmroot, media, "hello", label=f"ctystest-d{mode.value.lower()}")
    if mode is BootMode.HDD:
        vm = dataclasses.replace(vm, hdd_boot_image=None)
    req = BootRequest(bootmode=mode, boot_path=str(media[medium]) if medium else str(media["hello"]),
                      console=ConsoleType.NONE)
    res = be.create(vm, req, CreateOptions())
    argv = (be.runtime(vm.label).argv_file.read_text())
    assert {BootMode.HDD: "order=c", BootMode.CD: "order=d", BootMode.FDD: "order=a"}[mode] in argv
    wait_marker(be.runtime(vm.label).serial_log, "CTYS-GUEST-OK")
    assert psutil.Process(res.pid).is_running()
    r = be.cancel(vm.label, CancelMode.POWEROFF, timeout=0.5)   # hello ignores ACPI -> quit
    assert r.action == "quit" and r.messages[0] == "no ACPI shutdown within 0.5s"


def test_kernel_boot_with_initrd_and_append(be, vmroot, media):
    vm = vms.guest(vmroot, media, "hello", label="ctystest-dkern", hdd_boot_image=None)
    req = BootRequest(bootmode=BootMode.KERNEL,
                      kernel=parse_kernel(f"{media['mbkernel']}%{media['mbkernel-mod']}%console=ttyS0 ctys=hello world"),
                      console=ConsoleType.VNC)
    res = be.create(vm, req, CreateOptions())
    assert res.vnc_display is not None and res.vnc_port == 5900 + res.vnc_display
    text = wait_marker(be.runtime(vm.label).serial_log, "CTYS-KERNEL-OK")
    line = next(l for l in text.splitlines() if "CTYS-KERNEL-OK" in l)
    assert " console=ttyS0 ctys=hello world mods=1 mod0=hello module" in line   # APPEND honoured
    conns = {c.laddr for c in psutil.Process(res.pid).net_connections("tcp") if c.status == "LISTEN"}
    assert ("127.0.0.1", res.vnc_port) in conns                                  # VNC on loopback only
    be.cancel(vm.label, CancelMode.FORCE)


def test_acpi_guest_powers_off(be, vmroot, media):
    vm = vms.guest(vmroot, media, "acpi", label="ctystest-dacpi")
    res = be.create(vm, BootRequest(console=ConsoleType.NONE), CreateOptions())
    log = be.runtime(vm.label).serial_log
    wait_marker(log, "CTYS-GUEST-OK ACPI")
    t = time.monotonic()
    r = be.cancel(vm.label, CancelMode.POWEROFF, timeout=15)
    assert r.action == "shutdown" and time.monotonic() - t < 10
    assert not psutil.pid_exists(res.pid) or psutil.Process(res.pid).status() == psutil.STATUS_ZOMBIE
    assert not be.runtime(vm.label).dir.exists()


def test_pause_suspend_resume_real(be, vmroot, media):
    vm = vms.guest(vmroot, media, "hello", label="ctystest-dsusp")
    be.create(vm, BootRequest(console=ConsoleType.NONE), CreateOptions())
    wait_marker(be.runtime(vm.label).serial_log, "CTYS-GUEST-OK")
    assert be.cancel(vm.label, CancelMode.PAUSE).state == "paused"
    assert be.lookup(vm.label).state == "paused"
    be.cancel(vm.label, CancelMode.RESUME)
    r = be.cancel(vm.label, CancelMode.SUSPEND, timeout=30)
    assert r.action == "saved" and be.runtime(vm.label).vmstate.stat().st_size > 1000
    r = be.cancel(vm.label, CancelMode.RESUME, timeout=30)
    assert (r.action, r.state) == ("restored", "running")
    assert be.lookup(vm.label).state == "running"
    be.cancel(vm.label, CancelMode.FORCE)


def test_real_start_cancel_cycles_leave_nothing(be, vmroot, media):
    vm = vms.guest(vmroot, media, "hello", label="ctystest-dcyc")
    fds = len(os.listdir("/proc/self/fd"))
    pids = []
    for _ in range(5):
        res = be.create(vm, BootRequest(console=ConsoleType.NONE), CreateOptions())
        pids.append(res.pid)
        assert be.cancel(vm.label, CancelMode.FORCE).action == "quit"
    assert len(os.listdir("/proc/self/fd")) == fds
    assert os.listdir(be.base) == []
    for p in pids:
        assert not psutil.pid_exists(p) or psutil.Process(p).status() == psutil.STATUS_ZOMBIE


def test_qemu_rejecting_argsadd_shows_its_stderr(be, vmroot, media):
    vm = dataclasses.replace(vms.guest(vmroot, media, "hello", label="ctystest-dbad"), argsadd="-soundhw ac97")
    from ctys_libvirt.errors import BackendError

    with pytest.raises(BackendError, match=r"QEMU 7\.2\.\d+ failed to start ctystest-dbad \(exit 1\): .*soundhw"):
        be.create(vm, BootRequest(console=ConsoleType.NONE), CreateOptions())
    assert not be.runtime(vm.label).dir.exists()
