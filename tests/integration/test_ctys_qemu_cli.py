"""ctys-qemu and ctys-libvirt enumerate end to end (real processes, real libvirtd)."""
from __future__ import annotations

import json
import time

import pytest

from ctys_libvirt.inventory import collect
from ctys_libvirt.ctys.enum_record import join_record
from ctysq_helpers import libvirt_cli, one_error, qemu
from inv_helpers import write_conf as write_header_conf
from lifecycle_helpers import janitor, unique_label, write_conf  # noqa: F401


@pytest.fixture
def env(tmp_path):
    return {"CTYS_INVENTORY_DB": str(tmp_path / "inv.sqlite"), "CTYS_GROUPS_PATH": str(tmp_path / "groups"),
            "CTYS_SCAN_CACHE_DIR": str(tmp_path / "scancache")}


# -- ENUMERATE ---------------------------------------------------------------------------

def test_enumerate_machine_records_match_library(shared_dir, env):
    root = shared_dir / "examples" / "confs"
    p = qemu("-t", "QEMU", "-a", f"ENUMERATE=B:{root},MACHINE", env=env)
    assert p.returncode == 0 and p.stderr == ""
    expected = [join_record(r) for r in collect.enumerate_local([root]).records]
    assert p.stdout.splitlines() == expected
    assert len(expected) == 3


def test_enumerate_selected_fields_terse_and_title(shared_dir, env):
    root = shared_dir / "examples" / "confs"
    p = qemu("-a", f"enumerate=b:{root},label,uuid,mac,title", "-X", env=env)
    assert p.returncode == 0
    assert p.stdout.splitlines() == [
        "Label;UUID;MAC",
        "centos55;9c1e5a2b7f3d48e6a0b4c2d1e8f7a6b5;00:50:56:13:11:41",
        "debian5;3f2a6c1e9b7d4e0a8c5b1d2e3f4a5b6c;00:50:56:13:11:40",
        "kvmkern;5d4c3b2a19f8e7d6c5b4a39281706f5e;00:50:56:13:11:42",
    ]


def test_enumerate_tab_gen_and_sort(shared_dir, env):
    root = shared_dir / "examples" / "confs"
    p = qemu("-a", f"ENUMERATE=B:{root},TAB_GEN:3_label_8%40_ram_5,SORT:40", env=env)
    assert p.returncode == 0
    assert p.stdout.splitlines() == ["label   |ram", "--------+-----", "centos55|512",
                                     "debian5 |1024", "kvmkern |2048"]


def test_libvirt_enumerate_formats_and_db(shared_dir, env, tmp_path):
    root = shared_dir / "examples" / "confs"
    db = tmp_path / "x.sqlite"
    p = libvirt_cli("enumerate", str(root), "--format", "records", "--update-db", "--db", str(db), env=env)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert len(lines) == 3 and all(l.count(";") == 46 for l in lines)
    j = libvirt_cli("enumerate", str(root), "--format", "json", env=env)
    data = json.loads(j.stdout)
    assert [d["label"] for d in data] == ["centos55", "debian5", "kvmkern"]
    assert data[2]["def_console"] == "CLI" and data[2]["vram"] == 2048 and data[2]["vcpu"] == 4
    fromdb = libvirt_cli("enumerate", "--from-db", "--db", str(db), "--format", "records", env=env)
    assert fromdb.stdout.splitlines() == lines
    fdb = tmp_path / "enum.fdb"
    e = libvirt_cli("enumerate", "--db", str(db), "--export-enum-fdb", str(fdb), env=env)
    assert e.returncode == 0 and fdb.read_text().splitlines() == sorted(lines)
    table = libvirt_cli("enumerate", str(root), env=env)
    assert table.stdout.splitlines()[0].split()[:3] == ["HOST", "LABEL", "UUID"]
    assert [l.split()[1] for l in table.stdout.splitlines()[1:]] == ["centos55", "debian5", "kvmkern"]


def test_enumerate_broken_conf_warns_and_continues(tmp_path, env):
    write_header_conf(tmp_path / "vms", "good")
    write_header_conf(tmp_path / "vms", "bad", body="X=$(reboot)\n")
    p = libvirt_cli("enumerate", str(tmp_path / "vms"), "--full", "--format", "records", env=env)
    assert p.returncode == 0
    assert [l.split(";")[2] for l in p.stdout.splitlines()] == ["good"]
    assert p.stderr.count("warning:") == 1 and "bad.ctys" in p.stderr


