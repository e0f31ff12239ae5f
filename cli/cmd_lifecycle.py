"""create / cancel / list / info / console: the VM lifecycle commands.

Heavy imports (libvirt, lxml, the translators) happen inside the commands so that
``ctys-libvirt --help`` stays fast."""
from __future__ import annotations

import dataclasses
import os
import sys
import time
from pathlib import Path
from typing import List, Optional

import typer

from ctys_libvirt.cli.app import app
from ctys_libvirt.cli import complete as C
from ctys_libvirt.cli.common import ALLOW_ARGSADD, BASE, emit_json, errors_to_exit, warn
from ctys_libvirt.errors import CtysTimeout, NotFoundError, NotRunning, UsageError

CONNECT = typer.Option(None, "--connect", "-c", metavar="URI", shell_complete=C.uri, help="libvirt URI (default: LIBVIRT_DEFAULT_URI, "
                       "qemu:///system as root, else qemu:///session)")
BACKEND = typer.Option("auto", "--backend", shell_complete=C.backend, help="auto | libvirt | direct")
CANCEL_MODES = ("POWEROFF", "FORCE", "RESET", "REBOOT", "PAUSE", "SUSPEND", "RESUME")


def _skip_exit_gc() -> None:
    """The process ends right after this command: have the interpreter skip its final
    garbage-collection pass over every object still alive (typer, libvirt, 1,000 LIST
    records: ~10-20 ms of an otherwise 0.2 s command).  Registered at exit only, so
    in-process callers keep a normal collector until then."""
    import atexit
    import gc

    atexit.register(gc.freeze)


def _say(text: str) -> None:
    print(text, file=sys.stderr)


def _check_format(fmt: str, allowed) -> str:
    f = (fmt or "").lower()
    if f not in allowed:
        raise UsageError(f"unknown --format {fmt!r}", hint="use one of " + ", ".join(allowed))
    return f


def _check_backend(kind: str) -> str:
    k = (kind or "auto").lower()
    if k not in ("auto", "libvirt", "direct"):
        raise UsageError(f"unknown --backend {kind!r}", hint="use auto, libvirt or direct")
    return k


def _conf_path(address: str, bases: Optional[List[str]]) -> Path:
    """ADDRESS -> conf path: the inventory's resolver when present, else path/dir forms."""
    direct = Path(address).expanduser()
    if direct.suffix == ".ctys" and direct.is_file():
        return direct.resolve()  # a conf path needs no inventory (saves its imports)
    try:
        from ctys_libvirt.cli.common import resolve_conf

        return Path(resolve_conf(address, tuple(bases or ())))
    except ModuleNotFoundError:
        pass
    p = Path(address).expanduser()
    if p.is_file():
        return p.resolve()
    if p.is_dir():
        confs = sorted(p.glob("*.ctys"))
        if len(confs) == 1:
            return confs[0].resolve()
    for b in bases or ():
        for cand in (Path(b) / address / f"{address}.ctys", Path(b) / f"{address}.ctys"):
            if cand.is_file():
                return cand.resolve()
    raise NotFoundError(f"no VM conf found for address {address!r}",
                        hint="give a conf path or VM directory, or a label with --base DIR")


def _stack_address(address: str, connect: Optional[str]):
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
    local = connect if on.base.is_local else None
    uri = stack_uri(on, local_uri=local).uri if inner else target_uri(on, local_uri=local)
    return uri, last


def _stack_vm(be, label: str) -> str:
    from ctys_libvirt.stack.address import find_vm

    info = find_vm(be, label)
    if info is None:
        raise NotFoundError(f"no VM {label} on {be.uri.split('?', 1)[0]}",
                            hint="the last level of a stack address is a VM on the hypervisor "
                                 "inside the level before it")
    return info.name


def _load_vm(address: str, bases):
    path = _conf_path(address, bases)
    from ctys_libvirt.conf import load_conf

    return load_conf(path)


def _libvirt(connect: Optional[str], events: bool = True):
    """The libvirt backend; ``events=False`` for commands that never wait (list, info):
    no event-loop thread competing with LIST's concurrent calls."""
    from ctys_libvirt.backends.libvirt import LibvirtBackend

    return LibvirtBackend(connect, events=events)


def _note_startercall(be, vm) -> None:
    """A conf whose STARTERCALL is not installed here runs on libvirt's own emulator: say
    which (the warning names it)."""
    if vm is None:
        return
    from ctys_libvirt.backends.select import libvirt_emulator, startercall_missing, startercall_note

    if startercall_missing(vm):
        warn(startercall_note(vm, libvirt_emulator(be.conn, vm)))


