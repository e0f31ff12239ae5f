"""`ctys-libvirt check`: output and exit codes (0 ok, 1 usage, 2 not found, 3 conf error)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.cli import run_cli
from support.confs import copy_example, small_conf

def run(*args, env=None):
    return run_cli("check", *args, env=env, timeout=60)


def test_check_json(tmp_path):
    conf = copy_example("kvmkern", tmp_path)
    r = run(conf, "--mydist", "CentOS", "--format", "json", "--set", "MEMSIZE=300",
            "--set", "QEMUKVM=/usr/bin/kvm")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    cfg = out["config"]
    assert (cfg["label"], cfg["memory_mib"], cfg["vga"], cfg["nic_model"]) == (
        "kvmkern", 300, "std", "virtio")
    assert cfg["extra_disks"] == {"hdb": str(conf.parent / "hdb.img")}
    assert cfg["source_path"] == str(conf)
    assert out["keys"]["UUID"] == "5d4c3b2a19f8e7d6c5b4a39281706f5e"
    assert out["variables"]["CTYSWRAPPERPATH"] == str(conf.parent)
    assert out["variables"]["MYDIST"] == "CentOS"
    assert out["warnings"] == []


def test_check_table_debian_host(tmp_path):
    conf = copy_example("debian5", tmp_path)
    r = run(conf.parent, "--mydist", "debian")
    assert r.returncode == 0, r.stderr
    assert "[keys]" in r.stdout and "[config]" in r.stdout and "[variables]" in r.stdout
    lines = {line.split()[0]: line.split()[1:] for line in r.stdout.splitlines()
             if line.startswith("  ") and line.split()}
    assert lines["label"] == ["debian5"]
    assert lines["vga"] == []
    assert lines["memory_mib"] == ["1024"]


def test_check_env_flag(tmp_path):
    conf = copy_example("debian5", tmp_path)
    r = run(conf, "--format", "json", env={"MEMSIZE": "99"})
    assert json.loads(r.stdout)["config"]["memory_mib"] == 1024
    r = run(conf, "--format", "json", "--env", env={"MEMSIZE": "99"})
    assert json.loads(r.stdout)["config"]["memory_mib"] == 99


@pytest.mark.parametrize("body,code,needle", [
    ("X=$(touch PWNED)\n", 3, ":5:3: unsupported shell construct: command substitution $(...)"),
    ("MEMSIZE=lots\n", 3, "MEMSIZE='lots'"),
    ("#@#MAGICID-IGNORE\n", 3, "--force"),
])
def test_check_conf_errors(tmp_path, body, code, needle):
    conf = small_conf(tmp_path, body)
    r = run(conf)
    assert r.returncode == code
    assert needle in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr
    assert r.stdout == ""
    assert not (tmp_path / "PWNED").exists() and not Path("PWNED").exists()


def test_check_force(tmp_path):
    conf = small_conf(tmp_path, "#@#MAGICID-IGNORE\n")
    assert run(conf, "--force").returncode == 0


def test_check_not_found(tmp_path):
    r = run(tmp_path / "nope" / "nope.ctys")
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


@pytest.mark.parametrize("args", [["--set", "NOEQUALS"], ["--set", "1X=2"], ["--format", "xml"]])
def test_check_usage_errors(tmp_path, args):
    conf = small_conf(tmp_path)
    r = run(conf, *args)
    assert r.returncode == 1
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
