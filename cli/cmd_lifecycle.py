"""create / cancel / list / info / console: the VM lifecycle commands.  The bodies of
create and list live in cli/lifecycle_run.py (a plain command line runs them without
typer, cli/plain.py); the options are declared here.

Heavy imports (libvirt, lxml, the translators) happen inside the commands so that
``ctys-libvirt --help`` stays fast."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ctys_libvirt.cli.app import app
from ctys_libvirt.cli import complete as C
from ctys_libvirt.cli.common import ALLOW_ARGSADD, BASE, GLOBAL, emit_json, errors_to_exit, warn
from ctys_libvirt.cli import lifecycle_run as run
# the helpers the other commands share with create and list (their bodies live there)
from ctys_libvirt.cli.lifecycle_run import _check_backend, _check_format, _say
from ctys_libvirt.errors import NotRunning, UsageError

CONNECT = typer.Option(None, "--connect", "-c", metavar="URI", shell_complete=C.uri, help="libvirt URI (default: LIBVIRT_DEFAULT_URI, "
                       "qemu:///system as root, else qemu:///session)")
BACKEND = typer.Option("auto", "--backend", shell_complete=C.backend, help="auto | libvirt | direct")
CANCEL_MODES = ("POWEROFF", "FORCE", "RESET", "REBOOT", "PAUSE", "SUSPEND", "RESUME")


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
    run.create(address=address, bootmode=bootmode, instmode=instmode, kernel=kernel,
               console_=console_, argsadd=argsadd, allow_argsadd=allow_argsadd,
               allow_device=allow_device, transient=transient, reuse=reuse,
               wait_install=wait_install, timeout=timeout, serial_log=serial_log, strict=strict,
               network=network, bridge=bridge, qemu=qemu, run_as=run_as,
               qemu_version=qemu_version, fmt=fmt, geometry=geometry, no_client=no_client,
               connect=connect, backend=backend, base=base)


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
        from ctys_libvirt.stack.cancel import StackOptions
        from ctys_libvirt.stack.inside import StackSite

        from ctys_libvirt import lifecycle

        stack = StackOptions(propagate=not no_stack, site=StackSite.from_env())
        # auto: the VMs of the direct backend too (ctys VMs started by it)
        with lifecycle.Lifecycle.open(kind, connect, warn=warn, with_direct=True) as life:
            jobs = life.all_names(include_foreign=include_foreign, resume=m == "RESUME") if all_ else []
            for a in addresses or []:
                stacked = lifecycle.stack_address(a, connect)
                if stacked is not None:
                    sb = life.add_stack_level(stacked[0])
                    jobs.append((sb, lifecycle.stack_vm(sb, stacked[1])))
                    continue
                jobs.append(life.find(a, base or ()))
            results = []
            for b, name in jobs:
                try:
                    r = life.cancel(b, name, CancelMode(m), timeout, stack)
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


def _print_cancel(r, depth: int = 0) -> None:
    """One CANCEL result, the VMs cancelled inside it first indented above it (deepest first)."""
    from ctys_libvirt.stack.inside import NO_STACK_KEYS

    for child in r.inner:
        _print_cancel(child, depth + 1)
    pad = "    " * depth
    where = f" [{r.uri}]" if depth else ""
    print(f"{pad}{r.name}{where}: {r.mode.value} -> {r.action}; now {r.state} ({r.seconds:.2f}s)")
    for msg in r.messages:
        if NO_STACK_KEYS in msg and not GLOBAL.verbose:
            continue        # a plain VM without stack keys: said with -v (and in JSON) only
        print(f"{pad}  {msg}")


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
    run.list_(all_=all_, fmt=fmt, drift=drift, stacks=stacks, connect=connect, backend=backend)


@app.command()
def info(
    fmt: str = typer.Option("table", "--format", shell_complete=C.values("table", "json"), help="table | json"),
    connect: Optional[str] = CONNECT,
) -> None:
    """Host and hypervisor facts: libvirt/QEMU versions, KVM, capabilities, domain counts."""
    with errors_to_exit():
        fmt = _check_format(fmt, ("table", "json"))
        from ctys_libvirt.lifecycle import open_libvirt

        with open_libvirt(connect, events=False) as be:
            facts = be.info()
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
        kind = _check_backend(backend)
        if client is not None or geometry is not None or reconnect:
            _connect_client(address, client, geometry, reconnect, connect, kind, base)
            return
        from ctys_libvirt.lifecycle import console

        console(address, kind=kind, uri=connect, bases=base or (), force=force, warn=warn, say=_say)


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
    from ctys_libvirt.lifecycle import Lifecycle

    with Lifecycle.open(kind, connect, warn=warn, with_direct=True) as life:
        b, name = life.find(address, base or ())
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