def _open(kind: str, connect: Optional[str], vm=None):
    """The backend for --backend.  libvirt is opened directly (no separate probe
    connection) unless the conf needs the direct backend; when libvirt is unreachable
    under ``auto``, the selector falls back to direct."""
    from ctys_libvirt.errors import LibvirtUnavailable

    kind = _check_backend(kind)
    if kind in ("auto", "libvirt"):
        need_direct = None
        if kind == "auto" and vm is not None:
            try:
                from ctys_libvirt.backends.select import _conf_needs_direct

                need_direct = _conf_needs_direct(vm)
            except ImportError:
                pass
        if not need_direct:
            try:
                be = _libvirt(connect)
                _note_startercall(be, vm)
                return be
            except LibvirtUnavailable as exc:
                if not _may_fall_back(kind, connect):
                    raise
                warn(f"{exc.message}; using the direct backend (--backend libvirt to insist)")
                kind = "direct"
    try:
        from ctys_libvirt.backends.select import open_backend
    except ModuleNotFoundError:
        raise UsageError("the direct backend is not available in this build",
                         hint="use --backend libvirt") from None
    be = open_backend(kind, uri=connect, vm=vm)
    from ctys_libvirt.util import log

    log.info("backend: %s (--backend %s)", getattr(be, "name", kind), kind)
    return be


def _options(**kw):
    """CreateOptions with the fields this build's model has (serial_log is optional)."""
    from ctys_libvirt.model import CreateOptions

    names = {f.name for f in dataclasses.fields(CreateOptions)}
    return CreateOptions(**{k: v for k, v in kw.items() if k in names and v is not None})


def _create_warnings(res, transient: bool) -> None:
    """Warnings on stderr.  The generated-UUID one is a lasting fact about the conf: said
    when the persistent definition is written (and by `xml`, transient and direct starts,
    where nothing remembers it), not again on every start of an unchanged definition."""
    from ctys_libvirt.translate.plan import is_uuid_note

    quiet_uuid = res.backend == "libvirt" and not transient and not res.defined
    for w in getattr(res, "warnings", ()):
        if not (quiet_uuid and is_uuid_note(w)):
            warn(w)


def _print_create(res, fmt: str) -> None:
    if fmt == "json":
        from ctys_libvirt.cli import contract

        emit_json(contract.create(res))
        return
    print(f"{res.name}: {res.state} (UUID {res.uuid}, backend {res.backend}"
          + (f", pid {res.pid}" if res.pid else "") + ")")
    if res.defined:
        print(f"  persistent definition written/updated")
    if res.created_target:
        print(f"  install target created: {res.created_target}")
    for m in res.messages:
        print(f"  {m}")


def _attach(backend, name: str) -> str:
    from ctys_libvirt.backends import console_stream as console

    session = console.ConsoleSession(backend.conn, backend.require(name), 0, 1)
    _say(f"Connected to {name} (escape character is ^])")
    reason = session.run()
    _say(f"\r\n[{name}: console {reason}]")
    return reason


def _attach_socket(name: str, path: str, on_connected=None) -> str:
    """The direct backend's serial console: QEMU's unix socket, same messages as _attach.
    ``on_connected`` runs once the socket is connected (CLI0 continues a VM held at -S)."""
    from ctys_libvirt.backends import console_socket

    session = console_socket.ConsoleSession(path, 0, 1, name=name)
    if on_connected is not None:
        on_connected()
    _say(f"Connected to {name} (escape character is ^])")
    reason = session.run()
    _say(f"\r\n[{name}: console {reason}]")
    return reason


def _serial_socket(be, res) -> str:
    """Where the direct backend put the guest serial of a CLI-family console."""
    if res.serial and res.serial.endswith(".sock"):
        return res.serial
    return str(be.runtime(res.name).serial_sock)


