"""Coexisting with libvirt's own tools (issue 10) against the real libvirtd: the admin's
virt-xml edits survive create/define/sync, one-off boots leave no trace in the
definition, conflicts are refused and settled both ways, MACs are stable, bulk define
keeps going past broken confs, ctys-qemu and ctys-libvirt agree on the definition."""
from __future__ import annotations

import json
import shutil
import subprocess
import uuid as uuidlib
from pathlib import Path

import libvirt
import pytest
from lxml import etree

from ctysq_helpers import qemu
from lifecycle_helpers import janitor, run_cli, unique_label, wait_marker, write_conf  # noqa: F401 (fixture)

URI = "qemu:///system"


def virsh(*args: str) -> str:
    p = subprocess.run(["virsh", "-c", URI, *args], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, (args, p.stderr)
    return p.stdout


def virt_xml(*args: str) -> None:
    p = subprocess.run(["virt-xml", "-c", URI, *args], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, (args, p.stdout, p.stderr)


def inactive(name: str) -> str:
    return virsh("dumpxml", "--inactive", name)


def ok(*args: str) -> subprocess.CompletedProcess:
    p = run_cli(*args)
    assert p.returncode == 0, (args, p.returncode, p.stdout, p.stderr)
    return p


def rows(p: subprocess.CompletedProcess) -> list:
    return json.loads(p.stdout)


def make(vmroot: Path, media, janitor, tag: str, **kw) -> tuple:
    label = janitor.add(unique_label(tag))
    kw.setdefault("extra", "NIC=rtl8139\n")
    conf = write_conf(vmroot, label, image=media["hello"], **kw)
    return label, conf


def force_off(name: str) -> None:
    p = run_cli("cancel", name, "--mode", "FORCE")
    assert p.returncode == 0, p.stderr


def test_virt_xml_edits_survive_create_define_and_sync(vmroot, media, janitor):
    label, conf = make(vmroot, media, janitor, "keep")
    r = rows(ok("define", str(conf), "--format", "json"))
    assert [x["status"] for x in r] == ["defined"]
    virt_xml(label, "--edit", "--metadata", "description=kept by the admin")
    virt_xml(label, "--add-device", "--watchdog", "model=i6300esb")

    def admin_parts_present():
        root = etree.fromstring(inactive(label).encode())
        assert root.findtext("description") == "kept by the admin"
        assert root.find("devices/watchdog").get("model") == "i6300esb"
        return root

    ok("create", str(conf), "--console", "NONE")          # a one-off console
    live = etree.fromstring(virsh("dumpxml", label).encode())
    assert live.find("devices/watchdog") is not None      # the run has the admin's device too
    assert live.find("devices/graphics") is None          # ... and the one-off console
    force_off(label)
    admin_parts_present()

    conf.write_text(conf.read_text().replace("MEMSIZE=16", "MEMSIZE=24"))
    r = rows(ok("define", str(conf), "--format", "json"))
    assert r[0]["status"] == "updated" and "memory" in r[0]["reason"]
    root = admin_parts_present()
    assert root.findtext("memory") == str(24 * 1024)

    conf.write_text(conf.read_text().replace("SMP=1", "SMP=2"))
    r = rows(ok("sync", str(conf), "--prefer", "conf", "--format", "json"))
    assert r[0]["status"] == "updated"
    root = admin_parts_present()
    assert root.findtext("vcpu") == "2"
    assert rows(ok("define", str(conf), "--format", "json"))[0]["status"] == "unchanged"


def test_one_off_boot_leaves_no_trace(vmroot, media, janitor):
    label, conf = make(vmroot, media, janitor, "oneoff")
    ok("define", str(conf))
    before = inactive(label)
    log = vmroot / f"{label}.serial.log"
    ok("create", str(conf), "--bootmode", f"CD%{media['hello-iso']}", "--console", "NONE",
       "--serial-log", str(log))
    wait_marker(log, "CTYS-GUEST-OK")                      # it really booted the CD
    live = etree.fromstring(virsh("dumpxml", label).encode())
    cd = [d for d in live.iterfind("devices/disk") if d.get("device") == "cdrom"]
    assert cd and cd[0].find("boot").get("order") == "1"
    assert live.find("devices/serial/log").get("file") == str(log)
    force_off(label)
    assert inactive(label) == before
    assert "cdrom" not in before and str(log) not in before


def test_conflict_refused_then_settled_by_conf(vmroot, media, janitor):
    label, conf = make(vmroot, media, janitor, "cfc")
    ok("define", str(conf))
    virt_xml(label, "--edit", "--memory", "32")
    conf.write_text(conf.read_text().replace("MEMSIZE=16", "MEMSIZE=24"))
    before = inactive(label)
    p = run_cli("define", str(conf), "--format", "json")
    assert p.returncode == 6, (p.stdout, p.stderr)
    r = rows(p)[0]
    assert r["status"] == "conflict" and "memory" in r["reason"]
    assert [f for f in r["fields"] if f["state"] == "conflict"][0]["name"] == "memory"
    p = run_cli("create", str(conf))
    assert p.returncode == 6 and "memory: conf '24576 KiB' vs domain '32768 KiB'" in p.stderr
    assert inactive(label) == before                       # nothing written
    d = json.loads(ok("diff", label, "--format", "json").stdout)
    assert d["drift"] == "conflict"
    ok("sync", str(conf), "--prefer", "conf")
    assert etree.fromstring(inactive(label).encode()).findtext("memory") == str(24 * 1024)
    assert "MEMSIZE=24" in conf.read_text()
    assert json.loads(ok("diff", label, "--format", "json").stdout)["drift"] == "in sync"


def test_conflict_settled_by_domain_rewrites_only_that_assignment(vmroot, media, janitor):
    label, conf = make(vmroot, media, janitor, "cfd")
    ok("define", str(conf))
    virt_xml(label, "--edit", "--memory", "32")
    conf.write_text(conf.read_text().replace("MEMSIZE=16", "MEMSIZE=24"))
    text = conf.read_text()
    ok("sync", label, "--prefer", "domain")
    new = conf.read_text()
    assert new == text.replace("MEMSIZE=24", "MEMSIZE=32")  # every other byte as it was
    assert etree.fromstring(inactive(label).encode()).findtext("memory") == str(32 * 1024)
    listed = json.loads(ok("list", "--all", "--format", "json").stdout)
    assert [i["drift"] for i in listed if i["name"] == label] == ["in sync"]


def test_list_drift_states(vmroot, media, janitor, tmp_path):
    env = {"CTYS_DRIFT_CACHE": str(tmp_path / "drift.sqlite")}
    label, conf = make(vmroot, media, janitor, "drift")
    ok("define", str(conf))

    def drift():
        p = run_cli("list", "--all", "--format", "json", env=env)
        assert p.returncode == 0, p.stderr
        return [i["drift"] for i in json.loads(p.stdout) if i["name"] == label][0]

    assert drift() == "in sync"
    conf.write_text(conf.read_text() + "# a comment changes the bytes, not the fields\n")
    assert drift() == "in sync"
    conf.write_text(conf.read_text().replace("MEMSIZE=16", "MEMSIZE=24"))
    assert drift() == "conf changed"
    virt_xml(label, "--edit", "--vcpus", "2")
    assert drift() == "conf changed, domain edited"
    virt_xml(label, "--edit", "--memory", "40")
    assert drift() == "conflict"
    p = run_cli("list", "--all", "--format", "records", "--drift", env=env)
    rec = [line for line in p.stdout.splitlines() if f";{label};" in line][0]
    assert rec.split(";")[22] == "conflict" and len(rec.split(";")) == 23
    ok("start", label)
    p = ok("create", str(conf), "--reuse")
    assert "conflict since the last define" in p.stdout
    force_off(label)
    shutil.move(str(conf), str(conf) + ".gone")
    assert drift() == "conf missing"


def test_mac_derived_from_uuid_is_stable(vmroot, media, janitor):
    from ctys_libvirt.translate.plan import mac_from_uuid

    label = janitor.add(unique_label("mac"))
    u = uuidlib.uuid4().hex
    conf = write_conf(vmroot, label, image=media["hello"], uuid=u, extra="NIC=rtl8139\n")
    conf.write_text("".join(line + "\n" for line in conf.read_text().splitlines() if "MAC0" not in line))
    macs = set()
    for mem in (16, 20, 24):
        conf.write_text(conf.read_text().replace("MEMSIZE=16", f"MEMSIZE={mem}")
                        .replace("MEMSIZE=20", f"MEMSIZE={mem}"))
        p = ok("define", str(conf))
        assert "derived from the UUID" in p.stdout
        root = etree.fromstring(inactive(label).encode())
        macs.add(root.find("devices/interface/mac").get("address"))
    assert macs == {mac_from_uuid(u)} and mac_from_uuid(u).startswith("52:54:00:")


def test_moved_conf_without_uuid_says_what_moved_and_sync_repoints(vmroot, media, janitor):
    label, conf = make(vmroot, media, janitor, "moved")
    conf.write_text("".join(line + "\n" for line in conf.read_text().splitlines() if "UUID" not in line))
    ok("define", str(conf))
    uuid_before = etree.fromstring(inactive(label).encode()).findtext("uuid")
    newdir = vmroot / "elsewhere"
    newdir.mkdir()
    shutil.move(str(conf.parent), str(newdir / label))
    moved = newdir / label / conf.name
    p = run_cli("define", str(moved))
    assert p.returncode == 6, (p.stdout, p.stderr)
    assert f"moved from {conf} to {moved}" in p.stdout and "sync" in p.stdout
    assert "(the conf says" not in p.stdout
    p = run_cli("create", str(moved))
    assert p.returncode == 6 and f"moved from {conf} to {moved}" in p.stderr
    ok("sync", str(moved))
    keyline = [line for line in moved.read_text().splitlines() if line.startswith("#@#UUID")]
    assert keyline and keyline[0].split("=")[1].strip() == f'"{uuid_before.replace("-", "")}"'
    root = etree.fromstring(inactive(label).encode())
    assert root.findtext("uuid") == uuid_before
    assert str(moved) in inactive(label)
    assert rows(ok("define", str(moved), "--format", "json"))[0]["status"] == "unchanged"


def test_bulk_define_keeps_going_past_broken_confs(vmroot, media, janitor):
    good = [make(vmroot, media, janitor, "bulk")[1] for _ in range(4)]
    bad_label = janitor.add(unique_label("bulkbad"))
    bad = write_conf(vmroot, bad_label, image=media["hello"], extra="X=$(touch /tmp/never)\n")
    missing_label = janitor.add(unique_label("bulkmiss"))
    missing = write_conf(vmroot, missing_label, extra='HDDBOOTIMAGE="/nonexistent/disk.img"\n')
    batch = [str(good[0]), str(bad), str(good[1]), str(missing), str(good[2]), str(good[3]),
             str(vmroot / "no-such-dir")]
    p = run_cli("define", *batch, "--format", "json")
    assert p.returncode != 0
    r = rows(p)
    assert [x["status"] for x in r] == ["defined", "error", "defined", "error", "defined",
                                        "defined", "error"]
    assert r[1]["exit_code"] == 3 and "$(" in r[1]["reason"]
    assert "/nonexistent/disk.img" in r[3]["reason"]
    for c in good:
        assert virsh("domstate", c.parent.name).strip() == "shut off"
    p = run_cli("define", *map(str, good))
    assert p.returncode == 0 and p.stdout.count("unchanged") == 4


def test_define_all_dry_run_writes_nothing(vmroot, media, janitor, libvirt_conn):
    base = vmroot / "estate"
    base.mkdir()
    labels = [janitor.add(unique_label("all")) for _ in range(3)]
    for lb in labels:
        write_conf(base, lb, image=media["hello"])
    p = run_cli("define", "--all", "--base", str(base), "--dry-run", "--format", "json")
    assert p.returncode == 0, p.stderr
    assert sorted(x["name"] for x in rows(p)) == sorted(labels)
    assert {x["status"] for x in rows(p)} == {"would be defined"}
    for lb in labels:
        with pytest.raises(libvirt.libvirtError):
            libvirt_conn.lookupByName(lb)
    p = run_cli("define", "--all", "--base", str(base))
    assert p.returncode == 0 and p.stdout.count("defined") == 3


def test_verbs_start_autostart_show_undefine(vmroot, media, janitor):
    label, conf = make(vmroot, media, janitor, "verbs")
    ok("define", str(conf))
    assert "autostart on" in ok("autostart", label, "on").stdout
    assert virsh("dominfo", label).count("Autostart:      enable") == 1
    ok("autostart", str(conf), "off")
    assert qemu("-a", f"ISACTIVE=L:{label}").stdout == f"ISACTIVE(QEMU,L:{label})=1\n"
    assert "running" in ok("start", label).stdout
    assert qemu("-a", f"ISACTIVE=L:{label}").stdout == f"ISACTIVE(QEMU,L:{label})=0\n"
    assert qemu("-a", f"ISACTIVE={conf}").stdout == f"ISACTIVE(QEMU,{conf})=0\n"
    facts = json.loads(ok("show", label, "--format", "json").stdout)
    assert facts["state"] == "running" and facts["conf"] == str(conf) and facts["drift"] == "in sync"
    assert facts["ours"] and facts["backend"] == "libvirt" and facts["autostart"] is False
    force_off(label)
    image = conf.parent / "hda.img"
    assert "undefined (images kept)" in ok("undefine", label).stdout
    assert image.exists()
    p = run_cli("show", label)
    assert p.returncode == 2


def test_export_round_trip_of_ours_and_a_foreign_domain(vmroot, media, janitor, libvirt_conn, tmp_path):
    from ctys_libvirt.coexist import fields as F
    from ctys_libvirt.coexist.merge import complete
    from ctys_libvirt.conf import load_conf
    from ctys_libvirt.backends.libvirt import normal_request
    from ctys_libvirt.host.caps import libvirt_host_caps
    from ctys_libvirt.translate.xml import build_domain

    label, conf = make(vmroot, media, janitor, "exp")
    ok("define", str(conf))
    foreign = janitor.add(unique_label("expforeign"))
    libvirt_conn.defineXML(f"""<domain type='qemu'><name>{foreign}</name>
      <memory unit='MiB'>48</memory><vcpu>2</vcpu>
      <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='cdrom'/></os>
      <devices><disk type='file' device='cdrom'><source file='{media["hello-iso"]}'/>
        <target dev='hdc' bus='ide'/><readonly/></disk>
        <disk type='file' device='disk'><driver name='qemu' type='raw'/>
        <source file='{media["hello"]}'/><target dev='vda' bus='virtio'/></disk>
        <interface type='user'><mac address='52:54:00:12:34:56'/><model type='e1000'/></interface>
        <graphics type='vnc' autoport='yes' listen='127.0.0.1'/></devices></domain>""")
    out = tmp_path / "exported"
    p = ok("export", label, foreign, "--dir", str(out))
    assert f"{foreign}: {out / foreign / (foreign + '.ctys')}" in p.stdout
    caps = libvirt_host_caps(libvirt_conn)
    for name in (label, foreign):
        vm = load_conf(out / name / f"{name}.ctys")
        again = complete(F.parse(build_domain(vm, normal_request(vm), caps).xml))
        dom = F.parse(inactive(name))
        ctx = F.Context(F.targets_of(again), F.macs_of(again))
        want = F.values(dom, F.Context(F.targets_of(dom), F.macs_of(dom)))
        got = F.values(again, ctx)
        same = ("memory", "vcpu", "nic", "clock", "type") if name == foreign else F.CONF_FIELDS
        for f in same:
            assert got[f] == want[f], (name, f, got[f], want[f])
    fvm = load_conf(out / foreign / f"{foreign}.ctys")
    assert fvm.memory_mib == 48 and fvm.smp == 2 and fvm.mac == "52:54:00:12:34:56"
    assert fvm.default_bootmode == "CD" and fvm.keys["DEFAULTCONSOLE"] == "VNC"
    p = run_cli("export", label, "--dir", str(out))
    assert p.returncode == 1 and "already exists" in p.stderr


def test_ctys_qemu_and_ctys_libvirt_keep_each_others_definition(vmroot, media, janitor):
    label, conf = make(vmroot, media, janitor, "both")
    ok("define", str(conf))
    virt_xml(label, "--add-device", "--watchdog", "model=i6300esb")
    before = inactive(label)
    c = qemu("-a", f"CREATE=P:{conf}")     # ctys-qemu default console: VNC
    assert c.returncode == 0, (c.stdout, c.stderr)
    force_off(label)
    assert inactive(label) == before
    ok("create", str(conf), "--console", "NONE")
    force_off(label)
    assert inactive(label) == before


def test_define_and_sync_take_allow_argsadd(vmroot, media, janitor, libvirt_conn):
    """A host-reaching ARGSADD is refused by define (exit 3, nothing defined) until allowed,
    and the allowance reaches the definition itself (create's definition too)."""
    label = janitor.add(unique_label("allow"))
    conf = write_conf(vmroot, label, image=media["hello"],
                      extra='ARGSADD="-netdev user,id=n9,hostfwd=tcp:127.0.0.1:0-:22"\n')
    p = run_cli("define", str(conf))
    assert p.returncode == 3 and "--allow-argsadd -netdev" in p.stdout + p.stderr, (p.stdout, p.stderr)
    with pytest.raises(libvirt.libvirtError):
        libvirt_conn.lookupByName(label)
    p = run_cli("define", str(conf), "--allow-argsadd", "-netdev")
    assert p.returncode == 0, (p.stdout, p.stderr)
    xml = libvirt_conn.lookupByName(label).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert "hostfwd=tcp:127.0.0.1:0-:22" in xml
    p = run_cli("sync", str(conf), "--allow-argsadd", "-netdev")
    assert p.returncode == 0, (p.stdout, p.stderr)
