"""cancel / list / info / console through the `ctys-libvirt` CLI, and the bad-input /
fault cases: one-line errors, documented exit codes, nothing changed."""
from __future__ import annotations

import json
import os
import subprocess
import time
import uuid as uuidlib

import libvirt
import pytest

from support.cli import BOGUS_URI, assert_one_line_error, run_cli, popen
from support.confs import write_conf
from support.domains import domain_xml, unique_label
from support.guests import read_until_marker, wait_marker

pytestmark = [pytest.mark.libvirt, pytest.mark.qemu]


def start(conf, log, *extra):
    p = run_cli("create", str(conf), "--console", "NONE", "--serial-log", str(log),
                "--format", "json", *extra)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_cancel_poweroff_acpi_and_plain_via_cli(vmroot, media, janitor, libvirt_conn):
    a = janitor.add(unique_label("acpi"))
    h = janitor.add(unique_label("plain"))
    ca = write_conf(vmroot, a, image=media["acpi"])
    ch = write_conf(vmroot, h, image=media["hello"])
    start(ca, vmroot / "a.log")
    start(ch, vmroot / "h.log")
    wait_marker(vmroot / "a.log", "CTYS-GUEST-OK ACPI")
    wait_marker(vmroot / "h.log", "CTYS-GUEST-OK")
    p = run_cli("cancel", str(ca), "--format", "json")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)[0]
    assert (r["name"], r["action"], r["state"], r["reason"]) == (a, "shutdown", "shutoff", "shutdown")
    p = run_cli("cancel", h, "--timeout", "1")
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[0].startswith(f"{h}: POWEROFF -> destroyed; now shutoff (destroyed)")
    assert f"did not shut down within 1s; destroyed" in p.stdout
    assert libvirt_conn.lookupByName(a).state()[1] == libvirt.VIR_DOMAIN_SHUTOFF_SHUTDOWN
    assert libvirt_conn.lookupByName(h).state()[1] == libvirt.VIR_DOMAIN_SHUTOFF_DESTROYED


def test_cancel_all_resume_acts_on_paused_and_saved_and_skips_the_rest(vmroot, media, janitor,
                                                                       libvirt_conn):
    names = [janitor.add(unique_label(k)) for k in ("paused", "saved", "running", "off")]
    doms = {}
    for n in names:
        conf = write_conf(vmroot, n, image=media["hello"])
        start(conf, vmroot / f"{n}.log")
        wait_marker(vmroot / f"{n}.log", "CTYS-GUEST-OK")
        doms[n] = libvirt_conn.lookupByName(n)
    paused, saved, running, off = names
    assert run_cli("cancel", paused, "--mode", "PAUSE").returncode == 0
    assert run_cli("cancel", saved, "--mode", "SUSPEND").returncode == 0
    assert run_cli("cancel", off, "--mode", "FORCE").returncode == 0
    p = run_cli("cancel", "--all", "--mode", "RESUME", "--format", "json")
    assert p.returncode == 0, p.stderr
    acted = {r["name"]: r["action"] for r in json.loads(p.stdout)}
    assert {paused, saved} <= set(acted) and not {running, off} & set(acted)
    assert doms[paused].state()[0] == libvirt.VIR_DOMAIN_RUNNING
    assert doms[saved].state()[0] == libvirt.VIR_DOMAIN_RUNNING
    assert doms[running].state()[0] == libvirt.VIR_DOMAIN_RUNNING
    assert doms[off].state()[0] == libvirt.VIR_DOMAIN_SHUTOFF


def test_cancel_modes_via_cli(vmroot, media, janitor, libvirt_conn):
    n = janitor.add(unique_label("modes"))
    conf = write_conf(vmroot, n, image=media["hello"])
    log = vmroot / "m.log"
    start(conf, log)
    wait_marker(log, "CTYS-GUEST-OK")
    dom = libvirt_conn.lookupByName(n)
    assert run_cli("cancel", n, "--mode", "pause").returncode == 0
    assert dom.state()[0] == libvirt.VIR_DOMAIN_PAUSED
    assert run_cli("cancel", n, "--mode", "RESUME").returncode == 0
    assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
    assert run_cli("cancel", n, "--mode", "RESET").returncode == 0
    wait_marker(log, "CTYS-GUEST-OK", count=2)
    p = run_cli("cancel", n, "--mode", "SUSPEND")
    assert p.returncode == 0 and "saved" in p.stdout
    assert dom.hasManagedSaveImage(0) == 1
    # create resumes from the managed save image
    p = run_cli("create", str(conf), "--console", "NONE")
    assert p.returncode == 0, p.stderr
    assert "managed save" in p.stdout and dom.isActive()
    assert run_cli("cancel", n, "--mode", "FORCE").returncode == 0
    assert dom.state() == [libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_DESTROYED]
    p = run_cli("cancel", n)
    assert_one_line_error(p, 4, f"{n} is not running (shutoff (destroyed))",
                          f"start it with `ctys-libvirt create {n}`")
    assert_one_line_error(run_cli("console", n), 4, f"{n} is not running")