@app.command()
def create(
    address: str = typer.Argument(..., shell_complete=C.address, help="conf path, VM directory, label or machine address"),
    bootmode: Optional[str] = typer.Option(None, "--bootmode", shell_complete=C.bootmode, help="MODE[%PATH]: HDD CD DVD FDD USB PXE KERNEL VHDD"),
    instmode: Optional[str] = typer.Option(None, "--instmode", help="SRC%SRCPATH%TGT%TGTPATH%STAGE (DEFAULT: conf defaults)"),
    kernel: Optional[str] = typer.Option(None, "--kernel", help="img[%initrd[%append]]"),
    console_: Optional[str] = typer.Option(None, "--console", shell_complete=C.console, help="VNC[:N] SDL CLI CLI0 XTERM GTERM EMACS* NONE"),
    argsadd: Optional[List[str]] = typer.Option(None, "--argsadd", help="extra QEMU arguments (repeatable)"),
    allow_argsadd: Optional[List[str]] = ALLOW_ARGSADD,
    allow_device: Optional[List[str]] = typer.Option(None, "--allow-device", help="a host block/char device a medium may be (repeatable; refused otherwise)"),
    transient: bool = typer.Option(False, "--transient", help="do not define the domain persistently"),
    reuse: bool = typer.Option(False, "--reuse", help="if running: attach instead of failing"),
    wait_install: bool = typer.Option(False, "--wait-install", help="with --instmode: block until the install run ends"),
    timeout: float = typer.Option(60.0, "--timeout", help="seconds to wait for running (or for --wait-install)"),
    serial_log: Optional[Path] = typer.Option(None, "--serial-log", help="also log the guest's serial port to this file"),
    strict: bool = typer.Option(False, "--strict", help="ARGSADD lint findings are errors"),
    network: Optional[str] = typer.Option(None, "--network", help="libvirt network for the NIC (default: 'default' if active, else user networking)"),
    bridge: Optional[str] = typer.Option(None, "--bridge", help="host bridge for the NIC"),
    qemu: Optional[str] = typer.Option(None, "--qemu", help="direct backend: the QEMU binary to run"),
    run_as: Optional[str] = typer.Option(None, "--run-as", help="direct backend as root: the user QEMU runs as (default libvirt-qemu, else nobody; 'root' keeps root)"),
    qemu_version: Optional[str] = typer.Option(None, "--qemu-version",
                                               help="with --qemu: its version X.Y.Z when its -h banner is not recognised"),
    fmt: str = typer.Option("table", "--format", shell_complete=C.values("table", "json"), help="table | json"),
    geometry: Optional[str] = typer.Option(None, "--geometry", "-g",
                                           help="client window WxH+X+Y (pixels for VNC, characters for terminals)"),
    no_client: bool = typer.Option(False, "--no-client", help="start no client window even with $DISPLAY"),
    connect: Optional[str] = CONNECT,
    backend: str = BACKEND,
    base: Optional[List[str]] = BASE,
) -> None:
    """Start a VM from its ctys conf (define persistently, start, wait until running); with
    $DISPLAY, VNC / XTERM / GTERM / EMACS* also open their client window."""
    _skip_exit_gc()
    with errors_to_exit():
        fmt = _check_format(fmt, ("table", "json"))
        _check_backend(backend)     # usage errors before any conf is looked up
        if timeout < 0:
            raise UsageError(f"--timeout {timeout:g} is negative", hint="use seconds >= 0")
        if qemu_version is not None and not qemu:
            raise UsageError("--qemu-version needs --qemu PATH (the binary whose banner it states)",
                             hint="add --qemu /path/to/qemu")
        from ctys_libvirt.model import ConsoleType
        from ctys_libvirt.translate.request import make_request

        if wait_install and instmode is None:
            raise UsageError("--wait-install needs --instmode", hint="add --instmode DEFAULT")
        if geometry is not None:
            from ctys_libvirt.backends.console_client import parse_geometry

            parse_geometry(geometry)
        stacked = _stack_address(address, connect)
        if stacked is not None:     # the conf is read here, the VM runs inside the stack
            connect, address = stacked
            backend = "libvirt"
        vm = _load_vm(address, base)
        req = make_request(bootmode=bootmode, instmode=instmode, kernel=kernel,
                           console=console_ if console_ is not None else (vm.default_console or None),
                           argsadd=argsadd or (), allow_argsadd=allow_argsadd or (),
                           allow_devices=allow_device or ())
        sdl_display, sdl_xauth = _sdl_display(req.console)
        if not no_client:
            from ctys_libvirt.cli.clients import preflight

            preflight(vm.label, req.console)    # a missing client program: before any start
        opts = _options(transient=transient, reuse=reuse, wait_install=wait_install,
                        timeout=timeout, strict=strict, network=network, bridge=bridge, qemu=qemu,
                        qemu_version=qemu_version, run_as=run_as,
                        # absolute, but symlinks are not followed (security.seriallog)
                        serial_log=os.path.abspath(serial_log) if serial_log else None,
                        sdl_display=sdl_display, sdl_xauth=sdl_xauth)
        be = _open(backend, connect, vm)
        try:
            res = be.create(vm, req, opts)
            _create_warnings(res, transient)
            _print_create(res, fmt)
            sys.stdout.flush()
            if not no_client:
                from ctys_libvirt.cli.clients import launch

                launch(be, res.name, req.console, res.vnc_port, geometry, strict=False)
            if res.install and wait_install:
                _wait_install(be, res.name, timeout)
            if req.console is ConsoleType.CLI0 and getattr(be, "name", "") == "libvirt":
                try:
                    _attach(be, res.name)
                finally:
                    from ctys_libvirt.model import CancelMode

                    if be.domain(res.name) is not None and be.is_active(be.require(res.name)):
                        be.cancel(res.name, CancelMode.FORCE)
                        _say(f"{res.name}: destroyed (CLI0 console ended)")
            elif req.console is ConsoleType.CLI0 and getattr(be, "name", "") == "direct":
                reason = None
                try:
                    from ctys_libvirt.model import CancelMode as _Mode

                    hold = res.state == "paused"   # started at -S: nothing printed is lost
                    reason = _attach_socket(res.name, _serial_socket(be, res),
                                            (lambda: be.cancel(res.name, _Mode.RESUME)) if hold else None)
                finally:
                    from ctys_libvirt.model import CancelMode

                    if reason == "closed":
                        # the socket closed because QEMU is going away: let it finish, so
                        # the FORCE below only cleans up instead of racing its exit
                        from ctys_libvirt.backends.direct import wait_gone

                        info = be.lookup(res.name)
                        if info is not None and info.pid:
                            wait_gone(info.pid, 5.0)
                    try:
                        be.cancel(res.name, CancelMode.FORCE)
                        _say(f"{res.name}: destroyed (CLI0 console ended)")
                    except NotRunning:
                        pass  # QEMU already gone (console EOF); its stale dir is cleaned
            elif reuse and req.console.is_serial and getattr(be, "name", "") == "libvirt" \
                    and any("reusing" in m for m in res.messages) and sys.stdin.isatty():
                _attach(be, res.name)
        finally:
            be.close()


