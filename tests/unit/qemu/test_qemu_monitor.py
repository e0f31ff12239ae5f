"""HMP and QMP clients against the fake QEMU's monitor sockets, and their faults."""
from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from ctys_libvirt.errors import BackendError
from ctys_libvirt.qemu.monitor import HmpClient, QmpClient, open_monitor
from support.fakeqemu import make_fake


@pytest.fixture
def sockdir():
    d = Path(tempfile.mkdtemp(prefix="ctmon", dir="/tmp"))
    yield d
    for p in d.iterdir():
        p.unlink()
    d.rmdir()


def _start(tmp_path, sockdir, flag, sock):
    fake = make_fake(tmp_path, "0.14.1-qemu-kvm")
    pidf = sockdir / "pid"
    subprocess.run([str(fake), flag, f"unix:{sock},server,nowait", "-pidfile", str(pidf), "-daemonize"],
                   check=True)
    return int(pidf.read_text())


def _dead(pid, t=5):
    end = time.monotonic() + t
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except OSError:
            return True
        time.sleep(0.01)
    return False


def test_hmp_commands(tmp_path, sockdir):
    sock = sockdir / "m.sock"
    pid = _start(tmp_path, sockdir, "-monitor", sock)
    c = HmpClient(str(sock))
    assert c.status() == "running"
    assert c.command("stop") == ""
    assert c.status() == "paused"
    c.command("cont")
    assert c.status() == "running"
    assert c.command("quit") == ""              # QEMU closes the connection
    c.close()
    assert _dead(pid)


def test_qmp_commands(tmp_path, sockdir):
    sock = sockdir / "q.sock"
    pid = _start(tmp_path, sockdir, "-qmp", sock)
    m = open_monitor(str(sock), "qmp")
    assert m.kind == "qmp" and m.client.greeting["QMP"]["version"]["qemu"]["minor"] == 12
    m.stop()
    assert m.status() == "paused"
    m.cont()
    m.reset()
    assert m.status() == "running"
    m.quit()
    m.close()
    assert _dead(pid)


def test_socket_gone_and_refused(sockdir):
    with pytest.raises(BackendError, match=r"monitor socket .*/none.sock is gone") as ei:
        HmpClient(str(sockdir / "none.sock"))
    assert ei.value.exit_code == 4
    stale = sockdir / "stale.sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(stale))
    s.close()                                     # file stays, nobody listens
    with pytest.raises(BackendError, match="refused the connection"):
        QmpClient(str(stale))


def test_qmp_error_reply_and_silent_monitor(sockdir):
    sock = sockdir / "e.sock"
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(str(sock))
    srv.listen(1)

    def serve():
        c, _ = srv.accept()
        c.sendall(b'{"QMP": {"version": {}}}\r\n')
        c.recv(4096)
        c.sendall(b'{"return": {}}\r\n')
        c.recv(4096)
        c.sendall(b'{"event": "STOP"}\r\n{"error": {"class": "GenericError", "desc": "no such thing"}}\r\n')
        c.recv(4096)
        time.sleep(1)                              # then say nothing
        c.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    q = QmpClient(str(sock), timeout=0.3)
    with pytest.raises(BackendError, match="QMP frobnicate failed: no such thing"):
        q.execute("frobnicate")
    with pytest.raises(BackendError, match=r"did not answer within 0.3s"):
        q.execute("query-status")
    q.close()
    srv.close()


def test_state_file_uri_is_shell_quoted_and_hmp_limits_are_checked():
    """exec:cat > FILE is a /bin/sh command line; HMP carries it inside double quotes."""
    from types import SimpleNamespace

    from ctys_libvirt.qemu.monitor import Monitor

    qmp = Monitor(SimpleNamespace(kind="qmp"))
    hmp = Monitor(SimpleNamespace(kind="hmp"))
    odd = "/run/x y/$a'b/vmstate"
    assert qmp.file_uri(odd) == "exec:cat > '/run/x y/$a'\"'\"'b/vmstate'"
    with pytest.raises(BackendError, match="cannot name"):
        hmp.file_uri(odd)                       # the quote needs a '"' inside HMP's "..."
    assert hmp.file_uri("/run/x y/$a/vmstate") == "exec:cat > '/run/x y/$a/vmstate'"
