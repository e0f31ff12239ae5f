"""Start-up (issue 12): a plain ``ctys-libvirt enumerate`` runs without typer and click
(cli/enum_run.py), and does exactly what the typer path does: same stdout, stderr and exit
code for the same command line; anything not plain goes through typer."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ctys_libvirt.cli import enum_run
from support.cli import both_paths, run_path

REPO = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())
EXAMPLES = REPO / "examples"



@pytest.fixture
def env(tmp_path):
    e = dict(os.environ, HOME=str(tmp_path), CTYS_SCAN_CACHE_DIR=str(tmp_path / "cache"))
    e.pop("_CTYS_LIBVIRT_COMPLETE", None)
    return e


def test_plain_options_are_declared_so(monkeypatch):
    """Every spelling the plain parser takes is the typer command's, with the same kind."""
    import typer.main

    from ctys_libvirt.cli import app as appmod

    appmod._load_commands()     # every command module, in the order the man pages have them
    app = appmod.app
    group = typer.main.get_command(app)
    cmd = group.commands["enumerate"]
    params = {o: p for p in cmd.params for o in getattr(p, "opts", ())}
    for spelling, (name, takes, repeat) in enum_run.PLAIN_OPTIONS.items():
        p = params[spelling]
        assert p.name == name, spelling
        assert p.is_flag is (not takes), spelling
        assert bool(p.multiple) is repeat, spelling
    # defaults: what parse_plain starts from
    got = enum_run.parse_plain([])
    for p in cmd.params:
        if p.name in got and p.name != "paths":
            assert got[p.name] == (p.default if not p.multiple else None) or \
                (got[p.name] is None and not p.default), p.name


@pytest.mark.parametrize("args", [
    ["--help"], ["-q"], ["--"], ["-bX"], ["--format"], ["--format", "-x"], ["--no-cache=1"],
    ["--host", "h"], ["-c", "qemu:///system"], ["-f", "json"], ["--update-db"], ["--from-db"],
    ["-b"], ["--bogus"], ["-"], ["x", "--db", "y"],
])
def test_not_plain_goes_through_typer(args):
    assert enum_run.parse_plain(args) is None


def test_plain_parse():
    assert enum_run.parse_plain(["a", "--format=json", "-b", "b", "--base=c", "--no-cache",
                                 "--matchvstat", "ALL", "--format", "records", "d"]) == {
        "paths": ["a", "d"], "fmt": "records", "no_cache": True, "all_states": False,
        "full": False, "title": False, "matchvstat": "ALL", "base": ["b", "c"]}


@pytest.mark.parametrize("args", [
    [EXAMPLES, "--format", "records", "--no-cache"],
    [EXAMPLES, "--format=records", "--title", "--all-states"],
    [EXAMPLES],
    ["--format", "json", "-b", EXAMPLES, "--full"],
    [EXAMPLES, "--format", "RECORDS", "--matchvstat", "DISABLED%EMPTY"],
    [EXAMPLES / "nonexistent"],
    [EXAMPLES / "nonexistent", "--format", "json"],
    [EXAMPLES, "--format", "bogus"],
    [EXAMPLES, "--format", "json", "--format", "table"],
])
def test_plain_and_typer_agree(args, env):
    argv = ["enumerate"] + args
    assert enum_run.parse_plain([str(a) for a in args]) is not None
    typer_run, plain = both_paths(argv, env)
    assert (plain.returncode, plain.stdout, plain.stderr) == \
        (typer_run.returncode, typer_run.stdout, typer_run.stderr)


def test_plain_path_imports_no_typer(env):
    # (the plain path ends with os._exit, after flushing: no atexit hook runs)
    p = run_path("main", ["enumerate", EXAMPLES, "--format", "records", "--no-cache"], env,
                 before="import os; real = os._exit; os._exit = lambda c: (print("
                        "'typer' in sys.modules or 'click' in sys.modules, file=sys.stderr, "
                        "flush=True), real(c)); ")
    assert p.returncode == 0 and p.stdout and p.stderr.strip().splitlines()[-1] == "False"
