"""CONSOLE CLI0/CLI with the direct backend, end to end through the console script and
the real qemu-system-x86_64 (TCG, 16 MiB, the hello boot sector): the foreground CLI0
console relays the guest serial and destroys the VM when it ends; ``console`` attaches
a CLI VM's serial socket and detaches leaving it running; a NONE VM has no socket."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import psutil
import pytest

from support.cli import assert_one_line_error, run_cli, popen
from support.confs import write_conf
from support.domains import unique_label

pytestmark = pytest.mark.qemu
QEMU = "/usr/bin/qemu-system-x86_64"
MARKER = b"CTYS-GUEST-OK"


def _qemus_under(base: Path):
    """QEMU processes whose argv points into our runtime base."""
    out = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            if str(base) in " ".join(p.info["cmdline"] or []):
                out.append(p)
        except psutil.Error:
            continue
    return out


@pytest.fixture
def rtbase(tmp_path):
    """A private CTYS_RUNTIME_DIR (short: unix socket paths are limited to 108 bytes);
    every QEMU still running under it is cancelled/killed and the dir removed."""
    base = Path(tempfile.mkdtemp(prefix="ctdc", dir="/tmp"))
    yield base
    from ctys_libvirt.backends.direct import DirectBackend
    from ctys_libvirt.model import CancelMode

    be = DirectBackend(base=base)
    for rt in be._dirs():
        try:
            be.cancel(rt.label, CancelMode.FORCE)
        except Exception:
            pass
    for p in _qemus_under(base):
        try:
            p.kill()
            p.wait(10)
        except psutil.Error:
            pass
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def env(env, rtbase):
    """The common CLI environment with this module's runtime directory."""
    return dict(env, CTYS_RUNTIME_DIR=str(rtbase))