def _sdl_display(console):
    """CONSOLE SDL: the X display (and Xauthority) for QEMU's window, which needs one."""
    from ctys_libvirt.model import ConsoleType

    if console is not ConsoleType.SDL:
        return None, None
    import os

    display = os.environ.get("DISPLAY")
    if not display:
        raise UsageError("CONSOLE SDL opens QEMU's own window on an X display, and $DISPLAY is not set",
                         hint="set DISPLAY, or use CONSOLE VNC")
    return display, os.environ.get("XAUTHORITY") or None


def _wait_install(be, name: str, timeout: float) -> None:
    """Progress on stderr while the install domain runs (event-driven waits)."""
    t0 = time.monotonic()
    while True:
        remaining = timeout - (time.monotonic() - t0)
        if remaining <= 0:
            raise CtysTimeout(f"install run of {name} still going after {timeout:g}s",
                              hint=f"it keeps running; wait longer (--timeout) or `ctys-libvirt cancel {name}`")
        if be.wait_inactive(name, min(remaining, 5.0)):
            _say(f"{name}: install run finished after {time.monotonic() - t0:.1f}s")
            return
        _say(f"{name}: installing... {time.monotonic() - t0:.0f}s")


def _resolve_domains(be, addresses: List[str], bases, all_: bool, include_foreign: bool,
                     resume: bool = False):
    """Domains to act on: explicit names/UUIDs/conf addresses, or --all (ours unless
    --include-foreign): the running ones, or for RESUME the paused and shut-off ones (a
    shut-off one may hold a saved state).  Names that are neither a domain nor a conf ->
    NotFoundError."""
    if all_:
        if resume:
            return [i.name for i in be.list(include_inactive=True)
                    if (i.ours or include_foreign) and i.state in ("paused", "shutoff", "saved")]
        return [i.name for i in be.list(include_inactive=False)
                if i.ours or include_foreign]
    names = []
    for a in addresses:
        if be.lookup(a) is not None:
            names.append(a)
            continue
        vm = _load_vm(a, bases)
        cand = [c for c in (vm.label, vm.uuid) if c]
        found = next((c for c in cand if be.lookup(c) is not None), None)
        if found is None:
            raise NotFoundError(f"{vm.label} ({vm.source_path}) has no domain",
                                hint=f"start it with `ctys-libvirt create {a}`")
        names.append(found)
    return names


