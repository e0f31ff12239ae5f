"""Start-up (issue 12): plain ``ctys-libvirt --help`` is printed from the text the man page
generator stored (cli/helptext.py) without importing typer or click, and that text is
byte for byte what click prints; everything else goes through the typer app."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ctys_libvirt.cli import app as appmod
from ctys_libvirt.cli import helptext, manpage
from support.confs import disk_conf

REPO = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())
EXE = REPO / ".venv" / "bin" / "ctys-libvirt"


def run(args, columns=None, **kw):
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    if columns is not None:
        env["COLUMNS"] = str(columns)
    cmd = [str(EXE)] if EXE.exists() else [sys.executable, "-m", "ctys_libvirt.cli.app"]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, env=env,
                          stdin=subprocess.DEVNULL, timeout=60, **kw)


def test_stored_help_is_current():
    assert manpage.HELPTEXT.read_text() == manpage.helptext_module(), (
        "cli/helptext.py is stale: run `.venv/bin/python -m ctys_libvirt.cli.manpage` and commit it")
    assert helptext.SOURCES_CRC == appmod.help_sources_crc()


@pytest.mark.parametrize("columns", [None, 80, 200])
def test_help_is_what_click_prints(columns):
    p = run(["--help"], columns)
    assert p.returncode == 0 and p.stderr == ""
    assert p.stdout == helptext.TOP_HELP == manpage.click_top_help(columns or 80)
    assert "\nCommands:\n" in p.stdout and "  enumerate  " in p.stdout
    assert helptext.TOP_HELP.isascii()


def test_narrow_terminal_gets_clicks_wrapping():
    p = run(["--help"], 60)
    assert p.returncode == 0
    assert p.stdout == manpage.click_top_help(60) != helptext.TOP_HELP


def test_stored_help_needs_no_typer():
    code = ("import sys; sys.argv[1:] = ['--help']\n"
            "from ctys_libvirt.cli import app\n"
            "try:\n    app.main()\nexcept SystemExit as e:\n    rc = e.code\n"
            "print(rc, sorted(m for m in sys.modules if m.split('.')[0] in ('typer', 'click', 'libvirt')),"
            " file=sys.stderr)")
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       stdin=subprocess.DEVNULL, timeout=60)
    assert p.stderr.strip() == "0 []"
    assert p.stdout == helptext.TOP_HELP


def test_stale_or_completing_falls_back_to_click(monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.setattr(helptext, "SOURCES_CRC", helptext.SOURCES_CRC ^ 1)
    assert appmod._print_stored_help() is False
    monkeypatch.undo()
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.setenv("_CTYS_LIBVIRT_COMPLETE", "bash_complete")
    assert appmod._print_stored_help() is False
    monkeypatch.setenv("COLUMNS", "79")
    monkeypatch.delenv("_CTYS_LIBVIRT_COMPLETE")
    assert appmod._print_stored_help() is False


def test_help_into_a_closed_pipe_is_no_failure():
    r, w = os.pipe()
    os.close(r)
    try:
        cmd = [str(EXE)] if EXE.exists() else [sys.executable, "-m", "ctys_libvirt.cli.app"]
        p = subprocess.run(cmd + ["--help"], stdout=w, stderr=subprocess.PIPE, text=True,
                           stdin=subprocess.DEVNULL, timeout=60)
    finally:
        os.close(w)
    assert p.returncode == 0 and p.stderr == ""


def test_python_dash_m_runs_the_commands():
    """``python -m ctys_libvirt.cli.app`` (the fallback of the test helpers) knows every
    command: its commands register on the one app of cli/root.py."""
    p = subprocess.run([sys.executable, "-m", "ctys_libvirt.cli.app", "enumerate", "--help"],
                       capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert p.returncode == 0 and "--no-cache" in p.stdout


def test_other_first_words_go_through_typer():
    assert run(["--version"]).stdout.startswith("ctys-libvirt ")
    p = run(["--help", "--version"])
    assert p.returncode == 0 and p.stdout == helptext.TOP_HELP   # click: --help is eager too
    p = run(["-h"])
    assert p.returncode == 1 and "No such option" in p.stderr


# Modules a plain VM never needs: the ARGSADD policy tables and converter, the QEMU probe,
# the window clients, the ctys target grammar, json.
LAZY = ("ctys_libvirt.security.argsadd", "ctys_libvirt.translate.legacy_args",
        "ctys_libvirt.qemu.probe", "ctys_libvirt.backends.console_client",
        "ctys_libvirt.ctys.targets", "json")


def _loaded_by_xml(conf, *extra):
    code = ("import sys; sys.argv[1:] = sys.argv[1:]\n"
            "from ctys_libvirt.cli import app\n"
            "try:\n    app.main()\nexcept SystemExit as e:\n    rc = e.code\n"
            f"print(rc, [m for m in {LAZY!r} if m in sys.modules], file=sys.stderr)")
    p = subprocess.run([sys.executable, "-c", code, "xml", str(conf), "--console", "NONE", *extra],
                       capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    return p.stdout, p.stderr.strip().splitlines()[-1]


def test_a_plain_vm_loads_only_what_it_needs(tmp_path):
    """Issue 12, start-up: `xml`/`create` of a VM without ARGSADD words import none of LAZY;
    with words, the policy still judges them (the lazy path is not a way around it)."""
    conf = disk_conf(tmp_path)
    out, loaded = _loaded_by_xml(conf)
    assert "<name>plainvm</name>" in out
    assert loaded == "0 []"
    # a guest-only word loads the policy and the converter ...
    out, loaded = _loaded_by_xml(conf, "--argsadd", "-no-hpet")
    assert loaded.startswith("0 ") and "ctys_libvirt.security.argsadd" in loaded
    assert "ctys_libvirt.translate.legacy_args" in loaded
    # ... and a host-reaching one is still refused
    out, loaded = _loaded_by_xml(conf, "--argsadd", "-chardev file,id=x,path=/etc/shadow")
    assert out == "" and loaded.startswith("1 ")
