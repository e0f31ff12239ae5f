"""console_socket.ConsoleSession against a unix-socket server thread (stands in for
QEMU's ``-serial unix:PATH,server=on``): bytes relayed both ways, Ctrl-] detaches,
socket EOF ends with 'closed', a pty input is raw during the session and restored."""
from __future__ import annotations

import os
import socket
import tempfile
import termios
import threading
from pathlib import Path

import pytest

from ctys_libvirt.backends import console_socket
from ctys_libvirt.errors import NotRunning


class Server:
    """One-client unix socket server: records what it receives, sends on request."""

    def __init__(self, path: Path):
        self.path = path
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen(1)
        self.conn = None
        self.got = bytearray()
        self.eof = threading.Event()
        self.accepted = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.conn, _ = self.listener.accept()
        self.accepted.set()
        while True:
            try:
                data = self.conn.recv(4096)
            except OSError:
                break
            if not data:
                break
            self.got += data
        self.eof.set()

    def wait_got(self, n: int, timeout: float = 5.0) -> bytes:
        import time

        end = time.monotonic() + timeout
        while len(self.got) < n and time.monotonic() < end:
            time.sleep(0.005)
        return bytes(self.got)

    def close(self):
        for s in (self.conn, self.listener):
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass


@pytest.fixture
def server():
    d = Path(tempfile.mkdtemp(prefix="ctcs", dir="/tmp"))
    srv = Server(d / "serial.sock")
    yield srv
    srv.close()
    for p in d.iterdir():
        p.unlink()
    d.rmdir()


def _read_until(fd: int, want: bytes, timeout: float = 5.0) -> bytes:
    import select

    buf = b""
    while want not in buf:
        r, _, _ = select.select([fd], [], [], timeout)
        assert r, f"{want!r} not read; got {buf!r}"
        chunk = os.read(fd, 4096)
        assert chunk, f"EOF before {want!r}; got {buf!r}"
        buf += chunk
    return buf


def _run_in_thread(session, timeout=10.0):
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("reason", session.run(timeout)), daemon=True)
    t.start()
    return t, out


def test_relays_both_ways_and_ctrl_bracket_detaches(server):
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    s = console_socket.ConsoleSession(str(server.path), in_r, out_w, name="vm1")
    t, res = _run_in_thread(s)
    assert server.accepted.wait(5)
    server.conn.sendall(b"CTYS-GUEST-OK\r\n")
    assert _read_until(out_r, b"CTYS-GUEST-OK\r\n") == b"CTYS-GUEST-OK\r\n"
    os.write(in_w, b"ls -l\r")
    assert server.wait_got(6) == b"ls -l\r"
    os.write(in_w, b"ab\x1dNOT-SENT")            # bytes before ^] go out, the rest not
    t.join(5)
    assert res["reason"] == "detached"
    assert server.eof.wait(5)                   # the session closed its connection
    assert bytes(server.got) == b"ls -l\rab"
    for fd in (in_r, in_w, out_r, out_w):
        os.close(fd)


def test_socket_eof_is_closed(server):
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    s = console_socket.ConsoleSession(str(server.path), in_r, out_w)
    t, res = _run_in_thread(s)
    assert server.accepted.wait(5)
    server.conn.sendall(b"bye\r\n")
    server.conn.shutdown(socket.SHUT_RDWR)      # QEMU gone
    t.join(5)
    assert res["reason"] == "closed"
    os.close(out_w)
    assert os.read(out_r, 100) == b"bye\r\n"
    for fd in (in_r, in_w, out_r):
        os.close(fd)


def test_end_of_piped_input_ends_session(server):
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    os.write(in_w, b"x")
    os.close(in_w)
    assert console_socket.attach(str(server.path), in_r, out_w, timeout=5) == "eof"
    assert server.wait_got(1) == b"x"
    for fd in (in_r, out_r, out_w):
        os.close(fd)


def test_timeout_without_input(server):
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    assert console_socket.attach(str(server.path), in_r, out_w, timeout=0.2) == "timeout"
    for fd in (in_r, in_w, out_r, out_w):
        os.close(fd)


def test_no_socket_is_not_running(tmp_path):
    with pytest.raises(NotRunning) as ei:
        console_socket.ConsoleSession(str(tmp_path / "vmx" / "serial.sock"), None, 1, name="vmx")
    assert ei.value.exit_code == 4 and "vmx" in ei.value.message


def test_tty_raw_during_session_and_restored_after_exception(server, monkeypatch):
    master, slave = os.openpty()
    before = termios.tcgetattr(slave)
    assert before[3] & termios.ECHO and before[3] & termios.ICANON
    out_r, out_w = os.pipe()
    s = console_socket.ConsoleSession(str(server.path), slave, out_w)
    seen = {}

    def boom():
        attrs = termios.tcgetattr(slave)
        seen["lflag"] = attrs[3]
        raise RuntimeError("relay failed")

    monkeypatch.setattr(s, "_on_socket", boom)
    t = threading.Thread(target=lambda: server.accepted.wait(5) and server.conn.sendall(b"x"))
    t.start()
    with pytest.raises(RuntimeError):
        s.run(5)
    t.join(5)
    assert not seen["lflag"] & (termios.ECHO | termios.ICANON)   # raw while attached
    assert termios.tcgetattr(slave) == before                     # restored after the exception
    for fd in (master, slave, out_r, out_w):
        os.close(fd)


def test_tty_ctrl_bracket_detaches_and_restores(server):
    master, slave = os.openpty()
    before = termios.tcgetattr(slave)
    out_r, out_w = os.pipe()
    s = console_socket.ConsoleSession(str(server.path), slave, out_w)
    t, res = _run_in_thread(s)
    assert server.accepted.wait(5)
    import time

    end = time.monotonic() + 5   # setraw flushes pending input: type once raw is on
    while termios.tcgetattr(slave)[3] & termios.ICANON and time.monotonic() < end:
        time.sleep(0.005)
    os.write(master, b"\x03q\x1d")              # raw: ^C goes to the guest, not SIGINT
    t.join(5)
    assert res["reason"] == "detached"
    assert server.wait_got(2) == b"\x03q"
    assert termios.tcgetattr(slave) == before
    for fd in (master, slave, out_r, out_w):
        os.close(fd)