def test_enumerate_corrupt_db_rebuilt_with_warning(tmp_path, env):
    db = tmp_path / "inv.sqlite"
    db.write_bytes(b"\x00garbage" * 500)
    write_header_conf(tmp_path / "vms", "v1")
    p = libvirt_cli("enumerate", str(tmp_path / "vms"), "--update-db", "--db", str(db), env=env)
    assert p.returncode == 0 and "Traceback" not in p.stderr
    assert "warning:" in p.stderr and "moved to" in p.stderr and "rebuilt" in p.stderr
    again = libvirt_cli("enumerate", "--from-db", "--db", str(db), "--format", "records", env=env)
    assert [l.split(";")[2] for l in again.stdout.splitlines()] == ["v1"]
    assert again.stderr == ""


def test_enumerate_bad_format(env):
    one_error(libvirt_cli("enumerate", "--format", "xml", env=env), 1, "unknown format", prog="ctys-libvirt")


# -- bad input ------------------------------------------------------------------------------

@pytest.mark.parametrize("action,code,needle", [
    ("CREATE=L:x,bogus:1", 1, "Unknown sub-opts for QEMU:BOGUS"),
    ("CREATE=L:x,CONSOLE:VNC,CONSOLE:SDL", 1, "CONSOLE has to be unique."),
    ("CREATE=L:x,REUSE,CONSOLE:SDL", 1, "SDL could be used as initial CONSOLE only"),
    ("CREATE=REUSE,CONSOLE:VNC", 1, "Missing parameter for target entity of action"),
    ("CREATE=L:x,ARGSADD:C%-usb", 1, "Only valid target for additional arguments is 'S'"),
    ("CANCEL=POWEROFF:5", 1, "Missing address parameter."),
    ("CANCEL=L:x,RESET,PAUSE", 1, "EXOR"),
    ("LIST=BOGUS", 1, "Unknown sub-opts for LIST:BOGUS"),
    ("FROB", 1, "unknown action 'FROB'"),
    ("CREATE=P:relative/x.ctys", 1, "absolute"),
])
def test_bad_suboptions_one_line(action, code, needle, env):
    one_error(qemu("-a", action, env=env), code, needle)


def test_wrong_type(env):
    one_error(qemu("-t", "VMW", "-a", "LIST", env=env), 1, "only the QEMU plugin")


def test_missing_action(env):
    one_error(qemu(env=env), 1, "missing action")


def test_unknown_group(env):
    one_error(qemu("-a", "LIST", "--group", "nosuchgroup", env=env), 2, "unknown group 'nosuchgroup'")


def test_not_found_address(tmp_path, env):
    (tmp_path / "empty").mkdir()
    one_error(qemu("-a", "CREATE=L:ghost-vm", "--base", str(tmp_path / "empty"), env=env), 2,
              "no QEMU VM matches L:ghost-vm", "give the conf path, or --base DIR")


def test_corrupt_inventory_db_on_create(tmp_path, env):
    db = tmp_path / "inv.sqlite"
    db.write_bytes(b"\x00garbage" * 500)
    (tmp_path / "empty").mkdir()
    p = qemu("-a", "CREATE=L:ghost-vm", "--base", str(tmp_path / "empty"), "--db", str(db), env=env)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("ctys-qemu: warning: inventory database") and "rebuilt" in lines[0]
    assert lines[1].startswith("ctys-qemu: error: no QEMU VM matches L:ghost-vm")


def test_ambiguous_address(tmp_path, env):
    write_header_conf(tmp_path / "a", "twin")
    write_header_conf(tmp_path / "b", "twin")
    line = one_error(qemu("-a", "CREATE=L:twin", "--base", str(tmp_path), env=env), 2, "ambiguous")
    assert str(tmp_path / "a" / "twin" / "twin.ctys") in line and str(tmp_path / "b" / "twin" / "twin.ctys") in line


