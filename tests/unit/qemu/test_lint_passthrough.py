"""ARGSADD lint in the libvirt path: warnings by default, errors with --strict, judged
against the emulator libvirt will run (real binary here, reported version for remote hosts)."""

import pytest
from support.cli import run_cli
from support.translate import example_tree, make_vm

from ctys_libvirt.errors import UsageError
from ctys_libvirt.model import BootRequest
from ctys_libvirt.qemu.lint import lint_passthrough
from ctys_libvirt.host.facts import host_facts
from ctys_libvirt.translate.plan import resolve_plan

QEMU = "/usr/bin/qemu-system-x86_64"


def _plan(tmp_path, argsadd):
    vm = make_vm(tmp_path, "lintvm")
    return resolve_plan(vm, BootRequest(argsadd=(argsadd,)), host_facts())


def test_removed_option_warns_against_real_binary(tmp_path):
    msgs = lint_passthrough(_plan(tmp_path, "-soundhw all -no-hpet"), emulator=QEMU)
    assert len(msgs) == 1
    assert msgs[0].startswith("ARGSADD -soundhw: removed in QEMU 7.1.0")


def test_strict_raises_usage_error(tmp_path):
    with pytest.raises(UsageError, match="-soundhw"):
        lint_passthrough(_plan(tmp_path, "-soundhw all"), emulator=QEMU, strict=True)


def test_remote_host_uses_reported_version(tmp_path):
    # no such binary here: judged by the version libvirt reports (0.12.5 still had -soundhw)
    plan = _plan(tmp_path, "-soundhw all")
    assert lint_passthrough(plan, emulator="/nonexistent/qemu", version="0.12.5") == []
    assert lint_passthrough(plan, emulator="/nonexistent/qemu", version="8.0.0")


def test_nothing_to_lint(tmp_path):
    assert lint_passthrough(_plan(tmp_path, ""), emulator=QEMU, strict=True) == []


def test_xml_cli_strict_exit_code(shared_dir, tmp_path):
    tree = example_tree(shared_dir, tmp_path)
    env = {"COLUMNS": "200"}
    base = ["xml", str(tree["kvmkern"]), "--argsadd", "-soundhw gus"]   # gus: no libvirt model, passed through
    r = run_cli(*base, env=env, timeout=60)
    assert r.returncode == 0 and "warning: ARGSADD -soundhw: removed" in r.stderr
    r = run_cli(*base, "--strict", env=env, timeout=60)
    assert r.returncode == 1 and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and "error: ARGSADD -soundhw" in r.stderr