@app.command()
def cancel(
    addresses: Optional[List[str]] = typer.Argument(None, shell_complete=C.address, help="domains (name/UUID) or conf addresses"),
    all_: bool = typer.Option(False, "--all", help="every running domain of ours"),
    include_foreign: bool = typer.Option(False, "--include-foreign", help="with --all: also domains not created by ctys-libvirt"),
    mode: str = typer.Option("POWEROFF", "--mode", "-m", shell_complete=C.cancel_mode, help="|".join(CANCEL_MODES)),
    timeout: float = typer.Option(20.0, "--timeout", help="POWEROFF: seconds before destroy"),
    no_stack: bool = typer.Option(False, "--no-stack", help="do not cancel the VMs running inside "
                                  "the VM first (POWEROFF/REBOOT/RESET propagate; FORCE never does)"),
    fmt: str = typer.Option("table", "--format", shell_complete=C.values("table", "json"), help="table | json"),
    connect: Optional[str] = CONNECT,
    backend: str = BACKEND,
    base: Optional[List[str]] = BASE,
) -> None:
    """Stop, reset, pause, save or resume VMs (POWEROFF = ACPI, then destroy after --timeout).
    POWEROFF, REBOOT and RESET first do the same inside the VM, on the hypervisor its conf
    names (#@#STACKURI, or #@#IP0 over ssh), deepest first; see docs/stacks.md."""
    with errors_to_exit():
        from ctys_libvirt.model import CancelMode

        fmt = _check_format(fmt, ("table", "json"))
        m = (mode or "").upper()
        if m not in CANCEL_MODES:
            raise UsageError(f"unknown cancel mode {mode!r}", hint="use one of " + ", ".join(CANCEL_MODES))
        if all_ == bool(addresses):
            raise UsageError("give ADDRESS... or --all (not both)", hint="see ctys-libvirt cancel --help")
        if timeout < 0:
            raise UsageError(f"--timeout {timeout:g} is negative", hint="use seconds >= 0")
        kind = _check_backend(backend)
        from ctys_libvirt.stack.cancel import StackOptions, cancel_stack
        from ctys_libvirt.stack.inside import StackSite

        stack = StackOptions(propagate=not no_stack, site=StackSite.from_env())
        be = _open(kind, connect)
        backends = [be]
        if kind == "auto" and getattr(be, "name", "") == "libvirt" and _direct_available():
            from ctys_libvirt.backends.direct import DirectBackend

            backends.append(DirectBackend())  # ctys VMs started by the direct backend
        try:
            jobs = []
            if all_:
                for b in backends:
                    jobs += [(b, n) for n in _resolve_domains(b, [], base, True, include_foreign,
                                                               resume=m == "RESUME")]
            for a in addresses or []:
                stacked = _stack_address(a, connect)
                if stacked is not None:
                    sb = _libvirt(stacked[0])
                    backends.append(sb)
                    jobs.append((sb, _stack_vm(sb, stacked[1])))
                    continue
                err = None
                for b in backends:
                    try:
                        jobs += [(b, n) for n in _resolve_domains(b, [a], base, False, False)]
                        err = None
                        break
                    except NotFoundError as exc:
                        err = err or exc
                if err is not None:
                    raise err
            results = []
            for b, name in jobs:
                try:
                    r = cancel_stack(b, name, CancelMode(m), timeout, stack)
                except NotRunning:
                    if all_ and m == "RESUME":
                        continue        # shut off without a saved state: nothing to resume
                    raise
                results.append(r)
                if fmt == "table":
                    _print_cancel(r)
            if fmt == "json":
                from ctys_libvirt.cli import contract

                emit_json([contract.cancel(r) for r in results])
        finally:
            for b in backends:
                b.close()


def _print_cancel(r, depth: int = 0) -> None:
    """One CANCEL result, the VMs cancelled inside it first indented above it (deepest first)."""
    for child in r.inner:
        _print_cancel(child, depth + 1)
    pad = "    " * depth
    where = f" [{r.uri}]" if depth else ""
    print(f"{pad}{r.name}{where}: {r.mode.value} -> {r.action}; now {r.state} ({r.seconds:.2f}s)")
    for msg in r.messages:
        print(f"{pad}  {msg}")


def _may_fall_back(kind: str, connect: Optional[str]) -> bool:
    """auto may use the local direct backend when libvirt is unreachable, unless the user
    named the libvirt to use (explicit --connect, remote LIBVIRT_DEFAULT_URI)."""
    if kind != "auto" or not _direct_available():
        return False
    from ctys_libvirt.backends.select import fallback_refusal

    return fallback_refusal(connect) is None


