"""The Lifecycle object: the backends one command uses and the VM it started, with one
cleanup path (``__exit__`` -> ``shutdown()``, whose ``finally`` always closes every backend,
after destroying a CLI0 VM), in the manner of QEMU's ``python/qemu/machine``."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from ctys_libvirt.errors import LibvirtUnavailable, NotFoundError, NotRunning
from ctys_libvirt.lifecycle.address import domain_names
from ctys_libvirt.lifecycle.choice import (check_backend, direct_available, may_fall_back,
                                          open_backend, open_direct, open_libvirt)
from ctys_libvirt.lifecycle.notify import Say, drop as _drop


class Lifecycle:
    """The backends one command uses and the VM it started, cleaned up on one path.

    ``with Lifecycle.open(kind, uri, vm, warn=..., say=...) as life:`` -> ``life.create(...)``,
    ``life.find(address)``, ``life.cancel(...)``, ``life.attach(...)``; leaving the block
    runs ``shutdown()``: a CLI0 VM is destroyed, then every backend is closed."""

    def __init__(self, backend, *, warn: Say = _drop, say: Say = _drop):
        self.backend = backend
        self.warn = warn
        self.say = say
        self._more: list = []                   # the direct backend beside libvirt, stack levels
        self._disposable: Optional[str] = None  # CLI0: the VM lives as long as its console
        self._console_end: Optional[str] = None
        self._closed = False

    @classmethod
    def open(cls, kind: str = "auto", uri: Optional[str] = None, vm=None, *, warn: Say = _drop,
             say: Say = _drop, events: bool = True, qemu: Optional[str] = None,
             with_direct: bool = False) -> "Lifecycle":
        """Open the backend for ``kind`` (``open_backend``).  ``with_direct``: under ``auto``
        with libvirt chosen, also the direct backend, for commands that find VMs of either
        (cancel, console)."""
        life = cls(open_backend(kind, uri, vm, warn=warn, events=events, qemu=qemu),
                   warn=warn, say=say)
        if with_direct and check_backend(kind) == "auto" and life.backend.name == "libvirt" \
                and direct_available():
            try:
                life.add(open_direct())
            except BaseException:
                life.shutdown()     # the libvirt connection is not left open
                raise
        return life

    @property
    def backends(self) -> list:
        return [self.backend] + self._more

    def add(self, backend):
        """One more backend this command uses (closed with the rest)."""
        self._more.append(backend)
        return backend

    def add_stack_level(self, uri: str):
        return self.add(open_libvirt(uri))

    def __enter__(self) -> "Lifecycle":
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()

    # -- create ---------------------------------------------------------------------

    def create(self, vm, request, options):
        """Start ``vm`` on the backend (which undoes a half-made start itself).  A CLI0 VM is
        disposable from here on: ``shutdown()`` destroys it however the command ends."""
        from ctys_libvirt.model import ConsoleType

        res = self.backend.create(vm, request, options)
        if request.console is ConsoleType.CLI0:
            self._disposable = res.name
        return res

    def run_cli0(self, res) -> str:
        """CONSOLE CLI0: the serial console in the foreground until it ends; a VM held at
        -S (the direct backend: its socket drops output with no client) continues once the
        console is attached.  The VM is destroyed by ``shutdown()``."""
        from ctys_libvirt.model import CancelMode

        be = self.backend
        if be.name == "libvirt":
            reason = self.attach(res.name)
        else:
            resume = (lambda: be.cancel(res.name, CancelMode.RESUME)) if res.state == "paused" else None
            reason = self._attach_socket(res.name, _serial_socket(be, res), resume)
        self._console_end = reason
        return reason

    def wait_install(self, name: str, timeout: float) -> None:
        """Block until the install run of ``name`` ends; progress lines go to ``say``."""
        import time

        from ctys_libvirt.errors import CtysTimeout

        t0 = time.monotonic()
        while True:
            remaining = timeout - (time.monotonic() - t0)
            if remaining <= 0:
                raise CtysTimeout(f"install run of {name} still going after {timeout:g}s",
                                  hint=f"it keeps running; wait longer (--timeout) or "
                                       f"`ctys-libvirt cancel {name}`")
            if self.backend.wait_inactive(name, min(remaining, 5.0)):
                self.say(f"{name}: install run finished after {time.monotonic() - t0:.1f}s")
                return
            self.say(f"{name}: installing... {time.monotonic() - t0:.0f}s")

    # -- find / cancel ------------------------------------------------------------------

    def find(self, address: str, bases: Sequence = ()) -> Tuple[object, str]:
        """(backend, domain name) of ``address`` on the first backend that knows it; the
        first backend's NotFoundError when none does."""
        err = None
        for b in self.backends:
            try:
                return b, domain_names(b, [address], bases, warn=self.warn)[0]
            except NotFoundError as exc:
                err = err or exc
        raise err  # type: ignore[misc]

    def all_names(self, *, include_foreign: bool = False, resume: bool = False) -> List[Tuple[object, str]]:
        out = []
        for b in self.backends:
            out += [(b, n) for n in domain_names(b, (), all_=True, include_foreign=include_foreign,
                                                  resume=resume)]
        return out

    def cancel(self, be, name: str, mode, timeout: float, stack=None):
        """CANCEL ``name`` on ``be``, the VMs inside it first (stack.cancel)."""
        from ctys_libvirt.stack.cancel import cancel_stack

        return cancel_stack(be, name, mode, timeout, stack)

    # -- consoles ---------------------------------------------------------------------

    def attach(self, name: str, *, backend=None, force: bool = False) -> str:
        """The serial console of ``name`` on fds 0/1 until detach (Ctrl-]) or EOF; returns
        why it ended.  libvirt: its console stream; direct: QEMU's serial socket."""
        be = backend or self.backend
        if be.name != "libvirt":
            label, sock = direct_console_socket(be, name)
            return self._attach_socket(label, sock)
        from ctys_libvirt.backends import console_stream as console

        session = console.ConsoleSession(be.conn, be.require(name), 0 if sys.stdin else None, 1,
                                         force=force)
        self.say(f"Connected to {name} (escape character is ^])")
        reason = session.run()
        self.say(f"\r\n[{name}: console {reason}]")
        return reason

    def _attach_socket(self, name: str, path: str, on_connected=None) -> str:
        """The direct backend's serial console: QEMU's unix socket.  ``on_connected`` runs
        once the socket is connected (CLI0 continues a VM held at -S)."""
        from ctys_libvirt.backends import console_socket

        session = console_socket.ConsoleSession(path, 0, 1, name=name)
        if on_connected is not None:
            on_connected()
        self.say(f"Connected to {name} (escape character is ^])")
        reason = session.run()
        self.say(f"\r\n[{name}: console {reason}]")
        return reason

    # -- the one cleanup path -------------------------------------------------------

    def shutdown(self) -> None:
        """Destroy the CLI0 VM (if any), then, always, the post-shutdown cleanup."""
        try:
            if self._disposable is not None:
                self._destroy_disposable()
        finally:
            self._post_shutdown()

    def _destroy_disposable(self) -> None:
        from ctys_libvirt.model import CancelMode

        name, be = self._disposable, self.backend
        self._disposable = None
        if be.name == "libvirt":
            if be.domain(name) is not None and be.is_active(be.require(name)):
                be.cancel(name, CancelMode.FORCE)
                self.say(f"{name}: destroyed (CLI0 console ended)")
            return
        if self._console_end == "closed":
            # the socket closed because QEMU is going away: let it finish, so the FORCE
            # below only cleans up instead of racing its exit
            from ctys_libvirt.backends.direct import wait_gone

            info = be.lookup(name)
            if info is not None and info.pid:
                wait_gone(info.pid, 5.0)
        try:
            be.cancel(name, CancelMode.FORCE)
            self.say(f"{name}: destroyed (CLI0 console ended)")
        except NotRunning:
            pass    # QEMU already gone (console EOF); its stale dir is cleaned

    def _post_shutdown(self) -> None:
        """Close every backend, each even when another's close fails."""
        if self._closed:
            return
        self._closed = True
        errors = []
        for b in reversed(self.backends):
            try:
                b.close()
            except Exception as exc:  # pragma: no cover - closes do not raise today
                errors.append(exc)
        if errors:
            raise errors[0]


