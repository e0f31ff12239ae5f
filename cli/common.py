"""Helpers shared by the CLI command modules: error -> exit code mapping, output."""
from __future__ import annotations

import contextlib
import json
import sys
from typing import Any, Iterator

import typer

from ctys_libvirt.errors import CtysError

PROG = "ctys-libvirt"

# -b/--base: where bare labels and machine addresses are looked up (default $HOME)
BASE = typer.Option(None, "--base", "-b", help="directory searched for labels (repeatable)")


def fail(message: str, code: int = 1) -> "NoReturn":  # type: ignore[name-defined]
    print(f"{PROG}: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def warn(message: str) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr)


@contextlib.contextmanager
def errors_to_exit() -> Iterator[None]:
    """Turn our typed errors into one stderr line + documented exit code."""
    try:
        yield
    except CtysError as exc:
        fail(exc.one_line(), exc.exit_code)
    except KeyboardInterrupt:
        fail("interrupted", 130)


def emit_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True, default=str))


def resolve_conf(address: str, bases=()):
    """ADDRESS (conf path, VM dir, label, or a ctys machine address) -> conf path.

    Delegates to the inventory's resolver, which knows every address form."""
    import os
    from pathlib import Path

    direct = os.path.expanduser(address)
    if os.path.isfile(direct):  # the common case needs no inventory (saves ~10 ms of imports)
        return Path(os.path.abspath(direct))
    from ctys_libvirt.inventory.address import resolve_conf_path

    notes: list = []
    path = resolve_conf_path(address, bases, warnings=notes)
    for note in notes:  # e.g. a corrupt inventory DB set aside and rebuilt
        warn(note)
    return path
