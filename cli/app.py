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
_COMMAND_MODULES = (
    "ctys_libvirt.cli.cmd_check",      # check
    "ctys_libvirt.cli.cmd_xml",        # xml
    "ctys_libvirt.cli.cmd_lifecycle",  # create, cancel, list, info, console
    "ctys_libvirt.cli.cmd_direct",     # argv, doctor
    "ctys_libvirt.cli.cmd_inventory",  # enumerate
)


def _load_commands() -> None:
    import importlib

    for mod in _COMMAND_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:  # module not written yet
            if exc.name != mod:
                raise


def main() -> None:
    _load_commands()
    app(prog_name="ctys-libvirt")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
