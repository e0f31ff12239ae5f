"""The bodies of ``create`` and ``list`` (cli/cmd_lifecycle.py declares their options for
typer and calls them), and their typer-free start for a plain command line (cli/plain.py).
Heavy imports (libvirt, lxml, the translators) happen inside, where they are needed."""
from __future__ import annotations

import dataclasses
import os
import sys
from typing import List, Optional

from ctys_libvirt.cli.common import emit_json, errors_to_exit, warn
from ctys_libvirt.errors import UsageError


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
    from ctys_libvirt.lifecycle import check_backend

    return check_backend(kind)


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
        print("  persistent definition written/updated")
    if res.created_target:
        print(f"  install target created: {res.created_target}")
    for m in res.messages:
        print(f"  {m}")


def create(*, address: str, bootmode: Optional[str] = None, instmode: Optional[str] = None,
           kernel: Optional[str] = None, console_: Optional[str] = None,
           argsadd: Optional[List[str]] = None, allow_argsadd: Optional[List[str]] = None,
           allow_device: Optional[List[str]] = None, transient: bool = False, reuse: bool = False,
           wait_install: bool = False, timeout: float = 60.0, serial_log=None, strict: bool = False,
           network: Optional[str] = None, bridge: Optional[str] = None, qemu: Optional[str] = None,
           run_as: Optional[str] = None, qemu_version: Optional[str] = None, fmt: str = "table",
           geometry: Optional[str] = None, no_client: bool = False, connect: Optional[str] = None,
           backend: str = "auto", base: Optional[List[str]] = None) -> None:
    """CREATE with the command's options (cli/cmd_lifecycle.py documents them)."""
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
        from ctys_libvirt import lifecycle

        stacked = lifecycle.stack_address(address, connect)
        if stacked is not None:     # the conf is read here, the VM runs inside the stack
            connect, address = stacked
            backend = "libvirt"
        vm = lifecycle.load_vm(address, base or (), warn=warn)
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
        with lifecycle.Lifecycle.open(backend, connect, vm, warn=warn, say=_say) as life:
            be = life.backend
            res = life.create(vm, req, opts)
            _create_warnings(res, transient)
            _print_create(res, fmt)
            sys.stdout.flush()
            if not no_client:
                from ctys_libvirt.cli.clients import launch

                launch(be, res.name, req.console, res.vnc_port, geometry, strict=False)
            if res.install and wait_install:
                life.wait_install(res.name, timeout)
            if req.console is ConsoleType.CLI0:
                life.run_cli0(res)      # the VM is destroyed when the block ends
            elif reuse and req.console.is_serial and be.name == "libvirt" \
                    and any("reusing" in m for m in res.messages) and sys.stdin.isatty():
                life.attach(res.name)


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


def list_(*, all_: bool = False, fmt: str = "table", drift: Optional[bool] = None,
          stacks: Optional[List[str]] = None, connect: Optional[List[str]] = None,
          backend: str = "auto") -> None:
    """LIST with the command's options (cli/cmd_lifecycle.py documents them)."""
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
        from ctys_libvirt import lifecycle

        if kind in ("auto", "libvirt"):
            try:
                be = lifecycle.open_libvirt(connect, events=False)
            except LibvirtUnavailable as exc:
                if not lifecycle.may_fall_back(kind, connect):
                    raise
                be = None
                warn(exc.one_line())
            if be is not None:
                with be:
                    infos = be.list(include_inactive=all_, drift=want_drift)
        if kind in ("auto", "direct"):
            infos += lifecycle.list_direct(all_, warn=warn)
        _print_list(infos, fmt, want_drift)


