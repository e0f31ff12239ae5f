"""define / undefine / start / autostart / show / diff / sync / export: living with
libvirt's own tools on the same domains (docs/coexist.md).  The work is in
ctys_libvirt.coexist; this module parses options and prints."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import List, Optional

import typer

from ctys_libvirt.cli.app import app
from ctys_libvirt.cli.common import ALLOW_ARGSADD, BASE, emit_json, errors_to_exit, warn
from ctys_libvirt.cli.cmd_lifecycle import CONNECT, _check_format
from ctys_libvirt.errors import UsageError

PREFER = typer.Option(None, "--prefer", help="conf | domain: which side wins where both differ")
DRY = typer.Option(False, "--dry-run", help="show what would change; write nothing")
FMT = typer.Option("table", "--format", help="table | json")


def _load(bases):
    def load(address: str):
        from ctys_libvirt.lifecycle import load_vm

        return load_vm(address, bases or (), warn=warn)
    return load


def _libvirt(connect: Optional[str], events: bool = False):
    """The libvirt connection these verbs work on (opened by the lifecycle layer)."""
    from ctys_libvirt.lifecycle import open_libvirt

    return open_libvirt(connect, events=events)


def _addresses(addresses: Optional[List[str]], all_: bool, bases) -> List[str]:
    """ADDRESS… as given, or with --all every active QEMU conf under the bases."""
    if all_ == bool(addresses):
        raise UsageError("give ADDRESS... or --all (not both)", hint="see --help")
    if not all_:
        return list(addresses)
    from ctys_libvirt.inventory.scan import iter_ctys_files, normalize_base, read_header

    notes: List[str] = []
    out = []
    for b in bases or [os.path.expanduser("~")]:
        for p in iter_ctys_files(normalize_base(b), notes):
            try:
                if read_header(p) is not None:
                    out.append(p)
            except OSError as exc:
                notes.append(f"{p}: {exc.strerror or exc}")
    for n in notes:
        warn(n)
    return out


def _print_rows(rows, fmt: str) -> None:
    if fmt == "json":
        emit_json([dataclasses.asdict(r) for r in rows])
        return
    from ctys_libvirt.cli.table import columns

    print(columns(("STATUS", "LABEL", "CONF", "REASON"),
                  ((r.status, r.name or "-", r.conf_path or r.address, r.reason) for r in rows)))
    for r in rows:
        for m in r.messages:
            print(f"  {r.name or r.address}: {m}")


def _batch(addresses, all_, base, prefer, dry_run, fmt, connect, threads: int = 0,
           allow_argsadd=()) -> None:
    from ctys_libvirt.coexist.domains import DEFINE_THREADS, Definer, exit_code
    from ctys_libvirt.lifecycle import resolve_conf

    fmt = _check_format(fmt, ("table", "json"))
    if prefer not in (None, "conf", "domain"):
        raise UsageError(f"unknown --prefer {prefer!r}", hint="use conf or domain")
    todo = _addresses(addresses, all_, base)
    paths: List[str] = []
    errors = {}
    for i, a in enumerate(todo):
        if all_:
            paths.append(a)             # the scan's absolute conf paths: nothing to resolve
            continue
        try:
            paths.append(str(resolve_conf(a, base or (), warn=warn)))
        except Exception as exc:      # its row says why; the batch goes on
            paths.append(a)
            errors[i] = exc
    with _libvirt(connect) as be:
        d = Definer(be, prefer=prefer, dry_run=dry_run, threads=threads or DEFINE_THREADS,
                    allow_argsadd=allow_argsadd)
        ok_idx = [i for i in range(len(paths)) if i not in errors]
        rows_ok = d.run([paths[i] for i in ok_idx])
    from ctys_libvirt.coexist.domains import row_error

    rows = [None] * len(paths)
    for i, r in zip(ok_idx, rows_ok):
        r.address = todo[i]
        rows[i] = r
    for i, exc in errors.items():
        rows[i] = row_error(todo[i], exc)
    _print_rows(rows, fmt)
    rc = exit_code(rows)
    if rc:
        raise SystemExit(rc)


@app.command()
def define(
    addresses: Optional[List[str]] = typer.Argument(None, help="conf paths, VM directories or labels"),
    all_: bool = typer.Option(False, "--all", help="every QEMU conf under the --base directories"),
    dry_run: bool = DRY,
    fmt: str = FMT,
    threads: int = typer.Option(0, "--threads", help="libvirt worker threads (default 4)"),
    allow_argsadd: Optional[List[str]] = ALLOW_ARGSADD,
    connect: Optional[str] = CONNECT,
    base: Optional[List[str]] = BASE,
) -> None:
    """Define (or update) persistent domains from confs without starting them; one row
    per VM: defined / updated / unchanged / conflict / error."""
    with errors_to_exit():
        _batch(addresses, all_, base, None, dry_run, fmt, connect, threads, allow_argsadd or ())


@app.command()
def sync(
    addresses: Optional[List[str]] = typer.Argument(None, help="conf paths, VM directories or labels"),
    all_: bool = typer.Option(False, "--all", help="every domain of ours whose conf exists"),
    prefer: Optional[str] = PREFER,
    dry_run: bool = DRY,
    fmt: str = FMT,
    allow_argsadd: Optional[List[str]] = ALLOW_ARGSADD,
    connect: Optional[str] = CONNECT,
    base: Optional[List[str]] = BASE,
) -> None:
    """Settle drift: --prefer conf writes the conf's values into the definition,
    --prefer domain writes the definition's values back into the conf (simple
    assignments only; the rest is accepted as the new baseline).  Also re-points the
    definition of a moved conf."""
    with errors_to_exit():
        from ctys_libvirt.coexist.domains import row_error, exit_code, sync as do_sync

        fmt = _check_format(fmt, ("table", "json"))
        if prefer not in (None, "conf", "domain"):
            raise UsageError(f"unknown --prefer {prefer!r}", hint="use conf or domain")
        with _libvirt(connect) as be:
            if all_ == bool(addresses):
                raise UsageError("give ADDRESS... or --all (not both)", hint="see --help")
            todo = list(addresses or [])
            if all_:
                todo = [i.conf_path for i in be.list(include_inactive=True)
                        if i.ours and i.conf_path and os.path.exists(i.conf_path)]
            rows = []
            for a in todo:
                try:
                    rows.append(do_sync(be, a, _load(base), prefer=prefer, dry_run=dry_run,
                                        allow_argsadd=allow_argsadd or ()))
                except Exception as exc:
                    rows.append(row_error(a, exc))
        _print_rows(rows, fmt)
        rc = exit_code(rows)
        if rc:
            raise SystemExit(rc)


def _each_domain(addresses: List[str], base, connect, action, events: bool = False) -> None:
    from ctys_libvirt.coexist.domains import resolve_domain

    with _libvirt(connect, events=events) as be:
        for a in addresses:
            dom, _vm = resolve_domain(be, a, _load(base))
            print(f"{dom.name()}: {action(be, dom)}")


@app.command()
def undefine(
    addresses: List[str] = typer.Argument(..., help="domains (name/UUID) or conf addresses"),
    connect: Optional[str] = CONNECT,
    base: Optional[List[str]] = BASE,
) -> None:
    """Remove persistent definitions; disk images and confs are kept."""
    with errors_to_exit():
        from ctys_libvirt.coexist.domains import undefine as do

        _each_domain(addresses, base, connect, do)


@app.command()
def start(
    addresses: List[str] = typer.Argument(..., help="domains (name/UUID) or conf addresses"),
    timeout: float = typer.Option(60.0, "--timeout", help="seconds to wait for running"),
    connect: Optional[str] = CONNECT,
    base: Optional[List[str]] = BASE,
) -> None:
    """Boot the definition as it is (like virsh start); the conf is not read."""
    with errors_to_exit():
        from ctys_libvirt.coexist.domains import start as do

        if timeout < 0:
            raise UsageError(f"--timeout {timeout:g} is negative", hint="use seconds >= 0")
        _each_domain(addresses, base, connect, lambda be, dom: do(be, dom, timeout), events=True)


@app.command()
def autostart(
    args: List[str] = typer.Argument(..., help="ADDRESS... on|off"),
    connect: Optional[str] = CONNECT,
    base: Optional[List[str]] = BASE,
) -> None:
    """Switch libvirt's autostart of domains on or off."""
    with errors_to_exit():
        from ctys_libvirt.coexist.domains import autostart as do

        if len(args) < 2 or args[-1].lower() not in ("on", "off"):
            raise UsageError("give ADDRESS... followed by on or off",
                             hint="e.g. ctys-libvirt autostart vm1 vm2 on")
        on = args[-1].lower() == "on"
        _each_domain(args[:-1], base, connect, lambda be, dom: "autostart " + do(be, dom, on))


