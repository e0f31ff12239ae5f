"""Man pages ctys-libvirt(1) and ctys-qemu(1) from the CLI definitions (the click tree of
the typer app, the argparse parser of ctys-qemu) as roff.

    python -m ctys_libvirt.cli.manpage [--check] [OUTDIR]     (default OUTDIR: man/)

It also writes cli/helptext.py, the top-level ``--help`` text cli/app.py prints without
importing typer (tests/unit/cli/test_cli_startup.py checks it is current).

The generated files are committed and installed as data files under share/man/man1;
tests/unit/cli/test_manpages.py fails when they differ from what this prints, so a changed
option is one regeneration away from its man page."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List

EXIT_CODES = [("0", "success"),
              ("1", "usage error: unknown option or suboption, malformed BOOTMODE/INSTMODE/KERNEL/CONSOLE"),
              ("2", "not found or ambiguous: address, conf, boot image, domain"),
              ("3", "conf error: unsupported shell construct, missing LABEL or MAGICID-QEMU, bad values"),
              ("4", "backend error: libvirtd unreachable, already running, not running, QEMU refused to start"),
              ("5", "timeout: boot, POWEROFF escalation, --wait-install"),
              ("130", "interrupted")]
ENVIRONMENT = [("LIBVIRT_DEFAULT_URI", "libvirt URI when -c/--connect is not given "
                "(else qemu:///system as root, qemu:///session otherwise)"),
               ("CTYS_DEBUG", "set to 1: as --debug"),
               ("CTYS_INVENTORY_DB", "the inventory database (default ~/.ctys/db/default/inventory.sqlite)"),
               ("CTYS_GROUPS_PATH", "where ctys host groups are looked up (default ~/.ctys/groups)")]


def esc(text: str) -> str:
    """Text for a roff line: backslashes and hyphens escaped, no control-line starts."""
    out = text.replace("\\", "\\e").replace("-", "\\-")
    lines = []
    for line in out.split("\n"):
        if line.startswith((".", "'")):
            line = "\\&" + line
        lines.append(line)
    return "\n".join(lines)


def _header(name: str, summary: str) -> List[str]:
    from ctys_libvirt import __version__

    # no date: the page must be reproducible from the sources alone
    return [f'.TH {name.upper()} 1 "" "{name} {__version__}" "User Commands"',
            ".SH NAME", f"{esc(name)} \\- {esc(summary)}"]


def _tp(term: str, text: str) -> List[str]:
    return [".TP", f"\\fB{esc(term)}\\fR", esc(" ".join(text.split())) if text else ""]


def _click_options(cmd, ctx) -> List[str]:
    out: List[str] = []
    for p in cmd.get_params(ctx):
        if getattr(p, "hidden", False) or p.param_type_name != "option":
            continue
        rec = p.get_help_record(ctx)
        if rec:
            out += _tp(rec[0], rec[1])
    return out


def _click_args(cmd, ctx) -> List[str]:
    out: List[str] = []
    for p in cmd.get_params(ctx):
        if p.param_type_name == "argument":
            out += _tp(p.make_metavar(ctx) if _takes_ctx(p) else p.make_metavar(),
                       getattr(p, "help", None) or _typer_help(cmd, p.name) or "")
    return out


def _typer_help(cmd, name) -> str:
    """typer keeps an argument's help only for its rich help: read it from the function."""
    import inspect

    fn = getattr(cmd.callback, "__wrapped__", None)
    if fn is None:
        return ""
    param = inspect.signature(fn).parameters.get(name)
    return getattr(getattr(param, "default", None), "help", None) or ""


def _takes_ctx(p) -> bool:
    import inspect

    return "ctx" in inspect.signature(p.make_metavar).parameters