def console(address: str, *, kind: str = "auto", uri: Optional[str] = None, bases: Sequence = (),
            force: bool = False, warn: Say = _drop, say: Say = _drop) -> str:
    """Attach the serial console of the VM at ``address`` (domain name/UUID or conf
    address): libvirt's first, else (``auto``) a VM of the direct backend; returns why the
    console ended.  Known to neither backend: libvirt's NotFoundError."""
    kind = check_backend(kind)
    missing = None
    if kind in ("auto", "libvirt"):
        try:
            be = open_libvirt(uri)
        except LibvirtUnavailable:
            if not may_fall_back(kind, uri):
                raise
            be = None
        if be is not None:
            with Lifecycle(be, warn=warn, say=say) as life:
                try:
                    name = domain_names(be, [address], bases, warn=warn)[0]
                except NotFoundError as exc:
                    if kind == "libvirt" or not direct_available():
                        raise
                    missing = exc   # maybe a VM of the direct backend
                else:
                    return life.attach(name, force=force)
    with Lifecycle(open_direct(), warn=warn, say=say) as life:
        try:
            name = domain_names(life.backend, [address], bases, warn=warn)[0]
        except NotFoundError:
            if missing is not None:
                raise missing from None
            raise
        return life.attach(name)


def _serial_socket(be, res) -> str:
    """Where the direct backend put the guest serial of a CLI-family console."""
    if res.serial and res.serial.endswith(".sock"):
        return res.serial
    return str(be.runtime(res.name).serial_sock)


def direct_console_socket(be, name: str) -> Tuple[str, str]:
    """(label, serial socket path) of the running direct-backend VM ``name``; NotRunning /
    BackendError naming the fix when it has none."""
    from ctys_libvirt.errors import BackendError
    from ctys_libvirt.model import ConsoleType
    from ctys_libvirt.qemu.runtime import RuntimeDirs

    info = be.lookup(name)
    if info is None:  # pragma: no cover - resolved a moment ago
        raise NotRunning(f"{name} is not running under the direct backend",
                         hint="`ctys-libvirt list --backend direct` shows what runs")
    label = info.label or info.name
    if info.state not in ("running", "paused"):
        raise NotRunning(f"{label} is not running (direct backend, {info.state})",
                         hint=f"start it with `ctys-libvirt create {label} --backend direct --console CLI`")
    rt = RuntimeDirs(Path(info.extra.get("runtime_dir") or be.runtime(name).dir))
    try:
        serial = ConsoleType(info.console).is_serial if info.console else True
    except ValueError:
        serial = True
    if not serial or not rt.serial_sock.exists():
        raise BackendError(f"{label} has no serial console socket (started with CONSOLE "
                           f"{info.console or 'unknown'}: its serial goes to "
                           f"{info.extra.get('serial') or rt.serial_log})",
                           hint=f"restart it with `ctys-libvirt create {label} --backend direct --console CLI`")
    return label, str(rt.serial_sock)
