"""Serial console attach through a libvirt stream (like ``virsh console``).

Both directions are event-driven on libvirt's default event loop: the stream's
READABLE callback copies guest output to ``out_fd``; a handle on ``in_fd`` copies
keystrokes to the stream.  Ctrl-] (0x1d) in the input detaches.  When ``in_fd`` is
a tty it is switched to raw mode for the session and always restored."""
from __future__ import annotations

import errno
import os
import termios
import threading
import tty
from typing import Optional

import libvirt

from ctys_libvirt.backends.libvirt_events import ensure_event_loop
from ctys_libvirt.errors import BackendError, NotRunning

ESCAPE = b"\x1d"  # Ctrl-]


class ConsoleSession:
    """One attached console; ``run()`` blocks until detach, guest stop or EOF and
    returns why ('detached' | 'eof' | 'error')."""

    def __init__(self, conn, dom, in_fd: Optional[int], out_fd: int, *, force: bool = False):
        ensure_event_loop()
        self.conn = conn
        self.dom = dom
        self.in_fd = in_fd
        self.out_fd = out_fd
        self.reason = "eof"
        self._done = threading.Event()
        self._stdin_watch: Optional[int] = None
        self.stream = conn.newStream(libvirt.VIR_STREAM_NONBLOCK)
        flags = libvirt.VIR_DOMAIN_CONSOLE_FORCE if force else libvirt.VIR_DOMAIN_CONSOLE_SAFE
        try:
            dom.openConsole(None, self.stream, flags)
        except libvirt.libvirtError as exc:
            if not dom.isActive():
                raise NotRunning(f"{dom.name()} is not running", hint="start it with `ctys-libvirt create`") from None
            raise BackendError(f"cannot open the serial console of {dom.name()}: {str(exc).strip()}",
                               hint="the VM needs a pty serial console (CONSOLE CLI) and no other client attached") from None

    def _finish(self, reason: str) -> None:
        if not self._done.is_set():
            self.reason = reason
            self._done.set()

    def _on_stream(self, stream, events, _opaque) -> None:
        if events & (libvirt.VIR_STREAM_EVENT_ERROR | libvirt.VIR_STREAM_EVENT_HANGUP):
            self._finish("eof")
            return
        if events & libvirt.VIR_STREAM_EVENT_READABLE:
            while True:
                try:
                    data = stream.recv(4096)
                except libvirt.libvirtError:
                    self._finish("error")
                    return
                if data == -2:  # would block
                    return
                if not data:
                    self._finish("eof")
                    return
                try:
                    os.write(self.out_fd, data)
                except OSError:
                    self._finish("error")
                    return

    def _on_input(self, _watch, fd, _events, _opaque) -> None:
        try:
            data = os.read(fd, 1024)
        except OSError as exc:
            if exc.errno == errno.EAGAIN:
                return
            data = b""
        if not data:
            # End of input: stop forwarding keys but keep showing output until detach.
            self._remove_input()
            if self.in_fd is not None and not os.isatty(self.in_fd):
                self._finish("eof")
            return
        if ESCAPE in data:
            data = data.split(ESCAPE, 1)[0]
            if data:
                self._send(data)
            self._finish("detached")
            return
        self._send(data)

    def _send(self, data: bytes) -> None:
        try:
            self.stream.send(data)
        except libvirt.libvirtError:
            self._finish("error")

    def _remove_input(self) -> None:
        if self._stdin_watch is not None:
            try:
                libvirt.virEventRemoveHandle(self._stdin_watch)
            except Exception:
                pass
            self._stdin_watch = None

    def run(self, timeout: Optional[float] = None) -> str:
        saved = None
        if self.in_fd is not None and os.isatty(self.in_fd):
            saved = termios.tcgetattr(self.in_fd)
            tty.setraw(self.in_fd)
        try:
            self.stream.eventAddCallback(
                libvirt.VIR_STREAM_EVENT_READABLE | libvirt.VIR_STREAM_EVENT_ERROR
                | libvirt.VIR_STREAM_EVENT_HANGUP, self._on_stream, None)
            if self.in_fd is not None:
                self._stdin_watch = libvirt.virEventAddHandle(
                    self.in_fd, libvirt.VIR_EVENT_HANDLE_READABLE, self._on_input, None)
            if not self._done.wait(timeout):
                self.reason = "timeout"
            return self.reason
        finally:
            self._remove_input()
            try:
                self.stream.eventRemoveCallback()
            except libvirt.libvirtError:
                pass
            try:
                self.stream.finish() if self.reason == "eof" else self.stream.abort()
            except libvirt.libvirtError:
                pass
            if saved is not None:
                termios.tcsetattr(self.in_fd, termios.TCSADRAIN, saved)


def attach(conn, dom, in_fd: Optional[int] = 0, out_fd: int = 1, *, force: bool = False,
           timeout: Optional[float] = None) -> str:
    """Attach the serial console of ``dom`` until Ctrl-]/EOF; returns the reason."""
    return ConsoleSession(conn, dom, in_fd, out_fd, force=force).run(timeout)
