"""Helpers shared by the CLI command modules: error -> exit code mapping, output."""
from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import Any, Iterator

import typer

from ctys_libvirt.errors import CtysError

PROG = "ctys-libvirt"

# --allow-argsadd: host-reaching ARGSADD options the invoker allows (security/argsadd.py)
ALLOW_ARGSADD = typer.Option(None, "--allow-argsadd", metavar="OPT",
                             help="allow this host-reaching ARGSADD option (e.g. -chardev, exec:) for a "
                                  "trusted conf and --argsadd (repeatable; see docs/security.md)")

# -b/--base: where bare labels and machine addresses are looked up (default $HOME)
BASE = typer.Option(None, "--base", "-b", help="directory searched for labels (repeatable)")


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so every ``finally``/cleanup of the library runs (qemu-img
    killed, temporaries removed, a half-made start undone) before we exit 143."""


def _on_sigterm(signum, frame) -> None:
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_DFL)   # a second SIGTERM ends us at once
    raise Terminated()


def handle_sigterm() -> None:
    """Called once by each entry point."""
    import signal

    signal.signal(signal.SIGTERM, _on_sigterm)


def fail(message: str, code: int = 1) -> "NoReturn":  # type: ignore[name-defined]
    print(f"{PROG}: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def warn(message: str) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr)


def note(message: str) -> None:
    """Information on stderr that is not a problem (stdout stays the document)."""
    print(f"{PROG}: note: {message}", file=sys.stderr)


@contextlib.contextmanager
def errors_to_exit() -> Iterator[None]:
    """Turn our typed errors into one stderr line + documented exit code."""
    try:
        yield
    except CtysError as exc:
        fail(exc.one_line(), exc.exit_code)
    except KeyboardInterrupt as exc:
        if isinstance(exc, Terminated):
            fail("terminated (SIGTERM); nothing half-made was left behind", 143)
        fail("interrupted", 130)
    except BrokenPipeError:
        quiet_stdout()
        raise SystemExit(0)     # `| head`: the reader is gone; nothing to report
    except (SystemExit, GeneratorExit):
        raise
    except Exception as exc:    # a bug or an unforeseen OS condition: still one line
        from click import exceptions as click_exc

        if os.environ.get("CTYS_DEBUG") or isinstance(
                exc, (click_exc.ClickException, click_exc.Exit, click_exc.Abort)):
            raise               # typer.Exit and usage errors are app.py's to report
        fail(unexpected_line(exc), 4)


def unexpected_line(exc: BaseException) -> str:
    """One line for an exception nobody typed: what failed, on which file, and how to
    get the traceback for a bug report."""
    if isinstance(exc, OSError):
        what = f"{exc.filename}: {exc.strerror}" if exc.filename else (exc.strerror or str(exc))
        return f"{what} (check the path and its permissions)"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return (f"internal error: {type(exc).__name__}: {text[:300]} "
            "(please report it; CTYS_DEBUG=1 shows the traceback)")


def quiet_stdout() -> None:
    """After EPIPE: point stdout at /dev/null so the interpreter's final flush is silent."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


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
