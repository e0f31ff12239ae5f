"""Start-up (issue 12): a plain ``ctys-libvirt list`` / ``create`` command line runs without
typer and click (cli/plain.py, cli/lifecycle_run.py) and does exactly what the typer path
does: same stdout, stderr and exit code (libvirt's test driver, test:///default, stands in
for a host); anything not plain goes through typer."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ctys_libvirt.cli import lifecycle_run, plain
from support.cli import both_paths, run_path
from support.confs import disk_conf

TEST_URI = "test:///default"


@pytest.fixture
def env(tmp_path):
    e = dict(os.environ, HOME=str(tmp_path), CTYS_LIST_CACHE_DIR=str(tmp_path / "lc"),
             CTYS_DRIFT_CACHE=str(tmp_path / "drift.sqlite"))
    for k in ("_CTYS_LIBVIRT_COMPLETE", "DISPLAY", "LIBVIRT_DEFAULT_URI"):
        e.pop(k, None)
    return e


@pytest.fixture
def conf(tmp_path):
    return disk_conf(tmp_path, body='#@#UUID = "5f0c2a9e3b7d4c1a8e6f0a1b2c3d4e5f"\n')


def _typer_command(word):
    import typer.main

    from ctys_libvirt.cli import app as appmod

    appmod._load_commands()
    return typer.main.get_command(appmod.app).commands[word]


@pytest.mark.parametrize("word,options,defaults", [
    ("create", lifecycle_run.CREATE_OPTIONS, lifecycle_run.CREATE_DEFAULTS),
    ("list", lifecycle_run.LIST_OPTIONS, lifecycle_run.LIST_DEFAULTS),
])
def test_plain_options_are_declared_so(word, options, defaults):
    """Every spelling the plain parser takes is the typer command's, with the same kind,
    flag value and default; and every option of the command is in the table."""
    cmd = _typer_command(word)
    params = {}
    for p in cmd.params:
        for o in getattr(p, "opts", ()):
            params[o] = (p, True)
        for o in getattr(p, "secondary_opts", ()):
            params[o] = (p, False)
    for spelling, spec in options.items():
        p, primary = params[spelling]
        name, takes, repeat = spec[:3]
        assert p.name == name, spelling
        assert p.is_flag is (not takes), spelling
        assert bool(p.multiple) is repeat, spelling
        if not takes:
            assert (spec[3] if len(spec) > 3 else True) is primary, spelling
        if not repeat:
            assert defaults[name] == p.default, spelling
    declared = {o for o in params if o.startswith("-")} - {"--help"}
    assert declared == set(options), f"{word}: options without a plain spelling"


@pytest.mark.parametrize("args", [
    [], ["a", "b"], ["a", "--help"], ["a", "-q"], ["a", "--"], ["a", "-cURI"], ["a", "--console"],
    ["a", "--console", "-x"], ["a", "--transient=1"], ["a", "--timeout", "soon"],
    ["a", "--bogus"], ["-", "--transient"], ["a", "-g=1x1"],
])
def test_create_not_plain_goes_through_typer(args):
    assert lifecycle_run.parse_create(args) is None


@pytest.mark.parametrize("args", [["x"], ["--help"], ["-aq"], ["--all=1"], ["-c"], ["--format", "-j"]])
def test_list_not_plain_goes_through_typer(args):
    assert lifecycle_run.parse_list(args) is None


def test_plain_parse():
    kw = lifecycle_run.parse_create(["vm", "--argsadd=-no-hpet", "-c", "u", "--timeout", "5",
                                     "-b", "x", "--base=y", "--transient", "--console", "NONE"])
    assert kw is not None
    assert (kw["address"], kw["argsadd"], kw["connect"], kw["timeout"], kw["base"],
            kw["transient"], kw["console_"], kw["allow_device"], kw["reuse"]) == \
        ("vm", ["-no-hpet"], "u", 5.0, ["x", "y"], True, "NONE", None, False)
    assert lifecycle_run.parse_list(["--no-drift", "-a", "-c", "u1", "--connect=u2"]) == {
        "all_": True, "fmt": "table", "drift": False, "stacks": None, "connect": ["u1", "u2"],
        "backend": "auto"}


LIST_LINES = [  # --backend libvirt: direct VMs of other tests on this host would come and go
    ["-c", TEST_URI, "--backend", "libvirt"],
    ["--all", "-c", TEST_URI, "--format", "records", "--backend=libvirt"],
    ["-a", "--connect=" + TEST_URI, "--format", "json", "--no-drift", "--backend", "libvirt"],
    ["-c", TEST_URI, "--drift", "--format", "records", "--backend", "libvirt"],
    ["-c", TEST_URI, "-c", TEST_URI, "--backend", "libvirt"],
    ["-c", TEST_URI, "--format", "bogus"],
    ["-c", TEST_URI, "--backend", "xen"], ["-c", "bogus:///nowhere", "--format", "json"],
]


@pytest.mark.parametrize("args", LIST_LINES)
def test_list_plain_and_typer_agree(args, env):
    assert lifecycle_run.parse_list([str(a) for a in args]) is not None
    t, p = both_paths(["list"] + args, env)
    assert (p.returncode, p.stdout, p.stderr) == (t.returncode, t.stdout, t.stderr)


CREATE_LINES = [
    ["{conf}", "-c", TEST_URI, "--console", "NONE", "--transient"],
    ["{conf}", "-c", TEST_URI, "--console", "NONE", "--format", "json"],
    ["{conf}", "-c", TEST_URI, "--console", "NONE", "--argsadd", "x", "--transient"],
    ["{dir}/missing.ctys", "-c", TEST_URI, "--format", "json"],
    ["{conf}", "-c", TEST_URI, "--qemu-version", "1.0"],
    ["{conf}", "-c", TEST_URI, "--format", "yaml"],
    ["{conf}", "-c", TEST_URI, "--backend", "xen"],
    ["{conf}", "-c", TEST_URI, "--timeout=-1"],
    ["{conf}", "-c", TEST_URI, "--console", "NONE", "--argsadd=-chardev file,id=x,path=/etc/shadow"],
]


@pytest.mark.parametrize("args", CREATE_LINES)
def test_create_plain_and_typer_agree(args, env, conf):
    args = [a.format(conf=conf, dir=conf.parent) for a in args]
    assert lifecycle_run.parse_create(args) is not None
    t, p = both_paths(["create"] + args, env)
    assert (p.returncode, p.stdout, p.stderr) == (t.returncode, t.stdout, t.stderr)


def test_the_lines_compared_run_and_fail_as_documented(env, conf):
    """The comparisons above are not between two failures: a plain create and list work."""
    p = run_path("main", ["create", conf, "-c", TEST_URI, "--console", "NONE", "--transient"], env)
    assert p.returncode == 0 and p.stdout.startswith("plainvm: running (UUID 5f0c2a9e-")
    p = run_path("main", ["list", "-c", TEST_URI, "--format", "records"], env)
    assert p.returncode == 0 and ";test;" in p.stdout
    p = run_path("main", ["create", conf.parent / "missing.ctys", "-c", TEST_URI], env)
    assert p.returncode == 2 and p.stderr.startswith("ctys-libvirt: error: ")


@pytest.mark.parametrize("argv", [["list", "-c", TEST_URI], ["create", "{conf}", "-c", TEST_URI,
                                                             "--console", "NONE", "--transient"]])
def test_plain_path_imports_no_typer(argv, env, conf):
    argv = [a.format(conf=conf) for a in argv]
    # whichever way the command leaves (SystemExit: atexit; a read-only one: os._exit)
    probe = ("import atexit, os; real = os._exit\n"
             "def said(): print('typer' in sys.modules or 'click' in sys.modules, file=sys.stderr, flush=True)\n"
             "atexit.register(said); os._exit = lambda c: (said(), real(c))\n")
    p = run_path("main", argv, env, before=probe)
    assert p.returncode == 0, p.stderr
    assert p.stderr.strip().splitlines()[-1] == "False"


def test_completion_goes_through_typer(monkeypatch):
    monkeypatch.setenv("_CTYS_LIBVIRT_COMPLETE", "bash_complete")
    assert plain.plain_allowed() is False
    assert plain.start(["list", "-c", TEST_URI]) is None      # returned: typer parses it
