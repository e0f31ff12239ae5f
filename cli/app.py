"""``ctys-libvirt``: one typer app; each command group lives in its own module and is
imported lazily so that ``--help`` stays fast (no libvirt import at start-up)."""
from __future__ import annotations

import os
import sys
from typing import Optional

# Plain (click-style) help: rich's markdown renderer alone costs ~50 ms of start-up,
# more than importing libvirt; scripts parse our output anyway.
os.environ.setdefault("TYPER_USE_RICH", "0")

import typer  # noqa: E402
import typer.main  # noqa: E402

# typer inspects every command function twice per run (for its converters and for its
# callback), resolving the annotations each time: ~1.5 ms per call on every start.  The
# result depends only on the function, so remember it (typer is pinned below 0.25).
if not hasattr(typer.main.get_params_from_function, "cache_info"):
    import functools

    typer.main.get_params_from_function = functools.lru_cache(maxsize=None)(
        typer.main.get_params_from_function)

from ctys_libvirt.cli import complete as C  # noqa: E402

app = typer.Typer(
    name="ctys-libvirt",
    help="Run ctys QEMU conf-file VMs through libvirt (or QEMU directly).",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    # click itself suggests close command names; typer's own suggestion repeated it
    suggest_commands=False,
)

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


def _version(value: bool) -> None:
    if value:
        from ctys_libvirt import __version__

        print(f"ctys-libvirt {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    connect: Optional[str] = typer.Option(
        None, "--connect", "-c", metavar="URI", shell_complete=C.uri,
        help="libvirt URI for every command (as virsh -c; a command's own -c wins)"),
    fmt: Optional[str] = typer.Option(
        None, "--format", metavar="FORMAT", shell_complete=C.values(*C.FORMATS),
        help="default --format of the command (table, records, json, ... where it applies)"),
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, show_default=False,
                                help="log what is done to stderr (-vv: more)"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no warnings or progress on stderr "
                               "(errors still are)"),
    debug: bool = typer.Option(False, "--debug", help="debug logging; failures show the traceback "
                               "(same as CTYS_DEBUG=1)"),
    version: bool = typer.Option(False, "--version", is_eager=True, callback=_version,
                                 help="print the version and exit"),
) -> None:
    """Run ctys QEMU conf-file VMs through libvirt (or QEMU directly)."""
    # A callback keeps `app` a command group even when only one command module is loaded.
    from ctys_libvirt.cli.common import GLOBAL

    GLOBAL.verbose, GLOBAL.quiet, GLOBAL.debug, GLOBAL.fmt = verbose, quiet, debug, fmt
    if verbose or debug:
        import logging

        logging.basicConfig(stream=sys.stderr, format="ctys-libvirt: %(levelname)s: %(message)s",
                            level=logging.DEBUG if debug or verbose > 1 else logging.INFO)
    # Global -c/--format become the subcommands' defaults (click's default_map): every
    # command with a `connect`/`fmt` parameter takes them, its own option still wins.
    given = {k: v for k, v in (("connect", connect), ("fmt", fmt)) if v is not None}
    if given:
        defaults = {}
        for name, cmd in getattr(ctx.command, "commands", {}).items():
            params = {p.name: p for p in cmd.params}
            picked = {k: [v] if getattr(params[k], "multiple", False) else v
                      for k, v in given.items() if k in params}
            if picked:
                defaults[name] = picked
        ctx.default_map = {**(ctx.default_map or {}), **defaults}


def main() -> None:
    from ctys_libvirt.cli.common import handle_sigterm

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