@app.command()
def show(
    address: str = typer.Argument(..., help="domain (name/UUID) or conf address"),
    fmt: str = FMT,
    connect: Optional[str] = CONNECT,
    base: Optional[List[str]] = BASE,
) -> None:
    """A dominfo for our VMs: conf, domain, state, drift, console, VNC, backend."""
    with errors_to_exit():
        from ctys_libvirt.coexist.domains import resolve_domain, show as do

        fmt = _check_format(fmt, ("table", "json"))
        with _libvirt(connect) as be:
            dom, _vm = resolve_domain(be, address, _load(base))
            facts = do(be, dom, _load(base))
        if fmt == "json":      # the JSON contract: list's state names, the reason apart
            from ctys_libvirt.cli.contract import split_state

            emit_json(dict(facts, **dict(zip(("state", "reason"), split_state(facts.get("state"))))))
            return
        labels = (("name", "Name"), ("uuid", "UUID"), ("state", "State"), ("ours", "Ours"),
                  ("conf", "Conf"), ("conf_state", "Conf state"), ("drift", "Drift"),
                  ("persistent", "Persistent"), ("autostart", "Autostart"), ("console", "Console"),
                  ("vnc", "VNC"), ("mac", "MAC"), ("memory_mib", "Memory MiB"), ("vcpus", "vCPUs"),
                  ("pid", "PID"), ("backend", "Backend"), ("uri", "URI"))
        from ctys_libvirt.cli.table import pairs

        print(pairs((label, "-" if facts.get(k) is None else facts[k]) for k, label in labels))