def _direct_available() -> bool:
    try:
        from ctys_libvirt.backends.direct import DirectBackend  # noqa: F401
    except ImportError:
        return False
    return True


def _direct_list(include_inactive: bool):
    """VMs of the direct backend (guarded: the module may be absent)."""
    try:
        from ctys_libvirt.backends.direct import DirectBackend
    except ImportError:
        return []
    try:
        be = DirectBackend()
        try:
            return list(be.list(include_inactive))
        finally:
            be.close()
    except Exception as exc:  # never let the secondary source break LIST
        warn(f"direct backend VMs not listed: {exc}")
        return []


@app.command("list")
def list_(
    all_: bool = typer.Option(False, "--all", "-a", help="include defined but inactive domains"),
    fmt: str = typer.Option("table", "--format", shell_complete=C.values(*C.FORMATS), help="table | records | json"),
    drift: Optional[bool] = typer.Option(None, "--drift/--no-drift",
                                         help="conf vs definition drift of our domains (default: on for "
                                              "table and json; records get it as a 23rd field only with --drift)"),
    stacks: Optional[List[str]] = typer.Option(None, "--stack", metavar="host[vm1]...",
                                               help="list the VMs inside a VM (stack address; repeatable)"),
    connect: Optional[List[str]] = typer.Option(
        None, "--connect", "-c", metavar="URI", shell_complete=C.uri,
        help="libvirt URI (default: LIBVIRT_DEFAULT_URI, qemu:///system as root, else "
             "qemu:///session); repeat it to list several hosts at once: they are asked in "
             "parallel, a host that fails is one error line and exit 4, the others are listed"),
    backend: str = BACKEND,
) -> None:
    """Every VM of the connection: ours mapped to their conf, foreign ones too."""
    _skip_exit_gc()
    with errors_to_exit():
        fmt = _check_format(fmt, ("table", "records", "json"))
        kind = _check_backend(backend)
        from ctys_libvirt.errors import LibvirtUnavailable

        want_drift = drift if drift is not None else fmt != "records"
        uris = list(dict.fromkeys(connect or ()))
        if len(uris) > 1:
            if stacks or kind == "direct":
                raise UsageError("several --connect URIs list libvirt hosts only",
                                 hint="drop --stack/--backend direct, or give one --connect")
            infos, failed = _multi_list(uris, all_, want_drift)
            _print_list(infos, fmt, want_drift, multi=True)
            if failed:
                raise SystemExit(4)
            return
        connect = uris[0] if uris else None
        infos = []
        if stacks:
            infos = _stack_list(stacks, connect, all_)
            kind = "stack"
        unreachable = None
        if kind in ("auto", "libvirt"):
            try:
                be = _libvirt(connect, events=False)
            except LibvirtUnavailable as exc:
                if not _may_fall_back(kind, connect):
                    raise
                unreachable, be = exc, None
                warn(exc.one_line())
            if be is not None:
                try:
                    infos = be.list(include_inactive=all_, drift=want_drift)
                finally:
                    be.close()
        if kind in ("auto", "direct"):
            infos += _direct_list(all_)
        _print_list(infos, fmt, want_drift)


def _multi_list(uris: List[str], include_inactive: bool, drift: bool):
    """LIST on several libvirt URIs in parallel threads (each RPC releases the GIL):
    (infos in URI order, each with extra['uri'], whether a host failed).  A failing host
    is one error line; the others are listed all the same."""
    from ctys_libvirt.backends.libvirt import LibvirtBackend
    from ctys_libvirt.errors import CtysError
    from concurrent.futures import ThreadPoolExecutor

    from urllib.parse import urlparse

    def one(uri):
        try:
            be = LibvirtBackend(uri, events=False)
        except CtysError as exc:
            return None, exc
        try:
            # drift compares with conf files here: only meaningful for this host's domains
            out = be.list(include_inactive=include_inactive,
                          drift=drift and not urlparse(uri).hostname)
        except CtysError as exc:
            return None, exc
        finally:
            be.close()
        for i in out:
            i.extra["uri"] = uri
        return out, None

    infos, failed = [], False
    with ThreadPoolExecutor(max_workers=min(8, len(uris))) as ex:
        for uri, (out, err) in zip(uris, ex.map(one, uris)):
            if err is not None:
                msg = err.one_line()
                print(f"ctys-libvirt: error: {msg if uri in msg else f'{uri}: {msg}'}", file=sys.stderr)
                failed = True
            else:
                infos.extend(out)
    return infos, failed


