"""The test helpers' own contract (tests/support/cli.py): one environment rule and one
error check for both front ends."""
from __future__ import annotations

import pytest

from ctys_libvirt import __version__
from support import cli


def test_child_env_drops_the_default_uri_adds_and_unsets(monkeypatch):
    monkeypatch.setenv("LIBVIRT_DEFAULT_URI", "test:///default")
    monkeypatch.setenv("CTYS_INVENTORY_DB", "/somewhere/inv.sqlite")
    e = cli.child_env({"CTYS_INVENTORY_DB": None, "COLUMNS": 200})
    assert "LIBVIRT_DEFAULT_URI" not in e and "CTYS_INVENTORY_DB" not in e
    assert e["COLUMNS"] == "200" and e["PATH"]


def test_run_both_front_ends_and_their_one_line_errors(env):
    v = cli.run_cli("--version", env=env)
    assert v.returncode == 0 and __version__ in v.stdout
    line = cli.one_error(cli.run_cli("nosuchcommand", env=env), 1, "nosuchcommand")
    assert line.startswith("ctys-libvirt: error: ")
    line = cli.one_error(cli.qemu("-a", "BOGUS", env=env), 1, "unknown action 'BOGUS'")
    assert line.startswith("ctys-qemu: error: ")      # the program is told by the argv


def test_one_error_fails_on_the_wrong_code_or_program(env):
    p = cli.run_cli("nosuchcommand", env=env)
    with pytest.raises(AssertionError):
        cli.one_error(p, 2)
    with pytest.raises(AssertionError):
        cli.one_error(p, 1, prog="ctys-qemu")
    with pytest.raises(AssertionError):
        cli.one_error(p, 1, "a needle that is not there")