def test_cancel_all_spares_foreign_domains(vmroot, media, janitor, libvirt_conn):
    ours = janitor.add(unique_label("ours"))
    foreign = janitor.add(unique_label("foreign"))
    start(write_conf(vmroot, ours, image=media["hello"]), vmroot / "o.log")
    img = vmroot / "foreign.img"
    img.write_bytes(media["hello"].read_bytes())
    libvirt_conn.createXML(domain_xml(foreign, str(uuidlib.uuid4()), img, vmroot / "f.log",
                                      metadata=False), 0)
    p = run_cli("cancel", "--all", "--mode", "FORCE")
    assert p.returncode == 0, p.stderr
    assert libvirt_conn.lookupByName(foreign).isActive()
    assert not libvirt_conn.lookupByName(ours).isActive()
    assert foreign not in p.stdout
    p = run_cli("cancel", "--all", "--include-foreign", "--mode", "FORCE")
    assert p.returncode == 0 and foreign in p.stdout
    with pytest.raises(libvirt.libvirtError):
        libvirt_conn.lookupByName(foreign)   # transient: gone after destroy


def test_list_formats_map_domains_to_confs(vmroot, media, janitor, libvirt_conn):
    n = janitor.add(unique_label("list"))
    conf = write_conf(vmroot, n, image=media["hello"], uuid="0123456789abcdef0123456789abcdef",
                      mac="52:54:00:01:02:03", ip="192.0.2.9", extra="NIC=rtl8139\n")
    res = start(conf, vmroot / "l.log", "--console", "VNC")
    from lxml import etree

    g = etree.fromstring(libvirt_conn.lookupByName(n).XMLDesc(0).encode()).find("devices/graphics")
    assert (g.get("type"), g.get("listen"), int(g.get("port"))) == ("vnc", "127.0.0.1", res["vnc_port"])
    assert any(m == f"VNC: 127.0.0.1:{res['vnc_display']} (port {res['vnc_port']})" for m in res["messages"])
    p = run_cli("list", "--format", "json")
    assert p.returncode == 0, p.stderr
    mine = [d for d in json.loads(p.stdout) if d["name"] == n]
    assert len(mine) == 1
    d = mine[0]
    assert d["ours"] and d["conf_path"] == str(conf) and d["state"] == "running"
    assert d["uuid"] == "01234567-89ab-cdef-0123-456789abcdef" and d["mac"] == "52:54:00:01:02:03"
    assert d["pid"] == res["pid"] and d["console"] == "VNC"
    assert d["vnc_port"] == res["vnc_port"] == 5900 + res["vnc_display"]
    p = run_cli("list", "--format", "records")
    rec = next(l for l in p.stdout.splitlines() if l.split(";")[2] == n).split(";")
    assert len(rec) == 22
    assert rec[1:10] == ["QEMU", n, str(conf), "0123456789abcdef0123456789abcdef",
                         "52:54:00:01:02:03", "192.0.2.9", str(res["vnc_display"]),
                         str(res["vnc_port"]), res["serial"] or ""][0:9]
    assert rec[10] == str(res["pid"]) and rec[13] == "SERVER" and rec[14] == ""
    assert rec[20] == "QEMU" and rec[21] == "x86_64"
    p = run_cli("list")
    row = next(l for l in p.stdout.splitlines() if n in l)
    assert row.split()[0] == "running" and str(conf) in row
    # inactive only with --all
    run_cli("cancel", n, "--mode", "FORCE")
    assert n not in run_cli("list").stdout
    assert n in run_cli("list", "--all").stdout


def test_info_reports_versions_and_counts():
    p = run_cli("info", "--format", "json")
    assert p.returncode == 0, p.stderr
    facts = json.loads(p.stdout)
    assert facts["libvirt_version"] == "9.0.0"
    assert facts["hypervisor"] == "QEMU" and facts["hypervisor_version"].startswith("7.2.")
    assert "qemu" in facts["domain_types"]
    assert set(facts["domains"]) == {"total", "active", "inactive", "ours"}
    p = run_cli("info")
    assert p.returncode == 0 and p.stdout.startswith("URI:")


