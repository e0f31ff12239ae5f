"""Helpers shared by the CLI command modules: global options, error -> exit code
mapping, warnings and output."""
from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, Iterator, Optional

from ctys_libvirt.errors import CtysError

PROG = "ctys-libvirt"


def __getattr__(name: str):
    """The shared typer options, made on first use: this module is also the error and
    output helper of the typer-free ``enumerate`` (cli/enum_run.py), which must not
    import typer (~25 ms)."""
    if name not in ("ALLOW_ARGSADD", "BASE"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import typer

    if name == "ALLOW_ARGSADD":
        # --allow-argsadd: host-reaching ARGSADD options the invoker allows (security/argsadd.py)
        opt = typer.Option(None, "--allow-argsadd", metavar="OPT",
                           help="allow this host-reaching ARGSADD option (e.g. -chardev, exec:) for a "
                                "trusted conf and --argsadd (repeatable; see docs/security.md)")
    elif name == "BASE":
        # -b/--base: where bare labels and machine addresses are looked up (default $HOME)
        opt = typer.Option(None, "--base", "-b", help="directory searched for labels (repeatable)")
    globals()[name] = opt           # one object, as a module constant would be
    return opt


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


class GlobalOptions:
    """What the options before the subcommand set for the whole run (virsh style).  (A
    plain class: ``dataclasses`` imports ``inspect``, ~8 ms of a typer-free start.)"""

    def __init__(self, verbose: int = 0, quiet: bool = False, debug: bool = False,
                 fmt: Optional[str] = None) -> None:
        self.verbose = verbose
        self.quiet = quiet
        self.debug = debug
        self.fmt = fmt              # global --format, for JSON errors before a command parsed it


GLOBAL = GlobalOptions()


def debug_enabled() -> bool:
    # CTYS_DEBUG=1 is the older spelling of --debug; both keep working
    return GLOBAL.debug or bool(os.environ.get("CTYS_DEBUG"))


def fail(message: str, code: int = 1, json_error: Optional[dict] = None) -> "NoReturn":  # type: ignore[name-defined]
    if _json_wanted():
        emit_json_error(**(json_error or {"message": message, "code": code}))
    print(f"{PROG}: error: {message}", file=sys.stderr)
    raise SystemExit(code)


_warned: set = set()


def warn(message: str) -> None:
    """One stderr line per distinct warning in this run; -q/--quiet silences them."""
    if GLOBAL.quiet or message in _warned:
        return
    _warned.add(message)
    print(f"{PROG}: warning: {message}", file=sys.stderr)


def note(message: str) -> None:
    """Information on stderr that is not a problem (stdout stays the document); -q/--quiet
    silences it."""
    if not GLOBAL.quiet:
        print(f"{PROG}: note: {message}", file=sys.stderr)


@contextlib.contextmanager
def errors_to_exit() -> Iterator[None]:
    """Turn our typed errors into one stderr line + documented exit code."""
    try:
        yield
    except CtysError as exc:
        _traceback_if_debug()
        fail(exc.one_line(), exc.exit_code,
             {"message": " ".join(exc.message.split()), "code": exc.exit_code, "hint": exc.hint})
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

        if isinstance(exc, (click_exc.ClickException, click_exc.Exit, click_exc.Abort)):
            raise               # typer.Exit and usage errors are app.py's to report
        if debug_enabled():
            raise
        fail(unexpected_line(exc), 4)


def _traceback_if_debug() -> None:
    if debug_enabled():
        import traceback

        traceback.print_exc(file=sys.stderr)


def unexpected_line(exc: BaseException) -> str:
    """One line for an exception nobody typed: what failed, on which file, and how to
    get the traceback for a bug report."""
    if isinstance(exc, OSError):
        what = f"{exc.filename}: {exc.strerror}" if exc.filename else (exc.strerror or str(exc))
        return f"{what} (check the path and its permissions)"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return (f"internal error: {type(exc).__name__}: {text[:300]} "
            "(please report it; --debug shows the traceback)")


def quiet_stdout() -> None:
    """After EPIPE: point stdout at /dev/null so the interpreter's final flush is silent."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def emit_json(obj: Any) -> None:
    import json     # only JSON output needs it (start-up of every other command)

    print(json.dumps(obj, indent=2, sort_keys=True, default=str))


# exit code -> the error kind named in JSON errors (docs/json.md, schema/error.json)
ERROR_KINDS = {1: "usage", 2: "not_found", 3: "conf", 4: "backend", 5: "timeout", 6: "conflict",
               130: "interrupted", 143: "terminated"}


def _json_wanted() -> bool:
    """--format json given to the running command (or globally): errors become JSON too."""
    fmt = GLOBAL.fmt
    click = sys.modules.get("click")    # not loaded: a typer-free start, no context to ask
    if click is not None:
        ctx = click.get_current_context(silent=True)
        if ctx is not None and isinstance(ctx.params.get("fmt"), str):
            fmt = ctx.params["fmt"]
    return (fmt or "").lower() == "json"


def emit_json_error(message: str, code: int, hint: Optional[str] = None) -> None:
    """The error as one JSON object on stdout, so a script reading --format json always
    reads JSON; the human line still goes to stderr and the exit code is unchanged."""
    import json

    obj = {"error": {"code": code, "kind": ERROR_KINDS.get(code, "backend"),
                     "message": message, "hint": hint}}
    try:
        import json

        print(json.dumps(obj, sort_keys=True))
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        quiet_stdout()


def resolve_conf(address: str, bases=()):
    """ADDRESS (conf path, VM dir, label, or a ctys machine address) -> conf path, by the
    lifecycle layer's one rule; its notes (a corrupt inventory DB set aside) are warnings."""
    from ctys_libvirt.lifecycle import resolve_conf as resolve

    return resolve(address, bases, warn=warn)
