"""A conf whose STARTERCALL is not installed here (RHEL's /usr/libexec/qemu-kvm) runs under
libvirt with `--backend auto`, with a warning naming the emulator libvirt runs; `doctor CONF`
says which backend would run a conf, with which emulator, and why (table and json)."""
from __future__ import annotations

import json

import pytest
from lxml import etree

from support.fakeqemu import make_fake
from support.cli import BOGUS_URI, run_cli
from support.confs import write_conf
from support.domains import unique_label
from support.guests import wait_marker

MISSING = "/usr/libexec/qemu-kvm-ctystest-absent"


def libvirt_emulator(conn) -> str:
    caps = etree.fromstring(conn.getCapabilities().encode())
    return caps.find("guest/arch[@name='x86_64']/emulator").text


@pytest.mark.libvirt
@pytest.mark.qemu
def test_auto_runs_missing_startercall_on_libvirt(vmroot, media, janitor, libvirt_conn):
    label = janitor.add(unique_label("sc"))
    conf = write_conf(vmroot, label, image=media["hello"], extra=f"STARTERCALL={MISSING}\n")
    log = vmroot / "sc.log"
    r = run_cli("create", str(conf), "--console", "NONE", "--serial-log", str(log), "--format", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["backend"] == "libvirt"
    emu = libvirt_emulator(libvirt_conn)
    assert (f"ctys-libvirt: warning: {label}: STARTERCALL {MISSING} is not installed on this host; "
            f"libvirt runs its emulator {emu} instead") in r.stderr.splitlines()
    wait_marker(log, "CTYS-GUEST-OK", timeout=60)
    dom = etree.fromstring(libvirt_conn.lookupByName(label).XMLDesc(0).encode())
    assert dom.findtext("devices/emulator") == emu


@pytest.mark.libvirt
def test_doctor_conf_missing_startercall(vmroot, libvirt_conn):
    conf = write_conf(vmroot, "docsc", extra=f"STARTERCALL={MISSING}\n")
    emu = libvirt_emulator(libvirt_conn)
    r = run_cli("doctor", str(conf), "--format", "json")
    assert r.returncode == 0, r.stderr
    c = json.loads(r.stdout)["conf"]
    assert (c["path"], c["label"], c["backend"], c["requested"], c["emulator"]) == (
        str(conf), "docsc", "libvirt", "auto", emu)
    assert c["reasons"][-1] == (f"docsc: STARTERCALL {MISSING} is not installed on this host; "
                                f"libvirt runs its emulator {emu} instead")
    t = run_cli("doctor", str(conf))
    assert t.returncode == 0, t.stderr
    tail = t.stdout.split(f"Conf {conf} (LABEL docsc):\n", 1)[1].splitlines()
    assert tail[0] == f"  backend libvirt (auto requested) runs {emu}"
    assert tail[-1].startswith(f"  because docsc: STARTERCALL {MISSING} is not installed")
    d = run_cli("doctor", str(conf), "--backend", "direct", "--format", "json")
    c = json.loads(d.stdout)["conf"]
    assert c["backend"] == "direct" and c["emulator"] is None
    assert "the direct backend cannot run this conf" in c["reasons"][-1]


def test_doctor_conf_needs_direct(vmroot, tmp_path):
    old = make_fake(tmp_path, "0.12.5-qemu-kvm")
    conf = write_conf(vmroot, "docold", extra=f"STARTERCALL={old}\n")
    c = json.loads(run_cli("doctor", str(conf), "--format", "json").stdout)["conf"]
    assert c["backend"] == "direct" and c["emulator"] == str(old)
    assert c["reasons"] == [f"docold: STARTERCALL {old} is QEMU 0.12.5; libvirt needs QEMU >= 4.2 with QMP"]
    kq = write_conf(vmroot, "dockq", extra="ACCELERATOR=KQEMU\n")
    c = json.loads(run_cli("doctor", str(kq), "--format", "json").stdout)["conf"]
    assert c["backend"] == "direct" and "KQEMU" in c["reasons"][0]


def test_doctor_conf_libvirt_unreachable_and_bad_input(vmroot):
    conf = write_conf(vmroot, "docdead")
    r = run_cli("doctor", str(conf), "--connect", BOGUS_URI, "--format", "json")
    c = json.loads(r.stdout)["conf"]
    assert c["backend"] == "direct" and c["reasons"][0].startswith(f"libvirt not reachable at {BOGUS_URI}")
    r = run_cli("doctor", str(conf), "--backend", "xen")
    assert r.returncode == 1 and r.stderr.startswith("ctys-libvirt: error: unknown backend 'xen'")
    r = run_cli("doctor", str(vmroot / "nope.ctys"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