def test_console_cli_attach_and_detach(vmroot, media, janitor, libvirt_conn):
    n = janitor.add(unique_label("con"))
    conf = write_conf(vmroot, n, image=media["hello"])
    start(conf, vmroot / "c.log", "--console", "CLI")
    wait_marker(vmroot / "c.log", "CTYS-GUEST-OK")   # first boot done: only the reset's marker follows
    proc = popen("ctys-libvirt", *["console", n], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        first = proc.stderr.readline()          # printed once the console stream is open
        assert first.startswith(f"Connected to {n}".encode()), first
        out = read_until_marker(proc.stdout.fileno(), libvirt_conn.lookupByName(n),
                                first_reset=0, every=5)   # the guest prints its marker again
        assert b"CTYS-GUEST-OK\r\n" in out
        proc.stdin.write(b"\x1d")
        proc.stdin.flush()
        rest, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert b"console detached" in err
    assert libvirt_conn.lookupByName(n).isActive()


def test_cli0_console_destroys_vm_when_it_ends(vmroot, media, janitor, libvirt_conn):
    n = janitor.add(unique_label("cli0"))
    conf = write_conf(vmroot, n, image=media["hello"])
    proc = popen("ctys-libvirt", *["create", str(conf), "--console", "CLI0"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if libvirt_conn.lookupByName(n).isActive():
                break
        except libvirt.libvirtError:
            pass
        time.sleep(0.05)
    time.sleep(0.5)
    proc.stdin.write(b"\x1d")
    proc.stdin.flush()
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert b"destroyed (CLI0 console ended)" in err
    assert not libvirt_conn.lookupByName(n).isActive()


# -- bad input and faults -----------------------------------------------------------

def test_unknown_address(vmroot):
    p = run_cli("create", "ctystest-no-such-vm", "--base", str(vmroot))
    assert_one_line_error(p, 2, "ctystest-no-such-vm")
    p = run_cli("cancel", "ctystest-no-such-vm", "--base", str(vmroot))
    assert_one_line_error(p, 2, "ctystest-no-such-vm")


def test_missing_image_changes_nothing(vmroot, janitor, libvirt_conn):
    n = janitor.add(unique_label("noimg"))
    conf = write_conf(vmroot, n, image=None, extra='HDDBOOTIMAGE="${CTYSWRAPPERPATH}/missing.img"\n')
    before = conf.read_bytes()
    p = run_cli("create", str(conf), "--console", "NONE")
    assert_one_line_error(p, 2, "missing.img")
    with pytest.raises(libvirt.libvirtError):
        libvirt_conn.lookupByName(n)
    assert conf.read_bytes() == before and sorted(os.listdir(conf.parent)) == [conf.name]


def test_libvirtd_unreachable(vmroot, media):
    conf = write_conf(vmroot, unique_label("down"), image=media["hello"])
    for args in (["create", str(conf), "--backend", "libvirt"], ["list", "--backend", "libvirt"],
                 ["info"], ["cancel", "x", "--backend", "libvirt"]):
        p = run_cli(*args, "--connect", BOGUS_URI)
        assert_one_line_error(p, 4, f"cannot connect to libvirt at {BOGUS_URI}",
                              "sh scripts/setup.sh", "--backend direct")


def test_bad_options_are_usage_errors(vmroot, media):
    conf = write_conf(vmroot, unique_label("usage"), image=media["hello"])
    assert_one_line_error(run_cli("cancel", "x", "--mode", "HIBERNATE"), 1, "HIBERNATE")
    assert_one_line_error(run_cli("cancel"), 1, "--all")
    assert_one_line_error(run_cli("list", "--format", "xml"), 1, "--format")
    assert_one_line_error(run_cli("create", str(conf), "--bootmode", "TAPE"), 1, "TAPE")
    assert_one_line_error(run_cli("create", str(conf), "--wait-install"), 1, "--instmode")


def test_wait_install_timeout_expires(vmroot, media, janitor, libvirt_conn):
    n = janitor.add(unique_label("tmo"))
    conf = write_conf(vmroot, n, image=None, extra=(
        "QEMU_IMG=raw\nHDDBOOTIMAGE_INST_SIZE=1M\n"
        'HDDBOOTIMAGE="${CTYSWRAPPERPATH}/t.img"\n'
        f"DEFAULTINSTSOURCE={media['hello-iso']}\nDEFAULTINSTMODE=CD\n"))
    p = run_cli("create", str(conf), "--console", "NONE", "--instmode", "CD%%HDD%%INIT",
                "--wait-install", "--timeout", "1")
    assert p.returncode == 5, p.stderr
    err = [l for l in p.stderr.splitlines() if "error" in l]
    assert len(err) == 1 and f"install run of {n} still going after 1s" in err[0]
    assert "Traceback" not in p.stderr


def test_kvm_permission_denied_falls_back_to_tcg(vmroot, media):
    """No usable /dev/kvm (what libvirt reports when QEMU cannot open it) + a KVM conf ->
    a 'qemu' (TCG) domain and a warning, never a failure."""
    from ctys_libvirt.conf import load_conf
    from ctys_libvirt.model import HostCaps
    from ctys_libvirt.translate.request import make_request
    from ctys_libvirt.host.facts import host_facts
    from ctys_libvirt.translate.xml import build_domain

    conf = write_conf(vmroot, unique_label("kvm"), image=media["hello"],
                      extra="ACCELERATOR=KVM\n")
    vm = load_conf(conf)
    b = build_domain(vm, make_request(console="NONE"), host_facts(HostCaps(kvm=False, emulator="/usr/bin/qemu-system-x86_64")))
    assert "<domain type=\"qemu\"" in b.xml or "<domain type='qemu'" in b.xml
    assert any("KVM" in w for w in b.warnings)
