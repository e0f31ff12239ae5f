"""One path for a VM's life, shared by both front ends (``ctys-libvirt``, ``ctys-qemu``).

* ADDRESS -> conf under one rule (``resolve_conf``; errors: NotFoundError /
  AmbiguousAddressError, exit 2, or UsageError for a malformed address).
* ``--backend auto|libvirt|direct`` -> an open backend under one set of fallback rules
  (``open_backend``): libvirt unless the conf needs the direct backend; ``auto`` falls back
  to the local direct backend when libvirt cannot be opened, unless the user named the
  libvirt to use.
* ``Lifecycle``: the backends one command uses and the VM it started, with one cleanup
  path in the manner of QEMU's ``python/qemu/machine``: ``__exit__`` -> ``shutdown()``,
  whose ``finally`` always runs the post-shutdown cleanup (every backend closed), also
  after a failed launch.  A CLI0 VM lives as long as its console: ``shutdown()`` destroys
  it on every way out, whichever backend runs it.

The library never prints: warnings go to ``warn`` and progress lines to ``say``, callbacks
the front end passes; an attached console relays the guest's serial on fds 0/1 itself.
Backends are imported lazily (libvirt is heavy; ``--help`` stays fast)."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

from ctys_libvirt.errors import LibvirtUnavailable, NotFoundError, NotRunning, UsageError

Say = Callable[[str], None]
KINDS = ("auto", "libvirt", "direct")


def _drop(_message: str) -> None:
    pass


# ---------------------------------------------------------------------------
# ADDRESS -> conf
# ---------------------------------------------------------------------------

def resolve_conf(address, bases: Sequence = (), *, db=None, use_db: bool = True,
                 scan_fs: bool = True, warn: Say = _drop) -> Path:
    """ADDRESS (conf path, VM directory, label, ctys machine address text, or a parsed
    ``MachineAddress``) -> absolute conf path.  A path stays as addressed (absolute, symlinks
    not resolved: CTYSWRAPPERPATH is the directory as given, as conf.locate keeps it).
    ``warn`` gets non-fatal findings (an unusable inventory DB that was set aside)."""
    if isinstance(address, str):
        direct = os.path.expanduser(address)
        if os.path.isfile(direct):      # the common case needs no inventory imports
            return Path(os.path.abspath(direct))
    from ctys_libvirt.inventory.address import parse_address_text, resolve_address

    if isinstance(address, str):
        path, addr = parse_address_text(address)
        if path is not None:
            return path
    else:
        addr = address
    notes: List[str] = []
    try:
        return resolve_address(addr, tuple(bases or ()), db=db, use_db=use_db, scan_fs=scan_fs,
                               warnings=notes)
    finally:
        for n in notes:
            warn(n)


def load_vm(address, bases: Sequence = (), *, warn: Say = _drop, **kw):
    """ADDRESS -> the loaded ``VmConfig`` (``resolve_conf`` then ``conf.load_conf``)."""
    from ctys_libvirt.conf import load_conf

    return load_conf(resolve_conf(address, bases, warn=warn, **kw))


# ---------------------------------------------------------------------------
# --backend -> an open backend
# ---------------------------------------------------------------------------

def check_backend(kind: Optional[str]) -> str:
    k = (kind or "auto").lower()
    if k not in KINDS:
        raise UsageError(f"unknown --backend {kind!r}", hint="use auto, libvirt or direct")
    return k


def direct_available() -> bool:
    """The direct backend is part of this build (a trimmed build may lack it)."""
    try:
        from ctys_libvirt.backends.direct import DirectBackend  # noqa: F401
    except ImportError:
        return False
    return True


def may_fall_back(kind: str, uri: Optional[str]) -> bool:
    """``auto`` may use the local direct backend when libvirt is unreachable, unless the
    user named the libvirt to use (explicit --connect, remote LIBVIRT_DEFAULT_URI): starting
    the VM here instead would put it on the wrong host."""
    if kind != "auto" or not direct_available():
        return False
    from ctys_libvirt.backends.select import fallback_refusal

    return fallback_refusal(uri) is None


def open_libvirt(uri: Optional[str] = None, *, events: bool = True):
    """The libvirt backend at ``uri``; ``events=False`` for commands that never wait (list,
    info, define): no event-loop thread competing with their concurrent calls."""
    from ctys_libvirt.backends.libvirt import LibvirtBackend

    return LibvirtBackend(uri, events=events)


def open_direct(qemu: Optional[str] = None):
    """The local direct backend (``qemu`` pins the QEMU binary)."""
    try:
        from ctys_libvirt.backends.direct import DirectBackend
    except ImportError:
        raise UsageError("the direct backend is not available in this build",
                         hint="use --backend libvirt") from None
    return DirectBackend(qemu=qemu)


def open_backend(kind: str = "auto", uri: Optional[str] = None, vm=None, *, warn: Say = _drop,
                 events: bool = True, qemu: Optional[str] = None):
    """The backend for ``--backend kind``.  libvirt is opened directly (no separate probe
    connection) unless the conf needs the direct backend (select.conf_needs_direct); when
    libvirt is unreachable under ``auto`` and ``may_fall_back``, the direct backend, with a
    warning.  A conf whose STARTERCALL is not installed here runs on libvirt's own
    emulator: ``warn`` names it."""
    from ctys_libvirt.util import log
    from ctys_libvirt.backends import select

    kind = check_backend(kind)
    chosen = kind
    if kind == "auto":
        chosen = "direct" if select.conf_needs_direct(vm) else "libvirt"
    if chosen == "libvirt":
        try:
            be = open_libvirt(uri, events=events)
        except LibvirtUnavailable as exc:
            if not may_fall_back(kind, uri):
                raise
            warn(f"{exc.message}; using the direct backend (--backend libvirt to insist)")
            chosen = "direct"
        else:
            if select.startercall_missing(vm):
                warn(select.startercall_note(vm, select.libvirt_emulator(be.conn, vm)))
            log.info("backend: libvirt (--backend %s)", kind)
            return be
    be = open_direct(qemu)
    log.info("backend: direct (--backend %s)", kind)
    return be


# ---------------------------------------------------------------------------
# stack addresses: host[vm1]...[vmN]
# ---------------------------------------------------------------------------

def stack_address(address: str, uri: Optional[str]) -> Optional[Tuple[str, str]]:
    """``host[vm1]...[vmN]`` -> (URI of the hypervisor vmN runs on, vmN), walking the
    levels before it (ctys_libvirt.stack); None for any other address."""
    if "[" not in address or Path(address).expanduser().exists():
        return None
    from dataclasses import replace

    from ctys_libvirt.ctys.targets import parse_target, target_uri
    from ctys_libvirt.stack.address import stack_uri

    t = parse_target(address)
    if not t.stack:
        return None
    *inner, last = t.stack
    on = replace(t, stack=tuple(inner))
    local = uri if on.base.is_local else None
    where = stack_uri(on, local_uri=local).uri if inner else target_uri(on, local_uri=local)
    return where, last


def stack_vm(be, label: str) -> str:
    """The domain name of VM ``label`` on the hypervisor ``be`` of a stack level."""
    from ctys_libvirt.stack.address import find_vm

    info = find_vm(be, label)
    if info is None:
        raise NotFoundError(f"no VM {label} on {be.uri.split('?', 1)[0]}",
                            hint="the last level of a stack address is a VM on the hypervisor "
                                 "inside the level before it")
    return info.name


# ---------------------------------------------------------------------------
# domains of a backend
# ---------------------------------------------------------------------------

def domain_names(be, addresses: Sequence[str], bases: Sequence = (), *, all_: bool = False,
                 include_foreign: bool = False, resume: bool = False,
                 warn: Say = _drop) -> List[str]:
    """Domains of ``be`` to act on: explicit names/UUIDs/conf addresses, or ``all_`` (ours
    unless ``include_foreign``): the running ones, or for RESUME the paused and shut-off
    ones (a shut-off one may hold a saved state).  An address that is neither a domain nor
    a conf with a domain -> NotFoundError."""
    if all_:
        if resume:
            return [i.name for i in be.list(include_inactive=True)
                    if (i.ours or include_foreign) and i.state in ("paused", "shutoff", "saved")]
        return [i.name for i in be.list(include_inactive=False) if i.ours or include_foreign]
    names = []
    for a in addresses:
        if be.lookup(a) is not None:
            names.append(a)
            continue
        vm = load_vm(a, bases, warn=warn)
        found = next((c for c in (vm.label, vm.uuid) if c and be.lookup(c) is not None), None)
        if found is None:
            raise NotFoundError(f"{vm.label} ({vm.source_path}) has no domain",
                                hint=f"start it with `ctys-libvirt create {a}`")
        names.append(found)
    return names


def list_direct(include_inactive: bool, *, warn: Say = _drop) -> list:
    """VMs of the direct backend, for LIST next to libvirt's; a failure there is a warning
    (the secondary source never breaks LIST)."""
    if not direct_available():
        return []
    try:
        with open_direct() as be:
            return list(be.list(include_inactive))
    except Exception as exc:
        warn(f"direct backend VMs not listed: {exc}")
        return []


# ---------------------------------------------------------------------------
# the lifecycle object
# ---------------------------------------------------------------------------

class Lifecycle:
    """The backends one command uses and the VM it started, cleaned up on one path.

    ``with Lifecycle.open(kind, uri, vm, warn=..., say=...) as life:`` -> ``life.create(...)``,
    ``life.find(address)``, ``life.cancel(...)``, ``life.console(...)``; leaving the block
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
            life.add(open_direct())
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
