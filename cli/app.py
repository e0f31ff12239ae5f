"""``ctys-libvirt``: the entry point.  The typer app (cli/root.py) is built only when a
command runs; each command group lives in its own module and only the one being run is
imported.  Plain ``--help`` is printed from the text the man page generator stored
(cli/helptext.py) without importing typer or click at all: they alone cost as much as
``import libvirt``."""
from __future__ import annotations

import os
import sys

# Command modules register themselves on `app` when imported.
_COMMAND_MODULES = {
    "ctys_libvirt.cli.cmd_check": ("check",),
    "ctys_libvirt.cli.cmd_xml": ("xml",),
    "ctys_libvirt.cli.cmd_lifecycle": ("create", "cancel", "list", "info", "console"),
    "ctys_libvirt.cli.cmd_direct": ("argv", "doctor"),
    "ctys_libvirt.cli.cmd_inventory": ("enumerate",),
    "ctys_libvirt.cli.cmd_domain": ("define", "undefine", "start", "autostart", "show", "diff",
                                    "sync", "export"),
}


_GLOBAL_VALUED = ("-c", "--connect", "--format")


def _load_commands(argv=None) -> None:
    """Import the module of the command being run, or all of them (help, completion,
    unknown words): typer converts every registered command to click on each call."""
    import importlib

    word, args = None, list(argv or [])
    while args:                 # the first word that is not a global option or its value
        a = args.pop(0)
        if a in _GLOBAL_VALUED:
            args[:1] = []
        elif not a.startswith("-"):
            word = a
            break
    wanted = [m for m, cmds in _COMMAND_MODULES.items() if word in cmds]
    for mod in wanted or _COMMAND_MODULES:
        importlib.import_module(mod)


def __getattr__(name: str):
    """``app``: the typer app of cli/root.py, for the command modules that register on it
    (built on first use, so that the stored ``--help`` needs no typer)."""
    if name == "app":
        from ctys_libvirt.cli.root import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    if sys.argv[1:] == ["--help"] and _print_stored_help():
        raise SystemExit(0)
    # list, create, enumerate: a plain command line starts without typer and click
    # (cli/plain.py says when); it exits there, anything else comes back
    from ctys_libvirt.cli.plain import start

    start(sys.argv[1:])
    _run()


def _run() -> None:
    """The command line through the typer app (everything but the stored help)."""
    from ctys_libvirt.cli.common import handle_sigterm
    from ctys_libvirt.cli.root import app

    handle_sigterm()
    _load_commands(sys.argv[1:])
    from click import exceptions as click_exc

    try:
        # standalone_mode=False: we map click's usage errors (its exit 2) to our usage code 1;
        # exit 2 is ours for "not found / ambiguous".
        rc = app(prog_name="ctys-libvirt", standalone_mode=False)
    except click_exc.UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            exc.show()              # bare `ctys-libvirt [CMD]`: the help is the message
        else:
            cmd = exc.ctx.command_path if exc.ctx is not None else "ctys-libvirt"
            msg = " ".join(exc.format_message().split())
            if _json_argv(sys.argv[1:]):
                from ctys_libvirt.cli.common import emit_json_error

                emit_json_error(msg, 1, f"see `{cmd} --help`")
            print(f"ctys-libvirt: error: {msg} (see `{cmd} --help`)", file=sys.stderr)
        raise SystemExit(1)
    except click_exc.ClickException as exc:
        exc.show()
        raise SystemExit(exc.exit_code)
    except click_exc.Abort:
        print("ctys-libvirt: aborted", file=sys.stderr)
        raise SystemExit(130)
    except SystemExit as exc:
        # click turns EPIPE while printing help into exit 1 behind a pacified stdout; a reader
        # that went away (`--help | head -1`) is no failure, as for every command's output
        if exc.code == 1 and type(sys.stdout).__name__.endswith("PacifyFlushWrapper"):
            raise SystemExit(0) from None
        raise
    raise SystemExit(rc if isinstance(rc, int) else 0)


# The CLI sources the stored help is made from: command names and first help lines, the
# global options.  cli/helptext.py records their CRC; any edit switches the stored help off
# until `python -m ctys_libvirt.cli.manpage` writes it again (tests check it is current).
HELP_SOURCES = ("app.py", "root.py") + tuple(m.rsplit(".", 1)[1] + ".py" for m in _COMMAND_MODULES)


def help_sources_crc(folder: str = os.path.dirname(os.path.abspath(__file__))) -> int:
    import zlib

    crc = 0
    for name in HELP_SOURCES:
        with open(os.path.join(folder, name), "rb") as fh:
            crc = zlib.crc32(fh.read(), crc)
    return crc


def _columns() -> int:
    """shutil.get_terminal_size().columns as click asks it (COLUMNS, the terminal of stdout,
    else 80), without importing shutil."""
    try:
        cols = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        cols = 0
    if cols <= 0:
        try:
            cols = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            cols = 0
        cols = cols or 80
    return cols


def _print_stored_help() -> bool:
    """Print the stored top-level help when it is exactly what click would print here:
    click wraps at min(columns, 80) - 2, so any terminal of 80 columns or more; not while
    completing (click's completion hook reads the environment); only while the stored text
    is current.  False: let click render it."""
    if _columns() < 80 or "_CTYS_LIBVIRT_COMPLETE" in os.environ:
        return False
    try:
        from ctys_libvirt.cli import helptext
    except ImportError:
        return False
    try:
        if help_sources_crc() != helptext.SOURCES_CRC:
            return False
    except OSError:
        return False
    try:
        sys.stdout.write(helptext.TOP_HELP)
        sys.stdout.flush()
    except BrokenPipeError:
        # a reader that went away (`--help | head -1`) is no failure (as with click's help)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return True


def _json_argv(argv) -> bool:
    """--format json anywhere on the command line (a usage error stops parsing early)."""
    for i, a in enumerate(argv):
        if a == "--":
            break
        if a in ("--format", "-f") and i + 1 < len(argv) and argv[i + 1].lower() == "json":
            return True
        if a.lower() == "--format=json":
            return True
    return False


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