def _print_list(infos, fmt: str, want_drift: bool, multi: bool = False) -> None:
    if fmt == "records":
        from ctys_libvirt.ctys.records import format_records

        if infos:
            text = format_records(infos)
            if want_drift:      # the documented 23rd field: drift ('' for foreign/direct VMs)
                from ctys_libvirt.ctys.records import escape

                text = "\n".join(f"{line};{escape(i.drift or '')}"
                                 for line, i in zip(text.split("\n"), infos))
            print(text)
    elif fmt == "json":
        from ctys_libvirt.cli import contract

        emit_json([contract.domain(i) for i in infos])
    else:
        _table(infos, want_drift, multi)


def _stack_list(words: List[str], connect: Optional[str], include_inactive: bool):
    """LIST on the hypervisor inside the last VM of each stack address; field 1 (host)
    names that VM, the machine containing them, as ctys did."""
    from ctys_libvirt.ctys.targets import parse_target
    from ctys_libvirt.stack.address import stack_uri

    out = []
    for w in words:
        t = parse_target(w)
        if not t.stack:
            raise UsageError(f"--stack {w}: not a stack address", hint="write host[vm1][vm2]...")
        res = stack_uri(t, local_uri=connect if t.base.is_local else None)
        be = _libvirt(res.uri, events=False)
        try:
            for i in be.list(include_inactive=include_inactive):
                i.host = res.container
                out.append(i)
        finally:
            be.close()
    return out


def _table(infos, drift: bool = False, multi: bool = False) -> None:
    from ctys_libvirt.cli.table import columns

    head = ("STATE", "LABEL", "UUID", "MAC", "VNC", "CONSOLE", "PID", "BACKEND", "CONF")
    if drift:
        head += ("DRIFT",)
    if multi:                   # several hosts: which connection each row came from
        head = ("URI",) + head
    rows = []
    for i in infos:
        vnc = f":{i.vnc_display}/{i.vnc_port}" if i.vnc_port else ""
        row = (i.state, i.label or i.name, i.uuid, i.mac, vnc, i.console, i.pid or "",
               i.backend, i.conf_path or ("-" if not i.ours else ""))
        row += (i.drift or "-",) if drift else ()
        rows.append((str(i.extra.get("uri", "")),) + row if multi else row)
    print(columns(head, rows))


@app.command()
def info(
    fmt: str = typer.Option("table", "--format", shell_complete=C.values("table", "json"), help="table | json"),
    connect: Optional[str] = CONNECT,
) -> None:
    """Host and hypervisor facts: libvirt/QEMU versions, KVM, capabilities, domain counts."""
    with errors_to_exit():
        fmt = _check_format(fmt, ("table", "json"))
        be = _libvirt(connect, events=False)
        try:
            facts = be.info()
        finally:
            be.close()
        if fmt == "json":
            emit_json(facts)
            return
        d = facts["domains"]
        lines = [
            ("URI", facts["uri"]), ("Hostname", facts["hostname"]),
            ("libvirt", facts["libvirt_version"]),
            ("Hypervisor", f"{facts['hypervisor']} {facts['hypervisor_version']}"),
            ("Host arch", facts["host_arch"]),
            ("KVM", ("usable" if facts["kvm_usable"] else "not usable")
             + (" (/dev/kvm present)" if facts["kvm_device"] else " (no /dev/kvm)")),
            ("Domain types", ", ".join(facts["domain_types"])),
            ("Guest arches", ", ".join(sorted({g["arch"] for g in facts["guests"]}))),
            ("Domains", f"{d['total']} ({d['active']} active, {d['inactive']} inactive, {d['ours']} ours)"),
        ]
        from ctys_libvirt.cli.table import pairs

        print(pairs(lines))


