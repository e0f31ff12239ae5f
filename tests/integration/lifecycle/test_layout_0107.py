"""The ctys 01.07 layout: an activated ``<stem>.conf`` next to a bash ``<stem>.ctys`` wrapper
that keeps ``#@#MAGICID-IGNORE``.  Each file is judged on its own flags, as ctys did: the
.conf is listed by enumerate (plain and cached walks), translated by xml and started by
create, whether addressed by its path, its VM directory, the wrapper's path or its label;
the wrapper is never read as a conf and never executed (it would leave a marker file)."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from lxml import etree

from support.cli import run_cli
from support.domains import unique_label
from support.guests import wait_marker
from support.paths import LEGACY

FIXTURE = LEGACY / "layout0107" / "tst0107"
MD = "{https://ctys-libvirt.invalid/xmlns/domain/1}"


def layout(root: Path, media, label: str = "tst0107") -> Path:
    """The fixture copied under ``root/<label>`` (stem and LABEL renamed to ``label``)."""
    d = root / label
    d.mkdir(parents=True)
    for src in FIXTURE.iterdir():
        text = src.read_text().replace("tst0107", label)
        dst = d / src.name.replace("tst0107", label)
        dst.write_text(text)
        dst.chmod(src.stat().st_mode & 0o777)
    shutil.copyfile(media["hello"], d / "hda.img")
    (d / "hda.img").chmod(0o644)
    return d


def digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def conf_path_of(xml: str) -> str:
    return etree.fromstring(xml.encode()).find(f"metadata/{MD}instance/{MD}conf").get("path")


def test_enumerate_lists_the_conf_not_the_wrapper(vmroot, media):
    d = layout(vmroot, media)
    for extra in ([], ["--no-cache"], []):          # plain walk, then the cached walk twice
        r = run_cli("enumerate", str(vmroot), "--format", "json", *extra)
        assert r.returncode == 0, r.stderr
        recs = json.loads(r.stdout)
        assert [(x["label"], x["id"]) for x in recs] == [("tst0107", str(d / "tst0107.conf"))], recs
        assert "Redundancy" not in r.stderr
    assert not (d / "EXECUTED-MARKER").exists()


def test_xml_by_conf_dir_wrapper_and_label(vmroot, media):
    d = layout(vmroot, media)
    wrapper = digest(d / "tst0107.ctys")
    for address in (d / "tst0107.conf", d, d / "tst0107.ctys"):
        r = run_cli("xml", str(address), "--validate")
        assert r.returncode == 0, (address, r.stderr)
        assert conf_path_of(r.stdout) == str(d / "tst0107.conf")
        root = etree.fromstring(r.stdout.encode())
        assert root.findtext("name") == "tst0107"
        assert root.find("devices/input[@type='tablet']") is not None     # the .conf's ARGSADD
    r = run_cli("xml", "tst0107", "--base", str(vmroot))
    assert r.returncode == 0, r.stderr
    assert conf_path_of(r.stdout) == str(d / "tst0107.conf")
    r = run_cli("check", str(d / "tst0107.conf"), "--format", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["config"]["source_path"] == str(d / "tst0107.conf")
    assert digest(d / "tst0107.ctys") == wrapper and not (d / "EXECUTED-MARKER").exists()


def test_the_conf_own_ignore_flag_counts(vmroot, media):
    d = layout(vmroot, media)
    conf = d / "tst0107.conf"
    conf.write_text(conf.read_text().replace("#@#MAGICID-QEMU", "#@#MAGICID-IGNORE"))
    r = run_cli("xml", str(conf))
    assert r.returncode == 3 and "MAGICID-IGNORE" in r.stderr and str(conf) in r.stderr
    r = run_cli("enumerate", str(vmroot), "--format", "json", "--no-cache")
    assert r.returncode == 0 and json.loads(r.stdout) == []


@pytest.mark.libvirt
@pytest.mark.qemu
def test_create_by_label_runs_the_conf(vmroot, media, janitor, libvirt_conn):
    label = janitor.add(unique_label("l0107"))
    d = layout(vmroot, media, label)
    wrapper = digest(d / f"{label}.ctys")
    log = vmroot / "l0107.log"
    r = run_cli("create", label, "--base", str(vmroot), "--console", "NONE", "--serial-log", str(log),
                "--format", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["backend"] == "libvirt"
    wait_marker(log, "CTYS-GUEST-OK", timeout=60)
    xml = libvirt_conn.lookupByName(label).XMLDesc(0)
    assert conf_path_of(xml) == str(d / f"{label}.conf")
    assert digest(d / f"{label}.ctys") == wrapper and not (d / "EXECUTED-MARKER").exists()