@pytest.mark.libvirt
def test_unreachable_host_reported_per_host(env, libvirt_conn):
    p = qemu("-a", "LIST=MACHINE", "localhost", "nosuchhost.invalid", "--transport", "tcp", env=env, timeout=60)
    assert p.returncode == 4
    errs = [l for l in p.stderr.splitlines() if l.startswith("ctys-qemu: error: ")]
    assert len(errs) == 1 and errs[0].startswith("ctys-qemu: error: nosuchhost.invalid: ")
    assert "Traceback" not in p.stderr


@pytest.mark.libvirt
def test_connect_on_stopped_vm(vmroot, media, env, libvirt_conn, janitor):
    label = unique_label("cq")
    janitor.add(label)
    write_conf(vmroot, label, image=media["acpi"])
    one_error(qemu("-a", f"CREATE=L:{label},CONNECT", "--base", str(vmroot), env=env), 4,
              "CONNECT and RECONNECT require a running server")
    assert label not in [d.name() for d in libvirt_conn.listAllDomains(0)]


@pytest.mark.libvirt
@pytest.mark.qemu
def test_create_list_cancel_end_to_end(vmroot, media, env, libvirt_conn, janitor):
    import libvirt

    label = unique_label("cq")
    janitor.add(label)
    uuid = "5d4c3b2a19f8e7d6c5b4a3" + label[-6:].rjust(10, "0")
    mac = "52:54:00:12:34:56"
    conf = write_conf(vmroot, label, image=media["acpi"], uuid=uuid, mac=mac)

    p = qemu("-t", "QEMU", "-a", f"CREATE=L:{label},CONSOLE:NONE", "--base", str(vmroot), env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(f"CREATE localhost: {label}: running")
    dom = libvirt_conn.lookupByName(label)
    assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING

    again = qemu("-a", f"CREATE=L:{label},CONSOLE:NONE", "--base", str(vmroot), env=env)
    one_error(again, 4, "Session already exists", "REUSE")
    t_reuse = time.monotonic()
    reuse = qemu("-a", f"CREATE=L:{label},REUSE,WAITC:1", "--base", str(vmroot), env=env)
    assert reuse.returncode == 0 and reuse.stdout.startswith(f"REUSE localhost: {label}: running")
    assert time.monotonic() - t_reuse >= 1.0          # WAITC honoured

    lst = qemu("-a", "LIST=MACHINE", env=env)
    assert lst.returncode == 0, lst.stderr
    rec = [l.split(";") for l in lst.stdout.splitlines() if l.split(";")[2] == label]
    assert len(rec) == 1
    r = rec[0]
    assert len(r) == 22
    # the helper conf has NIC= (no interface), so LIST has no MAC for it
    assert r[1] == "QEMU" and r[3] == str(conf) and r[4] == uuid and r[5] == ""
    assert r[6] == "10.0.0.7" and r[13] == "SERVER" and r[10].isdigit()
    terse = qemu("-a", "LIST=LABEL,ID", "-X", env=env)
    assert f"{label};{conf}" in terse.stdout.splitlines()

    t0 = time.monotonic()
    c = qemu("-a", f"CANCEL=L:{label},POWEROFF:5", env=env)
    assert c.returncode == 0, c.stderr
    assert c.stdout.startswith(f"POWEROFF-SERVER localhost: {label}: ")
    assert dom.state()[0] == libvirt.VIR_DOMAIN_SHUTOFF
    assert time.monotonic() - t0 < 30
    gone = qemu("-a", "LIST=MACHINE", env=env)
    assert label not in [l.split(";")[2] for l in gone.stdout.splitlines()]
    not_running = qemu("-a", f"CANCEL=L:{label}", env=env)
    one_error(not_running, 4, "not running")


@pytest.mark.libvirt
def test_cancel_unknown_vm(env, libvirt_conn):
    one_error(qemu("-a", "CANCEL=L:ctystest-nosuchvm-x", env=env), 2, "no VM matches L:ctystest-nosuchvm-x")


@pytest.mark.libvirt
def test_info(env, libvirt_conn):
    p = qemu("-a", "INFO", env=env)
    assert p.returncode == 0 and "libvirt version:" in p.stdout
    t = qemu("-a", "INFO", "-X", env=env)
    assert t.stdout.strip().split(";")[1] == "QEMU"
