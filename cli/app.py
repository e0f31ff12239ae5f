"""``ctys-libvirt``: one typer app; each command group lives in its own module and is
imported lazily so that ``--help`` stays fast (no libvirt import at start-up)."""
from __future__ import annotations

import os
import sys

# Plain (click-style) help: rich's markdown renderer alone costs ~50 ms of start-up,
# more than importing libvirt; scripts parse our output anyway.
os.environ.setdefault("TYPER_USE_RICH", "0")

import typer  # noqa: E402

app = typer.Typer(
    name="ctys-libvirt",
    help="Run ctys QEMU conf-file VMs through libvirt (or QEMU directly).",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
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


def _load_commands(argv=None) -> None:
    """Import the module of the command being run, or all of them (help, completion,
    unknown words): typer converts every registered command to click on each call."""
    import importlib

    word = next((a for a in (argv or []) if not a.startswith("-")), None)
    wanted = [m for m, cmds in _COMMAND_MODULES.items() if word in cmds]
    for mod in wanted or _COMMAND_MODULES:
        importlib.import_module(mod)


@app.callback()
def _root() -> None:
    """Run ctys QEMU conf-file VMs through libvirt (or QEMU directly)."""
    # A callback keeps `app` a command group even when only one command module is loaded.


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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
