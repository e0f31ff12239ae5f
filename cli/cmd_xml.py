"""``ctys-libvirt xml CONF``: print the libvirt domain XML for a conf + boot request.

Nothing is defined or started; warnings go to stderr, the XML to stdout."""
from __future__ import annotations

import os

from pathlib import Path
from typing import List, Optional

import typer

from ctys_libvirt.cli import complete as C

from ctys_libvirt.cli.app import app
from ctys_libvirt.cli.common import ALLOW_ARGSADD, BASE, errors_to_exit, note, resolve_conf, warn



@app.command("xml")
def xml_cmd(
    conf: str = typer.Argument(..., shell_complete=C.address, help="conf file, VM directory or machine address"),
    base: Optional[List[str]] = BASE,
    bootmode: Optional[str] = typer.Option(None, "--bootmode", shell_complete=C.bootmode, help="HDD|VHDD|CD|DVD|FDD|USB|PXE|KERNEL[%PATH]"),
    instmode: Optional[str] = typer.Option(None, "--instmode",
                                           help="SRC%SRCPATH%TGT%TGTPATH%STAGE or DEFAULT (install run)"),
    kernel: Optional[str] = typer.Option(None, "--kernel", help="img[%initrd[%append]]"),
    console: Optional[str] = typer.Option(None, "--console", shell_complete=C.console, help="VNC[:N] SDL CLI CLI0 XTERM GTERM EMACS* NONE"),
    argsadd: Optional[List[str]] = typer.Option(None, "--argsadd", help="extra QEMU arguments (repeatable)"),
    allow_argsadd: Optional[List[str]] = ALLOW_ARGSADD,
    allow_device: Optional[List[str]] = typer.Option(None, "--allow-device", help="a host block/char device a medium may be (repeatable; refused otherwise)"),
    install_phase: bool = typer.Option(True, "--install-phase/--final",
                                       help="with --instmode: the install domain (default) or the final one"),
    mydist: Optional[str] = typer.Option(None, "--mydist", help="host distribution the conf is evaluated for"),
    network: Optional[str] = typer.Option(None, "--network", help="libvirt network for the NIC"),
    bridge: Optional[str] = typer.Option(None, "--bridge", help="host bridge for the NIC"),
    connect: Optional[str] = typer.Option(None, "--connect", "-c", shell_complete=C.uri,
                                          help="read host caps from this libvirt URI (default: local probe)"),
    serial_log: Optional[Path] = typer.Option(None, "--serial-log", help="log the serial console to this file"),
    validate: bool = typer.Option(False, "--validate", help="check the XML against libvirt's RelaxNG schema"),
    strict: bool = typer.Option(False, "--strict", help="ARGSADD lint findings are errors"),
) -> None:
    """Print the libvirt domain XML for CONF booted as the options ask (nothing is started).
    With --instmode both the install domain and the final definition are printed."""
    with errors_to_exit():
        from ctys_libvirt.conf import load_conf
        from ctys_libvirt.errors import BackendError
        from ctys_libvirt.model import HostContext
        from ctys_libvirt.translate.request import make_request
        from ctys_libvirt.translate.xml import XmlOptions, build_domain

        path = Path(resolve_conf(conf, tuple(base or ())))
        context = HostContext(mydist=mydist) if mydist else None
        vm = load_conf(path, context=context)
        for w in vm.warnings:
            warn(w)
        if console is None and vm.default_console:
            console = vm.default_console
        req = make_request(bootmode=bootmode, instmode=instmode, kernel=kernel, console=console,
                           argsadd=argsadd or (), install_phase=install_phase,
                           allow_argsadd=allow_argsadd or (),
                           allow_devices=allow_device or ())
        if connect:
            from ctys_libvirt.backends.libvirt import open_connection
            from ctys_libvirt.host.caps import libvirt_host_caps

            conn = open_connection(connect, readonly=True)
            try:
                caps = libvirt_host_caps(conn)
            finally:
                conn.close()
        else:
            from ctys_libvirt.host.caps import local_host_caps

            caps = local_host_caps()
        from ctys_libvirt.host.facts import host_facts

        opts = XmlOptions(network=network, bridge=bridge,
                          serial_log=os.path.abspath(serial_log) if serial_log else None)
        # the plan's errors first, then the ARGSADD policy against the probed binary
        build = build_domain(vm, req, host_facts(caps), opts)
        from ctys_libvirt.security.argwords import sources

        srcs = sources(vm, req)
        if srcs:                # without words: no probe, no policy tables
            from ctys_libvirt.security.argsadd import enforce

            enforce(vm, req, _emulator_probe(caps.emulator), allow=req.allow_argsadd, srcs=srcs)
        for w in build.warnings:
            warn(w)
        if build.plan.argsadd or build.plan.timeopt_args:   # words QEMU gets as written
            from ctys_libvirt.qemu.lint import lint_passthrough

            for w in lint_passthrough(build.plan, emulator=caps.emulator, strict=strict):
                warn(w)
        docs = [build.xml] + ([build.final_xml] if build.final_xml else [])
        if validate:
            from ctys_libvirt.translate.xml import validate_domain_xml

            for doc in docs:
                problem = validate_domain_xml(doc)
                if problem:
                    raise BackendError(f"{build.name}: generated XML does not validate: {problem}",
                                       hint="report this as a bug together with the conf")
        # after every check that can fail: an error stays the only line on stderr
        plans = (build.plan,) + ((build.final_plan,) if build.final_plan else ())
        native = next((plan.native for plan in plans if plan.native is not None), None)
        if native is not None:
            from ctys_libvirt.translate.legacy_args import describe

            for line in describe(native):
                note(f"ARGSADD converted: {line}")
        for doc in docs:
            typer.echo(doc, nl=False)


def _emulator_probe(emulator):
    """The option table of the emulator libvirt runs here (None: not probeable)."""
    import os

    if not emulator or not os.path.exists(emulator):
        return None
    from ctys_libvirt.errors import QemuProbeError
    from ctys_libvirt.qemu.probe import probe

    try:
        return probe(emulator)
    except QemuProbeError:
        return None