@app.command("console")
def console_cmd(
    address: str = typer.Argument(..., shell_complete=C.address, help="domain name/UUID or conf address"),
    force: bool = typer.Option(False, "--force", help="take the console over from another client"),
    client: Optional[str] = typer.Option(None, "--client",
                                         help="CONNECT a client window instead: VNC XTERM GTERM EMACS EMACSM EMACSA EMACSAM"),
    geometry: Optional[str] = typer.Option(None, "--geometry", "-g", help="with --client: WxH+X+Y"),
    reconnect: bool = typer.Option(False, "--reconnect", help="with --client: end this VM's earlier clients first (RECONNECT)"),
    connect: Optional[str] = CONNECT,
    backend: str = BACKEND,
    base: Optional[List[str]] = BASE,
) -> None:
    """Attach the VM's serial console (Ctrl-] detaches), or with --client open a client
    window on the running VM (ctys CONNECT; --reconnect: RECONNECT)."""
    with errors_to_exit():
        from ctys_libvirt.errors import LibvirtUnavailable

        kind = _check_backend(backend)
        if client is not None or geometry is not None or reconnect:
            _connect_client(address, client, geometry, reconnect, connect, kind, base)
            return
        not_libvirts = None
        if kind in ("auto", "libvirt"):
            try:
                be = _libvirt(connect)
            except LibvirtUnavailable:
                if not _may_fall_back(kind, connect):
                    raise
                be = None
            if be is not None:
                try:
                    try:
                        name = _resolve_domains(be, [address], base, False, True)[0]
                    except NotFoundError as exc:
                        if kind == "libvirt" or not _direct_available():
                            raise
                        not_libvirts = exc  # maybe a VM of the direct backend
                    else:
                        from ctys_libvirt.backends import console_stream as console

                        session = console.ConsoleSession(be.conn, be.require(name), 0, 1, force=force)
                        _say(f"Connected to {name} (escape character is ^])")
                        reason = session.run()
                        _say(f"\r\n[{name}: console {reason}]")
                        return
                finally:
                    be.close()
        if not _direct_console(address, base, missing_ok=not_libvirts is not None):
            raise not_libvirts  # known to neither backend: libvirt's error, as before


def _connect_client(address: str, client: Optional[str], geometry: Optional[str], reconnect: bool,
                    connect: Optional[str], kind: str, base) -> None:
    """CONNECT / RECONNECT: a client window on a running VM of either backend."""
    from ctys_libvirt.backends.console_client import WINDOW_CONSOLES, parse_geometry
    from ctys_libvirt.model import ConsoleType
    from ctys_libvirt.translate.request import parse_console

    if client is None:
        raise UsageError("-g/--geometry and --reconnect go with --client TYPE",
                         hint="add --client VNC (or XTERM, GTERM, EMACS...)")
    ctype, _ = parse_console(client)
    if ctype not in WINDOW_CONSOLES:
        raise UsageError(f"--client {client}: CONSOLE {ctype.value} has no client window",
                         hint="use VNC, XTERM, GTERM, EMACS, EMACSM, EMACSA or EMACSAM "
                              "(CLI: `ctys-libvirt console` without --client)")
    if geometry is not None:
        parse_geometry(geometry)
    be = _open(kind, connect)
    backends = [be]
    if kind == "auto" and getattr(be, "name", "") == "libvirt" and _direct_available():
        from ctys_libvirt.backends.direct import DirectBackend

        backends.append(DirectBackend())
    try:
        err = None
        for b in backends:
            try:
                name = _resolve_domains(b, [address], base, False, True)[0]
            except NotFoundError as exc:
                err = err or exc
                continue
            info = b.lookup(name)
            if info is None or info.state not in ("running", "paused", "blocked"):
                raise NotRunning(f"CONNECT and RECONNECT require a running server: {name} is "
                                 f"{info.state if info else 'gone'}",
                                 hint=f"start it with `ctys-libvirt create {address} --reuse`")
            if ctype is ConsoleType.VNC and not info.vnc_port:
                raise NotRunning(f"{name} has no VNC display to connect to",
                                 hint="it was started with CONSOLE NONE/CLI0/SDL; use --client XTERM")
            from ctys_libvirt.cli.clients import launch

            launch(b, name, ctype, info.vnc_port, geometry, reconnect=reconnect)
            return
        raise err
    finally:
        for b in backends:
            b.close()


def _direct_console(address: str, base, missing_ok: bool = False) -> bool:
    """Attach the serial socket of a direct-backend VM; True once attached.  With
    ``missing_ok``, a VM the direct backend does not know returns False (the caller
    reports its own error)."""
    from ctys_libvirt.backends.direct import DirectBackend
    from ctys_libvirt.errors import BackendError, NotRunning
    from ctys_libvirt.model import ConsoleType
    from ctys_libvirt.qemu.runtime import RuntimeDirs

    be = DirectBackend()
    try:
        try:
            name = _resolve_domains(be, [address], base, False, True)[0]
        except NotFoundError:
            if missing_ok:
                return False
            raise
        info = be.lookup(name)
    finally:
        be.close()
    if info is None:  # pragma: no cover - _resolve_domains found it a moment ago
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
    _attach_socket(label, str(rt.serial_sock))
    return True
