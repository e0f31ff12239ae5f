"""THE way to run the front ends in a test: each as a subprocess of this checkout's venv (what a
user runs), with one environment rule and one result type (``subprocess.CompletedProcess``).

Environment: the test's own, minus ``LIBVIRT_DEFAULT_URI`` (tests name their URI), updated with
``env``; a ``None`` value removes a variable.  stdin is /dev/null unless ``input`` is given."""
from __future__ import annotations

import os
import subprocess
import sys
from typing import Dict, List, Optional

import pytest

from .paths import VENV_BIN

BOGUS_URI = "qemu+unix:///system?socket=/nonexistent/libvirt-sock"

_MODULES = {"ctys-libvirt": "ctys_libvirt.cli.app", "ctys-qemu": "ctys_libvirt.cli.ctys_qemu"}


def command(prog: str = "ctys-libvirt") -> List[str]:
    """argv prefix of ``prog``: the venv's script, else this interpreter running its module."""
    p = VENV_BIN / prog
    if p.exists():
        return [str(p)]
    return [sys.executable, "-c", f"import {_MODULES[prog]} as m; m.main()"]


CLI = command("ctys-libvirt")
QEMU_CLI = command("ctys-qemu")


def child_env(env: Optional[Dict[str, Optional[str]]] = None) -> Dict[str, str]:
    e = dict(os.environ)
    e.pop("LIBVIRT_DEFAULT_URI", None)
    for k, v in (env or {}).items():
        if v is None:
            e.pop(k, None)
        else:
            e[k] = str(v)
    return e


def run(prog: str, *args, env: Optional[dict] = None, timeout: float = 120,
        input: Optional[str] = None, **kw) -> subprocess.CompletedProcess:
    """Run ``prog args...`` to the end; a hang is a test failure naming the command."""
    argv = command(prog) + [str(a) for a in args]
    if input is None:
        kw.setdefault("stdin", subprocess.DEVNULL)
    try:
        return subprocess.run(argv, capture_output=True, text=True, errors="replace",
                              env=child_env(env), timeout=timeout, input=input, **kw)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{prog} {' '.join(map(str, args))}: hung for more than {timeout}s")


def popen(prog: str, *args, env: Optional[dict] = None, **kw) -> subprocess.Popen:
    """The same command and environment as ``run``, for tests that talk to a running CLI."""
    return subprocess.Popen(command(prog) + [str(a) for a in args], env=child_env(env), **kw)


def run_cli(*args, **kw) -> subprocess.CompletedProcess:
    """``ctys-libvirt args...``"""
    return run("ctys-libvirt", *args, **kw)


def qemu(*args, **kw) -> subprocess.CompletedProcess:
    """``ctys-qemu args...``"""
    return run("ctys-qemu", *args, **kw)


def prog_of(proc: subprocess.CompletedProcess) -> str:
    """Which front end ran ``proc``: the first word of its argv that is one of the
    commands ``command`` builds (after e.g. a ``setpriv ...`` prefix)."""
    for a in map(str, proc.args):
        for prog, module in _MODULES.items():
            if os.path.basename(a) == prog or f"import {module} " in a:
                return prog
    return "ctys-libvirt"


def one_error(proc: subprocess.CompletedProcess, code: int, *needles: str,
              prog: Optional[str] = None, warnings_allowed: bool = False) -> str:
    """The documented exit code, no traceback and exactly one stderr line
    ``<prog>: error: ...`` holding every needle (with ``warnings_allowed``, warning lines
    aside); returns that line.  ``prog`` defaults to the front end that ran ``proc``."""
    prog = prog or prog_of(proc)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == code, (proc.returncode, proc.stdout[-2000:], proc.stderr)
    lines = [l for l in proc.stderr.strip().splitlines()
             if not (warnings_allowed and (not l.strip() or ": warning: " in l))]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{prog}: error: "), lines
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


assert_one_line_error = one_error


# The entry point (app.main: a plain list/create/enumerate line starts without typer) and
# the typer path itself (app._run), for the tests that hold the two to the same behaviour.
_ENTRY = {"main": "app.main()", "typer": "app._run()"}


def run_path(path: str, args, env: Dict[str, str], before: str = "") -> subprocess.CompletedProcess:
    """``ctys-libvirt args`` through ``path`` ("main" or "typer"), with exactly ``env``;
    ``before``: Python statements run just before (a test's probe)."""
    code = ("import sys; from ctys_libvirt.cli import app; "
            f"sys.argv = ['ctys-libvirt'] + sys.argv[1:]; {before}{_ENTRY[path]}")
    return subprocess.run([sys.executable, "-c", code] + [str(a) for a in args],
                          capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL,
                          timeout=60)


def both_paths(args, env: Dict[str, str]):
    """(typer path, entry point) results of the same command line."""
    return run_path("typer", args, env), run_path("main", args, env)
