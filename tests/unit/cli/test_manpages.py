"""The man pages are generated from the CLI definitions; the committed copies under man/
(installed as share/man/man1 data files) must be exactly what the generator prints now."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from support.golden import unified_diff
from support.paths import REPO

from ctys_libvirt.cli import manpage

MAN = REPO / "man"


@pytest.mark.parametrize("name", sorted(manpage.PAGES))
def test_committed_man_page_is_up_to_date(name):
    want, got = (MAN / name).read_text(), manpage.PAGES[name]()
    assert got == want, (
        f"man/{name} is stale: run `.venv/bin/python -m ctys_libvirt.cli.manpage` and commit man/\n"
        + unified_diff(want, got, f"man/{name}"))


def test_every_command_and_option_is_in_the_ctys_libvirt_page():
    import click
    import typer.main

    from ctys_libvirt.cli import app as appmod

    appmod._load_commands([])
    group = typer.main.get_command(appmod.app)
    text = (MAN / "ctys-libvirt.1").read_text()
    ctx = click.Context(group, info_name="ctys-libvirt")
    cmds = group.list_commands(ctx)
    assert {"create", "cancel", "list", "enumerate"} <= set(cmds)
    for name in cmds:
        assert f'.SS "{manpage.esc(name)}"' in text, name
        cmd = group.get_command(ctx, name)
        for p in cmd.params:
            if p.param_type_name == "option" and not p.hidden:
                assert manpage.esc(p.opts[0]) in text, (name, p.opts)
    for opt in ("--connect", "--verbose", "--quiet", "--debug", "--version"):
        assert manpage.esc(opt) in text


def test_qemu_page_lists_the_parser_options():
    from ctys_libvirt.cli.ctys_qemu import build_parser

    text = (MAN / "ctys-qemu.1").read_text()
    for a in build_parser()._actions:
        if a.option_strings and a.help != "==SUPPRESS==":
            assert manpage.esc(a.option_strings[0]) in text, a.option_strings


@pytest.mark.skipif(shutil.which("man") is None, reason="man-db not installed")
@pytest.mark.parametrize("name", sorted(manpage.PAGES))
def test_man_renders_the_page_without_warnings(name):
    p = subprocess.run(["man", "--warnings", "-l", str(MAN / name)], capture_output=True, text=True,
                       env={"MANWIDTH": "80", "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}, timeout=60)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    first = name.split(".")[0].upper()
    assert re.match(rf"{re.escape(first)}\(1\)", p.stdout), p.stdout[:200]
    assert "EXIT STATUS" in p.stdout