class Proc:
    """A CLI subprocess with pipes; stdout/stderr collected by reader threads."""

    def __init__(self, args, env, prog="ctys-libvirt"):
        self.p = popen(prog, *args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=env)
        self.out = bytearray()
        self.err = bytearray()
        self._threads = [threading.Thread(target=self._pump, args=(s, b), daemon=True)
                         for s, b in ((self.p.stdout, self.out), (self.p.stderr, self.err))]
        for t in self._threads:
            t.start()

    @staticmethod
    def _pump(stream, buf):
        while True:
            chunk = stream.read1(4096)
            if not chunk:
                return
            buf += chunk

    def wait_for(self, buf, needle: bytes, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if needle in buf:
                return True
            if self.p.poll() is not None and needle not in buf:
                time.sleep(0.1)  # let the pumps drain
                return needle in buf
            time.sleep(0.01)
        return False

    def send(self, data: bytes) -> None:
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def finish(self, timeout: float = 30.0) -> int:
        rc = self.p.wait(timeout)
        for t in self._threads:
            t.join(5)
        return rc

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(10)


def _see_marker(proc: Proc, label: str, env) -> None:
    """The console is attached ('Connected to' on stderr); the guest's marker must come
    through it.  QEMU drops serial output while no client is connected, so a boot that
    printed before the attach is repeated with a RESET (the marker comes again)."""
    assert proc.wait_for(proc.err, f"Connected to {label}".encode(), 30), bytes(proc.err)
    if not proc.wait_for(proc.out, MARKER, 3):
        r = run_cli("cancel", label, "--mode", "RESET", "--backend", "direct", env=env)
        assert r.returncode == 0, r.stderr
        assert proc.wait_for(proc.out, MARKER, 20), (bytes(proc.out), bytes(proc.err))


def test_create_cli0_relays_serial_and_destroys_on_detach(vmroot, media, rtbase, env):
    label = unique_label("cli0")
    conf = write_conf(vmroot, label, image=media["hello"])
    proc = Proc(["create", str(conf), "--backend", "direct", "--console", "CLI0", "--qemu", QEMU], env)
    try:
        # QEMU starts held at -S and continues once the console is attached, so the first
        # boot's marker arrives: no RESET fallback here
        assert proc.wait_for(proc.err, f"Connected to {label}".encode(), 30), bytes(proc.err)
        assert proc.wait_for(proc.out, MARKER, 20), (bytes(proc.out), bytes(proc.err))
        pid = int((rtbase / label / "qemu.pid").read_text())
        assert psutil.pid_exists(pid)
        proc.send(b"\x1d")
        rc = proc.finish()
    finally:
        proc.kill()
    err = proc.err.decode(errors="replace")
    assert rc == 0, err
    assert f"{label}: paused" in proc.out.decode(errors="replace")         # the CREATE line (-S)
    assert f"[{label}: console detached]" in err
    assert f"{label}: destroyed (CLI0 console ended)" in err
    assert "Traceback" not in err
    assert not (rtbase / label).exists()                                    # runtime dir gone
    assert not _qemus_under(rtbase)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_ctys_qemu_create_cli0_direct_continues_and_destroys(vmroot, media, rtbase, env):
    """ctys-qemu -a CREATE=...,CONSOLE:CLI0 with the direct backend: the same CLI0 policy as
    ctys-libvirt (the lifecycle layer's): the VM held at -S is continued once the console is
    attached and destroyed when it ends (it used to be left paused, with no console)."""
    label = unique_label("qcli0")
    conf = write_conf(vmroot, label, image=media["hello"],
                      extra=f"STARTERCALL={QEMU}\n")
    proc = Proc(["--backend", "direct", "-a", f"CREATE=P:{conf},CONSOLE:CLI0"], env, prog="ctys-qemu")
    try:
        assert proc.wait_for(proc.err, f"Connected to {label}".encode(), 30), (bytes(proc.out), bytes(proc.err))
        assert proc.wait_for(proc.out, MARKER, 20), (bytes(proc.out), bytes(proc.err))
        pid = int((rtbase / label / "qemu.pid").read_text())
        proc.send(b"\x1d")
        rc = proc.finish()
    finally:
        proc.kill()
    out, err = proc.out.decode(errors="replace"), proc.err.decode(errors="replace")
    assert rc == 0, err
    assert f"CREATE localhost: {label}: paused" in out and "backend direct" in out
    assert out.index(f"CREATE localhost: {label}") < out.index(MARKER.decode())  # the line first
    assert f"[{label}: console detached]" in err
    assert f"{label}: destroyed (CLI0 console ended)" in err
    assert "Traceback" not in err
    assert not (rtbase / label).exists() and not _qemus_under(rtbase)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_console_attaches_cli_vm_and_detach_leaves_it_running(vmroot, media, rtbase, env):
    label = unique_label("cli")
    conf = write_conf(vmroot, label, image=media["hello"])
    r = run_cli("create", str(conf), "--backend", "direct", "--console", "CLI", "--qemu", QEMU, env=env)
    assert r.returncode == 0, r.stderr
    sock = rtbase / label / "serial.sock"
    assert sock.is_socket()
    pid = int((rtbase / label / "qemu.pid").read_text())
    # the label, no --backend: libvirt does not know it, the direct backend does
    proc = Proc(["console", label], env)
    try:
        assert proc.wait_for(proc.err, f"Connected to {label}".encode(), 30), bytes(proc.err)
        r = run_cli("cancel", label, "--mode", "RESET", "--backend", "direct", env=env)
        assert r.returncode == 0, r.stderr
        assert proc.wait_for(proc.out, MARKER, 20), (bytes(proc.out), bytes(proc.err))
        proc.send(b"\x1d")
        rc = proc.finish()
    finally:
        proc.kill()
    assert rc == 0, proc.err
    assert f"[{label}: console detached]" in proc.err.decode()
    assert psutil.Process(pid).is_running() and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    assert sock.is_socket()
    # attach again, explicitly --backend direct: the socket serves a new client
    proc = Proc(["console", label, "--backend", "direct"], env)
    try:
        assert proc.wait_for(proc.err, f"Connected to {label}".encode(), 30), bytes(proc.err)
        proc.send(b"\x1d")
        assert proc.finish() == 0
    finally:
        proc.kill()
    r = run_cli("cancel", label, "--mode", "FORCE", "--backend", "direct", env=env)
    assert r.returncode == 0, r.stderr
    assert not (rtbase / label).exists() and not _qemus_under(rtbase)


def test_console_of_none_vm_is_one_line_error(vmroot, media, rtbase, env):
    label = unique_label("none")
    conf = write_conf(vmroot, label, image=media["hello"])
    r = run_cli("create", str(conf), "--backend", "direct", "--console", "NONE", "--qemu", QEMU, env=env)
    assert r.returncode == 0, r.stderr
    for args in (["console", label, "--backend", "direct"], ["console", str(conf)]):
        r = run_cli(*args, env=env)
        assert_one_line_error(r, 4, label, "has no serial console socket", "NONE", "serial.log")
    assert (rtbase / label / "qemu.pid").exists()                           # untouched, still running
    r = run_cli("cancel", label, "--mode", "FORCE", "--backend", "direct", env=env)
    assert r.returncode == 0, r.stderr


def test_console_unknown_vm_keeps_libvirt_error(rtbase, env):
    r = run_cli("console", "ctystest-nosuchvm-x1", env=env)
    assert_one_line_error(r, 2, "ctystest-nosuchvm-x1")
    r = run_cli("console", "ctystest-nosuchvm-x1", "--backend", "direct", env=env)
    assert_one_line_error(r, 2, "ctystest-nosuchvm-x1")


def test_create_cli0_ends_when_qemu_goes_away(vmroot, media, rtbase, env):
    label = unique_label("cli0eof")
    conf = write_conf(vmroot, label, image=media["hello"])
    proc = Proc(["create", str(conf), "--backend", "direct", "--console", "CLI0", "--qemu", QEMU], env)
    try:
        assert proc.wait_for(proc.err, f"Connected to {label}".encode(), 30), bytes(proc.err)
        r = run_cli("cancel", label, "--mode", "FORCE", "--backend", "direct", env=env)
        assert r.returncode == 0, r.stderr
        rc = proc.finish()
    finally:
        proc.kill()
    err = proc.err.decode(errors="replace")
    assert rc == 0, err
    assert f"[{label}: console closed]" in err
    assert "destroyed (CLI0 console ended)" not in err                      # nothing left to destroy
    assert not (rtbase / label).exists() and not _qemus_under(rtbase)
