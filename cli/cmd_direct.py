"""``ctys-libvirt argv`` (the direct-exec QEMU command line for a conf) and
``ctys-libvirt doctor`` (QEMU binaries, their probes, and the backend auto picks)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional

import typer

from ctys_libvirt.cli import complete as C

from ctys_libvirt.cli.app import app
from ctys_libvirt.cli.common import ALLOW_ARGSADD, BASE, emit_json, errors_to_exit, resolve_conf, warn



@app.command("argv")
def argv_cmd(
    conf: str = typer.Argument(..., shell_complete=C.address, help="conf file, VM directory or machine address"),
    base: Optional[List[str]] = BASE,
    qemu: Optional[str] = typer.Option(None, "--qemu", help="QEMU binary to probe and build for"),
    qemu_version: Optional[str] = typer.Option(None, "--qemu-version",
                                               help="build for this QEMU version X.Y.Z without a binary "
                                                    "(with --qemu: that binary's version, if its banner is odd)"),
    kvm_fork: bool = typer.Option(False, "--kvm-fork", help="with --qemu-version: a qemu-kvm fork build"),
    kqemu: bool = typer.Option(False, "--kqemu", help="with --qemu-version: a build with KQEMU support"),
    bootmode: Optional[str] = typer.Option(None, "--bootmode", shell_complete=C.bootmode, help="HDD|VHDD|CD|DVD|FDD|USB|PXE|KERNEL[%PATH]"),
    instmode: Optional[str] = typer.Option(None, "--instmode", help="SRC%SRCPATH%TGT%TGTPATH%STAGE or DEFAULT"),
    kernel: Optional[str] = typer.Option(None, "--kernel", help="img[%initrd[%append]]"),
    console: Optional[str] = typer.Option(None, "--console", shell_complete=C.console, help="VNC[:N] SDL CLI CLI0 XTERM GTERM EMACS* NONE"),
    argsadd: Optional[List[str]] = typer.Option(None, "--argsadd", help="extra QEMU arguments (repeatable)"),
    allow_argsadd: Optional[List[str]] = ALLOW_ARGSADD,
    allow_device: Optional[List[str]] = typer.Option(None, "--allow-device", help="a host block/char device a medium may be (repeatable; refused otherwise)"),
    network: str = typer.Option("user", "--network", help="user | vde:SOCKET | tap[:IFNAME]"),
    runtime_dir: Optional[Path] = typer.Option(None, "--runtime-dir",
                                               help="base of the runtime dirs (default: the backend's)"),
    foreground: bool = typer.Option(False, "--foreground", help="no -daemonize (CLI0 gets -nographic)"),
    run_as: Optional[str] = typer.Option(None, "--run-as", help="as root: the user QEMU runs as (default libvirt-qemu, else nobody; 'root' keeps root)"),
    fmt: str = typer.Option("lines", "--format", shell_complete=C.values("lines", "json"), help="lines | json"),
    strict: bool = typer.Option(False, "--strict", help="ARGSADD lint findings are errors"),
    compare: bool = typer.Option(False, "--compare",
                                 help="compare with libvirt's domainXMLToNative argv for the same conf"),
    connect: Optional[str] = typer.Option(None, "--connect", "-c", shell_complete=C.uri, help="libvirt URI for --compare"),
    mydist: Optional[str] = typer.Option(None, "--mydist", help="host distribution the conf is evaluated for"),
) -> None:
    """Print the QEMU argv the direct backend would run for CONF (one element a line)."""
    with errors_to_exit():
        from ctys_libvirt.conf import load_conf
        from ctys_libvirt.errors import UsageError
        from ctys_libvirt.model import HostContext
        from ctys_libvirt.qemu.discovery import find_qemu
        from ctys_libvirt.qemu.probe import synthetic_probe
        from ctys_libvirt.qemu.runtime import RuntimeDirs
        from ctys_libvirt.translate.argv import build_argv_result
        from ctys_libvirt.translate.plan import resolve_plan
        from ctys_libvirt.translate.request import make_request

        if fmt not in ("lines", "json"):
            raise UsageError(f"unknown --format {fmt!r}", hint="use lines or json")
        if (kvm_fork or kqemu) and (qemu_version is None or qemu):
            raise UsageError("--kvm-fork/--kqemu only apply to --qemu-version without --qemu",
                             hint="a real binary's -h tells; drop --kvm-fork/--kqemu")
        vm = load_conf(Path(resolve_conf(conf, tuple(base or ()))), context=HostContext(mydist=mydist) if mydist else None)
        for w in vm.warnings:
            warn(w)
        req = make_request(bootmode=bootmode, instmode=instmode, kernel=kernel,
                           console=console if console is not None else (vm.default_console or None),
                           argsadd=argsadd or (), allow_argsadd=allow_argsadd or (),
                           allow_devices=allow_device or ())
        plan = resolve_plan(vm, req)
        if qemu_version is not None and not qemu:   # a version without a binary
            probe = synthetic_probe(qemu_version, kvm_fork=kvm_fork, kqemu=kqemu,
                                    path=vm.startercall or "qemu")
        else:       # with --qemu, --qemu-version states the version its banner does not
            probe = find_qemu(explicit=qemu, startercall=None if qemu else vm.startercall, arch=vm.arch,
                              assume_version=qemu_version, vm_dir=str(vm.conf_dir))
        from ctys_libvirt.security.argsadd import enforce

        enforce(vm, req, probe, allow=req.allow_argsadd)
        rt = RuntimeDirs.for_label(plan.name, runtime_dir)
        display = plan.vnc_display
        if plan.console.value == "VNC" and display is None:
            from ctys_libvirt.backends.direct import DirectBackend

            display = DirectBackend(base=runtime_dir)._pick_display()
        how, who = "root", None
        if not foreground and not probe.synthetic:
            from ctys_libvirt.backends.direct import privileges
            from ctys_libvirt.translate.argv import sandbox_value

            who, how, _note = privileges(probe, run_as)
        res = build_argv_result(plan, probe, runtime=rt, daemonize=not foreground, strict=strict,
                                network=network, vnc_display=display, supervised=how == "sandbox",
                                run_as=who.name if how == "runas" else None,
                                sandbox=sandbox_value(probe) if how == "sandbox" else None)
        for w in res.warnings:
            warn(w)
        diffs = None
        theirs = None
        if compare:
            diffs, theirs = _compare(vm, req, res.argv, plan, connect, display)
        if fmt == "json":
            out = {"argv": res.argv, "warnings": res.warnings, "qemu": probe.as_dict(),
                   "monitor": {"kind": res.monitor_kind, "path": res.monitor_path},
                   "serial": res.serial, "vnc_display": res.vnc_display,
                   "spelling": "modern" if res.modern else "legacy"}
            if compare:
                out["compare"] = {"libvirt_argv": theirs, "differences": diffs}
            emit_json(out)
        else:
            for a in res.argv:
                typer.echo(a)
            if compare:
                if diffs:
                    for d in diffs:
                        typer.echo(f"# differs from libvirt: {d}", err=True)
                else:
                    typer.echo("# libvirt's argv agrees (memory, smp, disks, boot order, NIC, display, "
                               "kernel, passthrough)", err=True)
        if compare and diffs and strict:
            raise typer.Exit(4)  # a backend mismatch, like other backend errors


def _compare(vm, req, ours, plan, connect, display):
    import dataclasses

    import libvirt

    from ctys_libvirt.backends.libvirt import open_connection
    from ctys_libvirt.errors import LibvirtUnavailable
    from ctys_libvirt.qemu.compare import compare, libvirt_argv
    from ctys_libvirt.host.caps import local_host_caps
    from ctys_libvirt.translate.xml import XmlOptions, build_domain

    conn = open_connection(connect)
    try:
        if display is not None and req.vnc_display is None:
            req = dataclasses.replace(req, vnc_display=display)
        # a bridge NIC keeps MAC/model in to-native and avoids its very slow user-NIC path
        # TCG domain: the accelerator is not compared, and libvirt refuses qemu64 under KVM
        # on hosts whose CPU lacks svm
        caps = dataclasses.replace(local_host_caps(), kvm=False)
        build = build_domain(vm, req, caps, XmlOptions(bridge="ctys-compare0"))
        try:
            theirs = libvirt_argv(conn, build.xml)
        except libvirt.libvirtError as exc:
            raise LibvirtUnavailable(f"domainXMLToNative failed for {plan.name}: {exc}",
                                     hint="check the domain XML with `ctys-libvirt xml --validate`") from None
    finally:
        conn.close()
    # libvirt converts legacy ARGSADD to elements (translate.legacy_args): only the words it
    # passes through must appear verbatim in its argv
    return compare(ours, theirs, list(build.plan.argsadd)), theirs


@app.command("doctor")
def doctor_cmd(
    conf: Optional[str] = typer.Argument(None, help="conf file, VM directory or machine address: "
                                         "which backend would run it, and why"),
    base: Optional[List[str]] = BASE,
    backend: str = typer.Option("auto", "--backend", help="auto | libvirt | direct (as create would get)"),
    fmt: str = typer.Option("table", "--format", shell_complete=C.values("table", "json"), help="table | json"),
    qemu: Optional[str] = typer.Option(None, "--qemu", help="also probe this binary"),
    connect: Optional[str] = typer.Option(None, "--connect", "-c", shell_complete=C.uri, help="libvirt URI to check"),
    no_cache: bool = typer.Option(False, "--no-cache", help="re-probe every binary"),
) -> None:
    """QEMU binaries with version, MAGIC and accelerators, and which backend auto picks and why;
    with CONF, which backend would run that conf and the emulator it would use."""
    with errors_to_exit():
        from ctys_libvirt.errors import UsageError

        if fmt not in ("table", "json"):
            raise UsageError(f"unknown --format {fmt!r}", hint="use table or json")
        if (backend or "").lower() not in ("auto", "libvirt", "direct"):
            raise UsageError(f"unknown backend {backend!r}", hint="use auto, libvirt or direct")
        vm = None
        if conf is not None:
            from ctys_libvirt.conf import load_conf

            vm = load_conf(Path(resolve_conf(conf, tuple(base or ()))))
        report = _doctor(qemu, connect, not no_cache)
        if vm is not None:
            report["conf"] = _conf_choice(vm, backend, connect, report["binaries"])
        if fmt == "json":
            emit_json(report)
            return
        typer.echo("QEMU binaries:")
        if not report["binaries"]:
            typer.echo("  (none found)")
        for b in report["binaries"]:
            if b.get("error"):
                typer.echo(f"  {b['path']:<34} [{b['source']}] ERROR {b['error']}")
                continue
            typer.echo(f"  {b['path']:<34} [{b['source']}] {b['version']:<8} {b['magic']:<13} "
                       f"accel={','.join(b['accelerators'])} {'qmp' if b['qmp'] else 'hmp'}"
                       f"{' kvm-fork' if b['kvm_fork'] else ''}{' kqemu-capable' if b['kqemu_capable'] else ''}")
        h = report["host"]
        typer.echo("Host:")
        typer.echo(f"  /dev/kvm usable: {'yes' if h['kvm'] else 'no'}   /dev/kqemu: "
                   f"{'present' if h['kqemu'] else 'absent'}")
        lv = report["libvirt"]
        typer.echo("libvirt:")
        typer.echo(f"  URI {lv['uri']}: " + (f"reachable, libvirt {lv['version']}" if lv["reachable"]
                                             else f"NOT reachable ({lv['error']})"))
        if lv["reachable"]:
            typer.echo(f"  hypervisor: {lv.get('hypervisor') or '?'}; network 'default': "
                       f"{lv.get('default_network') or 'absent'}")
        typer.echo(f"  RelaxNG schema dir {lv['schema_dir']}: {'present' if lv['schema'] else 'absent'}")
        c = report["choice"]
        typer.echo(f"Backend 'auto' picks: {c['kind']}")
        for r in c["reasons"]:
            typer.echo(f"  because {r}")
        cc = report.get("conf")
        if cc is not None:
            typer.echo(f"Conf {cc['path']} (LABEL {cc['label']}):")
            runs = f"runs {cc['emulator']}" if cc["emulator"] else "cannot run it"
            typer.echo(f"  backend {cc['backend']} ({cc['requested']} requested) {runs}")
            for r in cc["reasons"]:
                typer.echo(f"  because {r}")


def _doctor(qemu, connect, use_cache) -> dict:
    from ctys_libvirt.backends.select import explain_choice
    from ctys_libvirt.qemu.discovery import candidates, probe_all
    from ctys_libvirt.qemu.probe import _kqemu_present, _kvm_usable

    cands = probe_all(candidates(explicit=qemu), use_cache=use_cache)
    bins = []
    for c in cands:
        if c.probe is None:
            bins.append({"path": c.path, "source": c.source, "error": c.error})
        else:
            d = c.probe.as_dict()
            d["source"] = c.source
            bins.append(d)
    choice = explain_choice("auto", uri=connect)
    schema_dir = "/usr/share/libvirt/schemas"
    lv = {"uri": choice.uri, "reachable": bool(choice.libvirt_reachable),
          "version": choice.libvirt_version, "error": choice.libvirt_error,
          "schema_dir": schema_dir, "schema": os.path.isfile(os.path.join(schema_dir, "domain.rng"))}
    if choice.libvirt_reachable:
        lv.update(_libvirt_details(choice.uri))
    if choice.kind == "direct":
        usable = [b for b in bins if not b.get("error")]
        if usable:
            choice.reasons.append(f"direct will run {usable[0]['path']} (QEMU {usable[0]['version']})")
        else:
            choice.reasons.append("but no usable QEMU binary was found either")
    return {"binaries": bins, "host": {"kvm": _kvm_usable(), "kqemu": _kqemu_present()},
            "libvirt": lv, "choice": {"kind": choice.kind, "reasons": choice.reasons}}


def _conf_choice(vm, backend: str, connect, binaries) -> dict:
    """Which backend would run ``vm`` (as create decides it) and the emulator it would use."""
    from ctys_libvirt.backends.select import explain_choice, libvirt_emulator, startercall_missing, startercall_note
    from ctys_libvirt.qemu.discovery import _resolve

    choice = explain_choice(backend, uri=connect, vm=vm)
    emulator = None
    if choice.kind == "libvirt":
        emulator = choice.emulator
        if emulator is None:
            import libvirt

            libvirt.registerErrorHandler(lambda *_: None, None)
            try:
                conn = libvirt.openReadOnly(choice.uri)
            except libvirt.libvirtError as exc:
                choice.reasons.append(f"libvirt at {choice.uri} cannot be opened: "
                                      f"{str(exc).strip().splitlines()[0] if str(exc).strip() else exc}")
            else:
                try:
                    emulator = libvirt_emulator(conn, vm)
                finally:
                    conn.close()
            if startercall_missing(vm) and choice.requested != "auto":
                choice.reasons.append(startercall_note(vm, emulator))
    elif vm.startercall:
        # the direct backend runs STARTERCALL and nothing else (create --qemu overrides it)
        emulator = _resolve(vm.startercall)
        if emulator is None:
            choice.reasons.append(f"STARTERCALL {vm.startercall} is not installed on this host: the "
                                  "direct backend cannot run this conf (give create --qemu PATH)")
    else:
        usable = [b for b in binaries if not b.get("error")]
        emulator = usable[0]["path"] if usable else None
    return {"path": str(vm.source_path), "label": vm.label, "startercall": vm.startercall,
            "accelerator": vm.accelerator, "requested": choice.requested, "backend": choice.kind,
            "emulator": emulator, "reasons": choice.reasons}


def _libvirt_details(uri: str) -> dict:
    import libvirt

    libvirt.registerErrorHandler(lambda *_: None, None)
    out = {}
    try:
        conn = libvirt.openReadOnly(uri)
    except libvirt.libvirtError:
        return out
    try:
        v = conn.getVersion()
        out["hypervisor"] = f"{conn.getType()} {v // 1000000}.{(v // 1000) % 1000}.{v % 1000}"
        try:
            net = conn.networkLookupByName("default")
            out["default_network"] = "active" if net.isActive() else "inactive"
        except libvirt.libvirtError:
            out["default_network"] = None
    except libvirt.libvirtError:
        pass
    finally:
        conn.close()
    return out
