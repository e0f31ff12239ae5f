"""Serial console attach through a unix socket (the direct backend's ``serial.sock``).

QEMU serves the guest's serial line on a listening unix socket (``-serial
unix:PATH,server=on,wait=off``).  This relays it to a pair of fds with ``selectors``:
socket -> ``out_fd``, ``in_fd`` -> socket.  Ctrl-] (0x1d) in the input detaches; EOF
on the socket means QEMU is gone.  When ``in_fd`` is a tty it is switched to raw mode
for the session and always restored.  Same interface as ``console.ConsoleSession``
(constructor opens the console, ``run()`` blocks and returns why it ended)."""
from __future__ import annotations

import errno
import os
import selectors
import socket
import termios
import time
import tty
from typing import Optional

from ctys_libvirt.errors import BackendError, NotRunning

ESCAPE = b"\x1d"  # Ctrl-]
MAX_PENDING = 64 * 1024  # keystrokes queued for a guest that does not read (then dropped)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


class ConsoleSession:
    """One attached socket console; ``run()`` blocks until detach, socket EOF, end of a
    non-tty input or ``timeout`` and returns why: 'detached' | 'closed' | 'eof' |
    'timeout' | 'error'."""

    def __init__(self, path: str, in_fd: Optional[int], out_fd: int, *,
                 name: Optional[str] = None, connect_timeout: float = 5.0):
        self.path = str(path)
        self.name = name or os.path.basename(os.path.dirname(self.path)) or self.path
        self.in_fd = in_fd
        self.out_fd = out_fd
        self.reason = "closed"
        self._pending = bytearray()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(connect_timeout)
        try:
            sock.connect(self.path)
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            raise NotRunning(f"{self.name}: no QEMU serves the serial console socket {self.path}",
                             hint=f"start it with `ctys-libvirt create {self.name} --console CLI`") from None
        except OSError as exc:
            sock.close()
            raise BackendError(f"cannot open the serial console socket {self.path} of {self.name}: "
                               f"{exc.strerror or exc}",
                               hint="check the runtime dir permissions (run as the VM's user)") from None
        sock.setblocking(False)
        self.sock = sock

    def _on_socket(self) -> Optional[str]:
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:  # ECONNRESET: QEMU went away
            return "closed"
        if not data:
            return "closed"
        try:
            _write_all(self.out_fd, data)
        except OSError:
            return "error"
        return None

    def _on_input(self) -> Optional[str]:
        try:
            data = os.read(self.in_fd, 4096)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EINTR):
                return None
            data = b""
        if not data:
            # end of a pipe: nothing more to send, end like the libvirt console does;
            # a tty's EOF cannot happen in raw mode
            return "eof"
        esc = data.find(ESCAPE)
        if esc >= 0:
            self._queue(data[:esc])
            self._flush()
            return "detached"
        self._queue(data)
        return None

    def _queue(self, data: bytes) -> None:
        room = MAX_PENDING - len(self._pending)
        if room > 0:
            self._pending += data[:room]

    def _flush(self) -> Optional[str]:
        while self._pending:
            try:
                n = self.sock.send(self._pending)
            except (BlockingIOError, InterruptedError):
                return None
            except OSError:
                return "closed"
            del self._pending[:n]
        return None

    def run(self, timeout: Optional[float] = None) -> str:
        saved = None
        sel = selectors.DefaultSelector()
        if self.in_fd is not None and os.isatty(self.in_fd):
            saved = termios.tcgetattr(self.in_fd)
            tty.setraw(self.in_fd)
        try:
            sel.register(self.sock, selectors.EVENT_READ, "sock")
            if self.in_fd is not None:
                sel.register(self.in_fd, selectors.EVENT_READ, "in")
            deadline = None if timeout is None else time.monotonic() + timeout
            sock_events = selectors.EVENT_READ
            while True:
                wait = None if deadline is None else deadline - time.monotonic()
                if wait is not None and wait <= 0:
                    self.reason = "timeout"
                    return self.reason
                reason = None
                for key, events in sel.select(wait):
                    if key.data == "sock":
                        if events & selectors.EVENT_WRITE:
                            reason = self._flush()
                        if reason is None and events & selectors.EVENT_READ:
                            reason = self._on_socket()
                    else:
                        reason = self._on_input()
                        if reason is None:
                            reason = self._flush()
                    if reason is not None:
                        break
                if reason is not None:
                    self.reason = reason
                    return reason
                # ask for writability only while keystrokes wait for the guest
                want = selectors.EVENT_READ | (selectors.EVENT_WRITE if self._pending else 0)
                if want != sock_events:
                    sel.modify(self.sock, want, "sock")
                    sock_events = want
        finally:
            sel.close()
            self.close()
            if saved is not None:
                termios.tcsetattr(self.in_fd, termios.TCSADRAIN, saved)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def attach(path: str, in_fd: Optional[int] = 0, out_fd: int = 1, *, name: Optional[str] = None,
           timeout: Optional[float] = None) -> str:
    """Attach the serial console socket ``path`` until Ctrl-]/EOF; returns the reason."""
    return ConsoleSession(path, in_fd, out_fd, name=name).run(timeout)
