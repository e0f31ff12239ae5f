"""The typer-free start of the commands an estate runs most (``list``, ``create``,
``enumerate``).  typer and click cost ~35 ms to import and a few more to build the command,
a fifth of a ``create`` and more of a ``list``; a *plain* command line does not need them.

Plain means: the command word first, then only options spelled exactly as the command
declares them (``--opt VALUE``, ``--opt=VALUE`` for long options, flags without a value) and
the positional arguments it takes.  Anything else (a global option, a short option glued
to its value, a separate value starting with ``-``, ``--``, ``--help``, completion, a value
click would have to convert and refuse) is not plain: ``parse`` returns None and typer
parses the line as always, with its own errors.  Each command's body runs the same either
way; the typer declarations stay the documentation (``--help``, man pages, completion).
tests/unit/cli/test_plain_start.py compares both ways and the option tables with typer's."""
from __future__ import annotations

import os
from typing import Callable, Dict, List, Mapping, Optional, Tuple

# command word -> (its module, the parser of a plain line there -- None: not plain --, the
# command's body, whether to leave with os._exit once the output is flushed)
COMMANDS = {
    "enumerate": ("ctys_libvirt.cli.enum_run", "parse_plain", "run", True),
    "list": ("ctys_libvirt.cli.lifecycle_run", "parse_list", "list_", True),
    "create": ("ctys_libvirt.cli.lifecycle_run", "parse_create", "create", False),
}


def start(argv: List[str]) -> None:
    """Run ``argv`` (without the program name) typer-free when its command has a plain
    start and the line is plain (then this exits); return when typer must parse it."""
    spec = COMMANDS.get(argv[0]) if argv else None
    if spec is None or not plain_allowed():
        return
    import importlib

    mod = importlib.import_module(spec[0])
    kw = getattr(mod, spec[1])(argv[1:])
    if kw is not None:
        run_plain(getattr(mod, spec[2]), kw, kw.get("fmt"), fast_exit=spec[3])    # type: ignore[arg-type]


# spelling -> (parameter, takes a value, repeatable[, value of the flag]); a flag without a
# fourth element sets True
Options = Mapping[str, tuple]


def parse(args: List[str], options: Options, defaults: Mapping[str, object], *,
          positional: Optional[Tuple[str, bool, bool]] = None,
          convert: Mapping[str, Callable[[str], object]] = {}) -> Optional[Dict[str, object]]:
    """Keyword arguments of the command's body for ``args`` (the words after the command),
    or None when the line is not plain.  ``positional``: (parameter, required, many); None:
    the command takes none.  ``convert``: parameter -> conversion of its value (a ValueError
    makes the line not plain: click reports the value)."""
    kw: Dict[str, object] = dict(defaults)
    repeat_params = {spec[0] for spec in options.values() if spec[2]}
    for p in repeat_params:
        kw[p] = []
    pos: List[str] = []
    i, n = 0, len(args)
    while i < n:
        a = args[i]
        i += 1
        if not a.startswith("-") or a == "-":
            if a == "-":
                return None
            pos.append(a)
            continue
        name, eq, value = a.partition("=")
        spec = options.get(name)
        if spec is None or (eq and (not name.startswith("--") or not spec[1])):
            return None
        param, takes, repeat = spec[0], spec[1], spec[2]
        if not takes:
            kw[param] = spec[3] if len(spec) > 3 else True
            continue
        if not eq:
            if i >= n:
                return None                 # click says what is missing
            value = args[i]
            i += 1
            if value.startswith("-"):
                return None                 # click's reading of it is click's to say
        if param in convert:
            try:
                value = convert[param](value)   # type: ignore[assignment]
            except ValueError:
                return None
        if repeat:
            kw[param].append(value)         # type: ignore[attr-defined]
        else:
            kw[param] = value
    if positional is None:
        if pos:
            return None
    else:
        pname, required, many = positional
        if (required and not pos) or (not many and len(pos) > 1):
            return None
        kw[pname] = (pos or None) if many else (pos[0] if pos else None)
    for p in repeat_params:
        kw[p] = kw[p] or None               # as typer passes an option never given
    return kw


def plain_allowed() -> bool:
    """Not while the shell asks for completions (click's hook reads the environment)."""
    return "_CTYS_LIBVIRT_COMPLETE" not in os.environ


def run_plain(body: Callable[..., None], kw: Dict[str, object], fmt: Optional[str], *,
              fast_exit: bool = False) -> None:
    """Run a command's body as the typer path would after parsing: SIGTERM handled, JSON
    errors when --format json; exits like ``app._run`` (0 when the body returns).
    ``fast_exit``: a read-only command leaves with ``os._exit`` once its output is flushed,
    without the interpreter's teardown freeing every object one by one (~8 ms after a
    10,000-VM scan); nothing on these paths registers work for the exit."""
    import sys

    from ctys_libvirt.cli.common import GLOBAL, handle_sigterm

    handle_sigterm()
    GLOBAL.fmt = fmt                # what the context would tell errors_to_exit
    try:
        body(**kw)
    except KeyboardInterrupt:       # outside the body's own handling: click's Abort
        print(file=sys.stderr)
        print("ctys-libvirt: aborted", file=sys.stderr)
        raise SystemExit(130)
    if fast_exit:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:
            raise SystemExit(0)     # a failing flush ends the usual way, which reports it
        os._exit(0)
    raise SystemExit(0)