def _multi_list(uris: List[str], include_inactive: bool, drift: bool):
    """LIST on several libvirt URIs in parallel threads (each RPC releases the GIL):
    (infos in URI order, each with extra['uri'], whether a host failed).  A failing host
    is one error line; the others are listed all the same."""
    from ctys_libvirt.errors import CtysError
    from ctys_libvirt.lifecycle import open_libvirt
    from concurrent.futures import ThreadPoolExecutor

    from urllib.parse import urlparse

    def one(uri):
        try:
            with open_libvirt(uri, events=False) as be:
                # drift compares with conf files here: only meaningful for this host's domains
                out = be.list(include_inactive=include_inactive,
                              drift=drift and not urlparse(uri).hostname)
        except CtysError as exc:
            return None, exc
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
    from ctys_libvirt.lifecycle import open_libvirt

    out = []
    for w in words:
        t = parse_target(w)
        if not t.stack:
            raise UsageError(f"--stack {w}: not a stack address", hint="write host[vm1][vm2]...")
        res = stack_uri(t, local_uri=connect if t.base.is_local else None)
        with open_libvirt(res.uri, events=False) as be:
            for i in be.list(include_inactive=include_inactive):
                i.host = res.container
                out.append(i)
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


# -- the typer-free start (cli/plain.py) -------------------------------------------------
# spelling -> (parameter, takes a value, repeatable[, flag value]), as cmd_lifecycle.py
# declares them (tests/unit/cli/test_plain_start.py compares); the rest goes through typer.
CREATE_OPTIONS = {
    "--bootmode": ("bootmode", True, False), "--instmode": ("instmode", True, False),
    "--kernel": ("kernel", True, False), "--console": ("console_", True, False),
    "--argsadd": ("argsadd", True, True), "--allow-argsadd": ("allow_argsadd", True, True),
    "--allow-device": ("allow_device", True, True), "--transient": ("transient", False, False),
    "--reuse": ("reuse", False, False), "--wait-install": ("wait_install", False, False),
    "--timeout": ("timeout", True, False), "--serial-log": ("serial_log", True, False),
    "--strict": ("strict", False, False), "--network": ("network", True, False),
    "--bridge": ("bridge", True, False), "--qemu": ("qemu", True, False),
    "--run-as": ("run_as", True, False), "--qemu-version": ("qemu_version", True, False),
    "--format": ("fmt", True, False), "--geometry": ("geometry", True, False),
    "-g": ("geometry", True, False), "--no-client": ("no_client", False, False),
    "--connect": ("connect", True, False), "-c": ("connect", True, False),
    "--backend": ("backend", True, False), "--base": ("base", True, True),
    "-b": ("base", True, True),
}
CREATE_DEFAULTS = {"bootmode": None, "instmode": None, "kernel": None, "console_": None,
                   "transient": False, "reuse": False, "wait_install": False, "timeout": 60.0,
                   "serial_log": None, "strict": False, "network": None, "bridge": None,
                   "qemu": None, "run_as": None, "qemu_version": None, "fmt": "table",
                   "geometry": None, "no_client": False, "connect": None, "backend": "auto"}
LIST_OPTIONS = {
    "--all": ("all_", False, False), "-a": ("all_", False, False),
    "--format": ("fmt", True, False), "--drift": ("drift", False, False, True),
    "--no-drift": ("drift", False, False, False), "--stack": ("stacks", True, True),
    "--connect": ("connect", True, True), "-c": ("connect", True, True),
    "--backend": ("backend", True, False),
}
LIST_DEFAULTS = {"all_": False, "fmt": "table", "drift": None, "backend": "auto"}


def _path(value: str):
    from pathlib import Path

    return Path(value)          # what typer makes of a Path option


def parse_create(args: List[str]):
    from ctys_libvirt.cli.plain import parse

    return parse(args, CREATE_OPTIONS, CREATE_DEFAULTS, positional=("address", True, False),
                 convert={"timeout": float, "serial_log": _path})


def parse_list(args: List[str]):
    from ctys_libvirt.cli.plain import parse

    return parse(args, LIST_OPTIONS, LIST_DEFAULTS)
