"""The direct backend driving fake legacy QEMUs (fast): lifecycle, monitor verbs,
kill escalation, locks, stale state, faults, 100 start/cancel cycles, LIST."""
from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from ctys_libvirt.backends.direct import DirectBackend
from ctys_libvirt.errors import AlreadyRunning, BackendError, NotRunning
from ctys_libvirt.model import BootRequest, CancelMode, ConsoleType, CreateOptions
from ctys_libvirt.ctys.records import list_record
from ctys_libvirt.translate.request import parse_instmode
from support.fakeqemu import make_fake, recorded_argv, vms


@pytest.fixture
def fake_rt(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    base = Path(tempfile.mkdtemp(prefix="ctrt", dir="/tmp"))   # short: unix socket paths
    yield tmp_path, base
    # never leave a fake running, whatever the test did
    for p in psutil.process_iter(["cmdline"]):
        if any(str(tmp_path) in c for c in (p.info["cmdline"] or [])[:3]):
            p.kill()
    shutil.rmtree(base, ignore_errors=True)


def _vm(tmp_path, label="ctystest-fake"):
    import dataclasses

    return dataclasses.replace(vms.debian5(tmp_path), label=label, nic_model=None, memory_mib=16)


def _be(tmp_path, base, key="0.9.1", behaviour="normal"):
    return DirectBackend(qemu=str(make_fake(tmp_path / "bin" / behaviour, key, behaviour=behaviour)),
                         base=base)


def _gone(pid, t=5.0):
    from ctys_libvirt.qemu.runtime import pid_alive as _pid_alive

    end = time.monotonic() + t
    while time.monotonic() < end:
        if not _pid_alive(pid):
            return True
        time.sleep(0.01)
    return False


@pytest.mark.parametrize("key", ["0.9.1", "0.12.5-qemu-kvm", "2.11.1"])
def test_create_list_poweroff(fake_rt, key):
    tmp, base = fake_rt
    be = _be(tmp, base, key)
    vm = _vm(tmp)
    res = be.create(vm, BootRequest(console=ConsoleType.VNC, vnc_display=7), CreateOptions())
    assert res.backend == "direct" and res.state == "running" and res.vnc_port == 5907
    rt = be.runtime(vm.label)
    assert stat.S_IMODE(os.stat(rt.dir).st_mode) == 0o700
    argv = json.loads(rt.argv_file.read_text())
    assert recorded_argv(Path(be.qemu))[-1][1:] == argv[1:]          # QEMU got exactly that
    assert rt.sha_file.read_text().strip() == vm.sha256
    assert int(rt.pidfile.read_text()) == res.pid
    assert "CTYS-GUEST-OK" in rt.serial_log.read_text()
    infos = [i for i in be.list() if i.ours]
    assert [(i.name, i.state, i.pid, i.vnc_display, i.backend) for i in infos] == \
        [(vm.label, "running", res.pid, 7, "direct")]
    rec = list_record(infos[0])
    assert rec.label == vm.label and rec.pid == str(res.pid) and rec.uuid == vm.uuid
    assert be.lookup(vm.uuid).name == vm.label
    r = be.cancel(vm.label, CancelMode.POWEROFF, timeout=5)
    assert (r.action, r.state) == ("shutdown", "shutoff")
    assert _gone(res.pid) and not rt.dir.exists()
    assert not [i for i in be.list() if i.ours]


def test_second_start_refused_by_lock(fake_rt):
    tmp, base = fake_rt
    be = _be(tmp, base)
    vm = _vm(tmp)
    res = be.create(vm, BootRequest(console=ConsoleType.NONE))
    with pytest.raises(AlreadyRunning, match=rf"{vm.label} is already running \(direct backend, pid {res.pid}\)") as ei:
        be.create(vm, BootRequest(console=ConsoleType.NONE))
    assert ei.value.exit_code == 4
    assert len(recorded_argv(Path(be.qemu))) == 1                       # never started twice
    be.cancel(vm.label, CancelMode.FORCE)


@pytest.mark.parametrize("key", ["0.9.1", "2.11.1"])
def test_pause_resume_reset(fake_rt, key):
    tmp, base = fake_rt
    be = _be(tmp, base, key)
    vm = _vm(tmp)
    be.create(vm, BootRequest(console=ConsoleType.NONE))
    assert be.cancel(vm.label, CancelMode.PAUSE).state == "paused"
    assert be.lookup(vm.label).state == "paused"
    assert be.cancel(vm.label, CancelMode.RESUME).action == "resumed"
    assert be.lookup(vm.label).state == "running"
    with pytest.raises(BackendError, match="is running, not paused or saved"):
        be.cancel(vm.label, CancelMode.RESUME)
    be.cancel(vm.label, CancelMode.RESET)
    assert be.runtime(vm.label).serial_log.read_text().count("CTYS-GUEST-OK") == 2
    be.cancel(vm.label, CancelMode.FORCE)


@pytest.mark.parametrize("behaviour,action,steps", [
    ("ignore-acpi", "quit", ["no ACPI shutdown within 0.3s", "QEMU ended by monitor quit"]),
    ("ignore-all", "sigkill", ["no ACPI shutdown within 0.3s", "monitor quit ignored", "SIGTERM ignored",
                               "QEMU killed with SIGKILL"]),
])
def test_poweroff_escalation(fake_rt, behaviour, action, steps, monkeypatch):
    import ctys_libvirt.backends.direct as direct

    monkeypatch.setattr(direct, "STEP_WAIT", 0.3)
    tmp, base = fake_rt
    be = _be(tmp, base, "0.9.1", behaviour)
    vm = _vm(tmp)
    pid = be.create(vm, BootRequest(console=ConsoleType.NONE)).pid
    r = be.cancel(vm.label, CancelMode.POWEROFF, timeout=0.3)
    assert r.action == action and r.messages == steps
    assert _gone(pid) and not be.runtime(vm.label).dir.exists()


def test_force_skips_powerdown(fake_rt):
    tmp, base = fake_rt
    be = _be(tmp, base, "0.9.1", "normal")
    vm = _vm(tmp)
    be.create(vm, BootRequest(console=ConsoleType.NONE))
    r = be.cancel(vm.label, CancelMode.FORCE)
    assert r.action == "quit" and r.messages == ["QEMU ended by monitor quit"]


def test_suspend_and_resume_through_migrate(fake_rt):
    tmp, base = fake_rt
    be = _be(tmp, base, "2.11.1")
    vm = _vm(tmp)
    pid = be.create(vm, BootRequest(console=ConsoleType.NONE)).pid
    r = be.cancel(vm.label, CancelMode.SUSPEND)
    rt = be.runtime(vm.label)
    assert r.action == "saved" and _gone(pid)
    assert rt.vmstate.read_text() == "FAKE-VMSTATE\n"
    assert be.lookup(vm.label).state == "saved"
    assert [i.state for i in be.list(include_inactive=True) if i.ours] == ["saved"]
    assert not [i for i in be.list(include_inactive=False) if i.ours]
    r = be.cancel(vm.label, CancelMode.RESUME)
    assert (r.action, r.state) == ("restored", "running")
    last = recorded_argv(Path(be.qemu))[-1]
    assert last[-2] == "-incoming" and last[-1].startswith("exec:cat ")
    assert not rt.vmstate.exists()
    be.cancel(vm.label, CancelMode.FORCE)


def test_suspend_refused_on_0_9(fake_rt):
    tmp, base = fake_rt
    be = _be(tmp, base, "0.9.1")
    vm = _vm(tmp)
    be.create(vm, BootRequest(console=ConsoleType.NONE))
    with pytest.raises(BackendError, match=r"SUSPEND needs QEMU 0\.10 or newer .* QEMU 0\.9\.1"):
        be.cancel(vm.label, CancelMode.SUSPEND)
    assert be.lookup(vm.label).state == "running"
    be.cancel(vm.label, CancelMode.FORCE)


def test_install_stage_init_creates_target_once(fake_rt):
    tmp, base = fake_rt
    import dataclasses

    be = _be(tmp, base, "2.11.1")
    vm = dataclasses.replace(_vm(tmp), inst_size="64M")
    target = tmp / "new-target.img"
    req = BootRequest(instmode=parse_instmode(f"CD%{vm.cd_image}%HDD%{target}%INIT"), console=ConsoleType.NONE)
    res = be.create(vm, req)
    assert res.install and res.created_target == str(target) and target.stat().st_size == 64 * 2**20
    argv = recorded_argv(Path(be.qemu))[-1]
    assert f"file={vm.cd_image},format=raw,if=ide,index=2,media=cdrom" in argv
    assert any(a.startswith(f"file={target},format=raw,if=ide,index=0") for a in argv)
    assert argv[argv.index("-boot") + 1] == "order=dc"
    be.cancel(vm.label, CancelMode.FORCE)
    target.write_bytes(b"keep")
    res = be.create(vm, req)                       # exists now: never overwritten
    assert res.created_target is None and target.read_bytes() == b"keep"
    be.cancel(vm.label, CancelMode.FORCE)


def test_failed_start_removes_the_target_it_created_but_never_an_old_one(fake_rt):
    tmp, base = fake_rt
    import dataclasses

    be = _be(tmp, base, "2.11.1", "die-at-start")
    vm = dataclasses.replace(_vm(tmp), inst_size="64M")
    target = tmp / "new-target.img"
    req = BootRequest(instmode=parse_instmode(f"CD%{vm.cd_image}%HDD%{target}%INIT"), console=ConsoleType.NONE)
    with pytest.raises(BackendError, match="failed to start"):
        be.create(vm, req)
    assert not target.exists()
    target.write_bytes(b"keep")                    # existed before: a failed start leaves it
    with pytest.raises(BackendError, match="failed to start"):
        be.create(vm, req)
    assert target.read_bytes() == b"keep"


def test_qemu_dying_at_start_shows_stderr_and_leaves_nothing(fake_rt):
    tmp, base = fake_rt
    be = _be(tmp, base, "0.9.1", "die-at-start")
    vm = _vm(tmp)
    with pytest.raises(BackendError, match=r"QEMU 0\.9\.1 failed to start ctystest-fake \(exit 1\): "
                                           r"qemu: could not open disk image /nonexistent") as ei:
        be.create(vm, BootRequest(console=ConsoleType.NONE))
    assert ei.value.exit_code == 4
    assert not be.runtime(vm.label).dir.exists()
    assert vm.hdd_boot_image.stat().st_size == 512            # the user's image untouched


def test_qemu_never_daemonizing_times_out(fake_rt):
    from ctys_libvirt.errors import CtysTimeout

    tmp, base = fake_rt
    be = _be(tmp, base, "0.9.1", "hang-start")
    be.start_timeout = 0.5
    vm = _vm(tmp)
    t = time.monotonic()
    with pytest.raises(CtysTimeout, match="did not daemonize within 0.5s") as ei:
        be.create(vm, BootRequest(console=ConsoleType.NONE))
    assert ei.value.exit_code == 5 and time.monotonic() - t < 3
    assert not be.runtime(vm.label).dir.exists()


def test_stale_pidfile_and_socket_cleaned(fake_rt):
    tmp, base = fake_rt
    be = _be(tmp, base)
    vm = _vm(tmp)
    pid = be.create(vm, BootRequest(console=ConsoleType.NONE)).pid
    os.kill(pid, signal.SIGKILL)
    assert _gone(pid)
    rt = be.runtime(vm.label)
    assert rt.pidfile.exists() and rt.monitor.exists()          # what a crash leaves
    with pytest.raises(NotRunning, match="not running \\(stale runtime dir cleaned\\)"):
        be.cancel(vm.label, CancelMode.POWEROFF)
    assert not rt.dir.exists()
    pid = be.create(vm, BootRequest(console=ConsoleType.NONE)).pid
    os.kill(pid, signal.SIGKILL)
    assert _gone(pid)
    res = be.create(vm, BootRequest(console=ConsoleType.NONE))   # restart over the debris
    assert any("cleaned stale qemu.pid, monitor.sock" in m for m in res.messages)
    be.cancel(vm.label, CancelMode.FORCE)
    pid = be.create(vm, BootRequest(console=ConsoleType.NONE)).pid
    os.kill(pid, signal.SIGKILL)
    assert _gone(pid)
    assert not [i for i in be.list() if i.ours] and not rt.dir.exists()   # LIST cleans too


def test_monitor_socket_gone(fake_rt):
    tmp, base = fake_rt
    be = _be(tmp, base, "0.9.1")
    vm = _vm(tmp)
    pid = be.create(vm, BootRequest(console=ConsoleType.NONE)).pid
    be.runtime(vm.label).monitor.unlink()
    with pytest.raises(BackendError, match=r"monitor socket .*/monitor.sock is gone") as ei:
        be.cancel(vm.label, CancelMode.PAUSE)
    assert ei.value.exit_code == 4
    r = be.cancel(vm.label, CancelMode.POWEROFF, timeout=0.2)
    assert r.action == "sigterm" and "monitor unusable" in r.messages[0]
    assert _gone(pid)


def test_cancel_unknown(fake_rt):
    tmp, base = fake_rt
    with pytest.raises(NotRunning, match="nosuchvm is not running under the direct backend"):
        _be(tmp, base).cancel("nosuchvm", CancelMode.POWEROFF)


def _fds():
    return len(os.listdir("/proc/self/fd"))


def test_hundred_start_cancel_cycles_leave_nothing(fake_rt):
    tmp, base = fake_rt
    be = _be(tmp, base, "0.12.5")
    vm = _vm(tmp)
    be.create(vm, BootRequest(console=ConsoleType.NONE))
    be.cancel(vm.label, CancelMode.FORCE)                      # warm caches before counting fds
    fds = _fds()
    pids = []
    for _ in range(100):
        pids.append(be.create(vm, BootRequest(console=ConsoleType.NONE)).pid)
        be.cancel(vm.label, CancelMode.FORCE)
    assert _fds() == fds
    assert all(_gone(p, 0.5) for p in pids)
    assert os.listdir(base) == []
    alive = [p for p in psutil.process_iter(["cmdline"]) if be.qemu in (p.info["cmdline"] or [])[:3]]
    assert alive == []
    assert len(recorded_argv(Path(be.qemu))) == 101


def test_list_shows_foreign_qemu(fake_rt):
    tmp, base = fake_rt
    fake = make_fake(tmp / "bin", "2.11.1", name="qemu-system-x86_64")
    pidfile = tmp / "f.pid"
    subprocess.run([str(fake), "-name", "foreignvm", "-uuid", "11111111-2222-3333-4444-555555555555",
                    "-pidfile", str(pidfile), "-daemonize"], check=True)
    pid = int(pidfile.read_text())
    try:
        infos = {i.name: i for i in DirectBackend(base=base).list()}
        f = infos["foreignvm"]
        assert (f.ours, f.pid, f.state, f.uuid, f.backend) == (False, pid, "running",
                                                              "11111111-2222-3333-4444-555555555555", "direct")
    finally:
        os.kill(pid, signal.SIGTERM)