@app.command()
def diff(
    address: str = typer.Argument(..., help="domain (name/UUID) or conf address"),
    fmt: str = FMT,
    connect: Optional[str] = CONNECT,
    base: Optional[List[str]] = BASE,
) -> None:
    """Conf-owned fields: conf vs definition vs running; the admin's additions (kept)."""
    with errors_to_exit():
        from ctys_libvirt.coexist.domains import conf_of, diff as do, resolve_domain
        from ctys_libvirt.errors import NotFoundError

        fmt = _check_format(fmt, ("table", "json"))
        with _libvirt(connect) as be:
            dom, vm = resolve_domain(be, address, _load(base))
            if vm is None:
                conf = conf_of(dom)
                if conf is None:
                    raise NotFoundError(f"{dom.name()} was not defined from a conf (not ours)",
                                        hint=f"`ctys-libvirt export {dom.name()}` writes a conf for it")
                if not os.path.exists(conf):
                    raise NotFoundError(f"{dom.name()}: its conf {conf} is missing",
                                        hint=f"restore it, or `ctys-libvirt export {dom.name()}`")
                vm = _load(base)(conf)
            facts = do(be, dom, vm)
        if fmt == "json":
            emit_json(facts)
            return
        print(f"{facts['name']}: {facts['drift']} (conf {facts['conf_path']})")
        from ctys_libvirt.cli.table import columns

        print(columns(("FIELD", "STATE", "CONF", "DEFINITION", "RUNNING"),
                      ((f["name"], f["state"], f["conf"], f["definition"],
                        "-" if f["running"] is None else f["running"]) for f in facts["fields"])))
        if facts["kept"]:
            print("kept (the definition's own, never touched by define):")
            for k in facts["kept"]:
                print(f"  {k}")


@app.command()
def export(
    domains: List[str] = typer.Argument(..., help="libvirt domains (name/UUID), ours or foreign"),
    directory: Path = typer.Option(Path("."), "--dir", help="where <LABEL>/<LABEL>.ctys is written"),
    connect: Optional[str] = CONNECT,
) -> None:
    """Write a ctys conf (<DIR>/<LABEL>/<LABEL>.ctys with #@# keys) for libvirt domains."""
    with errors_to_exit():
        from ctys_libvirt.coexist.export import export as do

        with _libvirt(connect) as be:
            for name in domains:
                path, notes = do(be.conn, name, directory)
                print(f"{name}: {path}")
                for n in notes:
                    print(f"  note: {n}")