def ctys_libvirt_page() -> str:
    import click
    import typer.main

    from ctys_libvirt.cli import app as appmod

    appmod._load_commands([])
    group = typer.main.get_command(appmod.app)
    ctx = click.Context(group, info_name="ctys-libvirt")
    lines = _header("ctys-libvirt", "run ctys QEMU conf-file VMs through libvirt (or QEMU directly)")
    lines += [".SH SYNOPSIS", "\\fBctys\\-libvirt\\fR [\\fIGLOBAL OPTIONS\\fR] \\fICOMMAND\\fR "
              "[\\fIOPTIONS\\fR] [\\fIARGS\\fR]...",
              ".SH DESCRIPTION",
              esc("Reads legacy ctys QEMU conf files (<LABEL>/<LABEL>.ctys) without executing them, "
                  "translates them into libvirt domain XML and defines, starts, stops and lists the VMs "
                  "through libvirt, so they show up in virsh and virt-manager like any other domain. "
                  "Hosts without a usable libvirt run the QEMU binary directly (--backend direct)."),
              ".PP", esc("Global options go before the command, as with virsh; a command's own "
                         "-c/--connect and --format win over the global ones."),
              ".SH GLOBAL OPTIONS"]
    lines += _click_options(group, ctx)
    lines += [".SH COMMANDS"]
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        if cmd is None or getattr(cmd, "hidden", False):
            continue
        sub = click.Context(cmd, info_name=name, parent=ctx)
        usage = " ".join(cmd.collect_usage_pieces(sub))
        lines += [f'.SS "{esc(name)}"', f"\\fBctys\\-libvirt {esc(name)}\\fR {esc(usage)}", ".PP",
                  esc(" ".join((cmd.help or "").split()))]
        lines += _click_args(cmd, sub)
        lines += _click_options(cmd, sub)
    lines += [".SH EXIT STATUS"]
    for code, text in EXIT_CODES:
        lines += _tp(code, text)
    lines += [".SH ENVIRONMENT"]
    for var, text in ENVIRONMENT:
        lines += _tp(var, text)
    lines += [".SH EXAMPLES", ".nf",
              esc("ctys-libvirt enumerate ~/vms"),
              esc("ctys-libvirt create ~/vms/debian5 --console VNC"),
              esc("ctys-libvirt -c qemu:///system list --all"),
              esc("ctys-libvirt cancel debian5 --mode POWEROFF"), ".fi",
              ".SH SEE ALSO", "\\fBctys\\-qemu\\fR(1), \\fBvirsh\\fR(1)"]
    return "\n".join(lines) + "\n"


def ctys_qemu_page() -> str:
    from ctys_libvirt.cli.ctys_qemu import build_parser

    p = build_parser()
    lines = _header("ctys-qemu", "the ctys command line of the QEMU plugin, run through ctys-libvirt")
    lines += [".SH SYNOPSIS",
              "\\fBctys\\-qemu\\fR [\\fB\\-t QEMU\\fR] \\fB\\-a\\fR \\fIACTION\\fR[=\\fISUBOPTS\\fR] "
              "[\\fIOPTIONS\\fR] [\\fITARGETS\\fR]...",
              ".SH DESCRIPTION", esc(p.description or ""), ".SH OPTIONS"]
    for a in p._actions:
        if a.help == argparse.SUPPRESS or not a.option_strings:
            continue
        meta = f" {a.metavar}" if a.metavar else ""
        lines += _tp(", ".join(a.option_strings) + meta, a.help or "")
    pos = [a for a in p._actions if not a.option_strings]
    if pos:
        lines += [".SH ARGUMENTS"]
        for a in pos:
            lines += _tp(a.metavar or a.dest.upper(), a.help or "")
    lines += [".SH ACTIONS", ".nf", esc(p.epilog or ""), ".fi", ".SH EXIT STATUS"]
    for code, text in EXIT_CODES:
        lines += _tp(code, text)
    lines += [".SH SEE ALSO", "\\fBctys\\-libvirt\\fR(1), \\fBvirsh\\fR(1)"]
    return "\n".join(lines) + "\n"


PAGES = {"ctys-libvirt.1": ctys_libvirt_page, "ctys-qemu.1": ctys_qemu_page}

HELPTEXT = Path(__file__).resolve().parent / "helptext.py"


def click_top_help(columns: int = 80) -> str:
    """``ctys-libvirt --help`` exactly as click prints it on a terminal of ``columns``
    (the typer path of cli/app.py, never the stored text)."""
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("_CTYS_LIBVIRT_COMPLETE")}
    env["COLUMNS"] = str(columns)
    p = subprocess.run([sys.executable, "-c", "import sys; sys.argv[1:] = ['--help']; "
                        "from ctys_libvirt.cli.app import _run; _run()"],
                       capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, check=True)
    return p.stdout


def helptext_module() -> str:
    """cli/helptext.py: the stored top-level help cli/app.py prints without typer."""
    from ctys_libvirt.cli.app import help_sources_crc

    return ('"""Generated by `python -m ctys_libvirt.cli.manpage` (do not edit): `ctys-libvirt --help`\n'
            "as click prints it on a terminal of 80 columns or more, and the CRC of the CLI sources\n"
            'it was made from (cli/app.py prints it only while they match)."""\n'
            f"SOURCES_CRC = {help_sources_crc():#010x}\n"
            f"TOP_HELP = {click_top_help()!r}\n")


def main(argv=None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    check = "--check" in args
    args = [a for a in args if a != "--check"]
    outdir = Path(args[0] if args else Path(__file__).resolve().parent.parent / "man")
    stale = []
    for name, make in PAGES.items():
        text = make()
        path = outdir / name
        if check:
            if not path.is_file() or path.read_text() != text:
                stale.append(str(path))
        else:
            outdir.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    text = helptext_module()
    if check:
        if not HELPTEXT.is_file() or HELPTEXT.read_text() != text:
            stale.append(str(HELPTEXT))
    else:
        HELPTEXT.write_text(text)
    if stale:
        print("out of date: " + ", ".join(stale) + " (run python -m ctys_libvirt.cli.manpage)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
