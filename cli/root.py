"""The typer app of ``ctys-libvirt`` and its root callback (the global options).  Command
modules register their commands on ``app`` when imported (cli/app.py picks which)."""
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
