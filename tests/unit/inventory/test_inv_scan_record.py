"""ENUMERATE scan and the 47-field records (qemu-plugin-runtime.md §5, conf-format.md §1.3)."""
from __future__ import annotations

import getpass
import grp
import os
import shutil
import socket

import pytest

from ctys_libvirt.inventory import collect
from ctys_libvirt.ctys.enum_record import FIELD_NAMES, NFIELDS, join_record, split_record
from ctys_libvirt.inventory.record import header_records
from ctys_libvirt.inventory.scan import read_header, scan
from support.confs import write_header_conf

HOST = socket.gethostname()
USER = getpass.getuser()
GROUP = grp.getgrgid(os.getgid()).gr_name


def expected_example_records(root):
    """The records of the three shared example confs, field by field (canonical order)."""
    tail = ";" * 11  # fields 19 (VMstate) .. 29 (hyperrelrun) are empty for these confs
    return [
        f"{HOST};QEMU;centos55;{root}/centos55/centos55.ctys;9c1e5a2b7f3d48e6a0b4c2d1e8f7a6b5;"
        f"00:50:56:13:11:41;172.20.6.41;;;;;CentOS;5.5;Linux;2.6.18-194.el5;01.11.018;"
        f"20110307113000;VM;{tail}QEMU;;;0;;;;;i686;;512;1;;;{USER};{GROUP};VNC;VNC",
        f"{HOST};QEMU;debian5;{root}/debian5/debian5.ctys;3f2a6c1e9b7d4e0a8c5b1d2e3f4a5b6c;"
        f"00:50:56:13:11:40;172.20.6.40;;;;;debian;5.0.8;Linux;2.6.26-2-amd64;01.11.018;"
        f"20110307101500;VM;{tail}KVM;/usr/libexec/qemu-kvm;;0;;;;;x86_64;;1024;2;;;{USER};{GROUP};VNC;VNC",
        f"{HOST};QEMU;kvmkern;{root}/kvmkern/kvmkern.ctys;5d4c3b2a19f8e7d6c5b4a39281706f5e;"
        f"00:50:56:13:11:42;172.20.6.42;;;;;debian;6.0.1;Linux;2.6.32-5-amd64;01.11.018;"
        f"20110307120000;VM;{tail}KVM;/usr/libexec/qemu-kvm;;0;;;;;x86_64;;2048;4;;;{USER};{GROUP};CLI;CLI",
    ]


def test_example_confs_records_exact(shared_dir):
    root = shared_dir / "examples" / "confs"
    res = collect.enumerate_local([root])
    assert res.warnings == []
    lines = [join_record(r) for r in res.records]
    assert lines == expected_example_records(root)
    assert all(len(r) == NFIELDS for r in res.records)


def test_example_field_semantics(shared_dir):
    res = collect.enumerate_local([shared_dir / "examples" / "confs"])
    deb = next(r for r in res.records if r[2] == "debian5")
    named = dict(zip(FIELD_NAMES, deb))
    assert named["SessionType"] == "QEMU" and named["Category"] == "VM"
    assert named["VRAM"] == "1024" and named["VCPU"] == "2"      # MEMSIZE/SMP, not ' -m'
    assert named["IFname"] == "0"                                  # interface index default
    assert named["DefCONSOLE"] == "VNC"


def test_magicid_rules(tmp_path):
    write_header_conf(tmp_path, "ok")
    write_header_conf(tmp_path, "ign", extra="#@#MAGICID-IGNORE")
    write_header_conf(tmp_path, "noenum", extra="# backup copy #@#MAGICID-NOENUM inside a comment")
    write_header_conf(tmp_path, "nomagic", magic="#@#MAGICID-do-not-IGNORE =>ACTIVATED")
    write_header_conf(tmp_path, "other", magic="#@#MAGICID-VMW")
    # a .conf next to an accepted .ctys is looked at (01.07 layout) but the .ctys is the VM's
    # conf: listed once, no redundancy warning; a .conf without a .ctys sibling is never read
    (tmp_path / "ok" / "ok.conf").write_text("#@#MAGICID-QEMU\n")
    (tmp_path / "ok" / "alone.conf").write_text("#@#MAGICID-QEMU\n")
    res = scan([tmp_path])
    assert [h.label for h in res.headers] == ["ok"]
    assert [h.path for h in res.headers] == [str(tmp_path / "ok" / "ok.ctys")]
    assert res.files_seen == 6 and res.warnings == []


def test_include_ignored(tmp_path):
    write_header_conf(tmp_path, "ign", extra="#@#MAGICID-IGNORE")
    assert [h.label for h in scan([tmp_path], include_ignored=True).headers] == ["ign"]


def test_key_line_syntax(tmp_path):
    p = write_header_conf(tmp_path, "k", extra="\n".join([
        "\t#@#DIST\t=  'Debian GNU'",          # tabs deleted, ' -> ", blanks -> _
        "#@#UUID=3f2a6c1e-9b7d-4e0a-8c5b-1d2e3f4a5b6c",
        '#@#UUID = "ffffffffffffffffffffffffffffffff"',  # first wins
        '#_@#VNCACCESSDISPLAY = "7"',          # disabled key
        "#@#OSREL = ",                          # empty value
    ]))
    h = read_header(p)
    r = header_records(h)[0]
    assert r[11] == "Debian_GNU"
    assert r[4] == "3f2a6c1e9b7d4e0a8c5b1d2e3f4a5b6c"
    assert r[7] == ""          # display from disabled key not used
    assert r[14] == ""


def test_multi_homed_one_record_per_interface(tmp_path):
    p = write_header_conf(tmp_path, "mh", mac="00:50:56:aa:bb:01", ip="10.0.0.1%255.0.0.0%br0%eth0%2222%10.0.0.254",
                   extra='#@#MAC1 = "00:50:56:aa:bb:02"\n#@#IP1 = "10.0.1.1"')
    recs = header_records(read_header(p))
    assert [(r[5], r[6], r[32], r[34], r[35], r[36], r[26]) for r in recs] == [
        ("00:50:56:AA:BB:01", "10.0.0.1", "eth0", "255.0.0.0", "10.0.0.254", "br0", "2222"),
        ("00:50:56:AA:BB:02", "10.0.1.1", "1", "", "", "", ""),
    ]


def test_no_interface_one_record(tmp_path):
    recs = header_records(read_header(write_header_conf(tmp_path, "plain")))
    assert len(recs) == 1 and recs[0][5] == "" and recs[0][6] == ""


def test_label_falls_back_to_stem(tmp_path):
    d = tmp_path / "x"
    d.mkdir()
    (d / "x.ctys").write_text("#@#MAGICID-QEMU\n")
    assert scan([tmp_path]).headers[0].label == "x"


def test_unreadable_conf_is_a_warning_not_an_abort(tmp_path):
    if os.geteuid() == 0:
        # root reads everything: make an unreadable entry another way (a dangling *.ctys link)
        write_header_conf(tmp_path, "a")
        (tmp_path / "b").mkdir()
        os.symlink(tmp_path / "nowhere", tmp_path / "b" / "b.ctys")
        write_header_conf(tmp_path, "c")
        # a broken link is not a regular file: find -type f skips it as well
        res = scan([tmp_path])
        assert [h.label for h in res.headers] == ["a", "c"]
        # a directory we cannot list: simulate with a file that vanishes between walk and read
        bad = write_header_conf(tmp_path, "d")
        import ctys_libvirt.inventory.scan as sc

        real = sc.read_header

        def flaky(path, **kw):
            if str(path) == str(bad):
                raise PermissionError(13, "Permission denied")
            return real(path, **kw)

        sc.read_header = flaky
        try:
            res = scan([tmp_path])
        finally:
            sc.read_header = real
        assert [h.label for h in res.headers] == ["a", "c"]
        assert res.warnings == [f"cannot read {bad}: Permission denied"]
    else:  # pragma: no cover - the suite runs as root
        p = write_header_conf(tmp_path, "a")
        os.chmod(p, 0)
        res = scan([tmp_path])
        assert res.headers == [] and "cannot read" in res.warnings[0]


def test_broken_conf_with_full_parse_is_reported_per_file(tmp_path):
    pytest.importorskip("ctys_libvirt.conf", reason="conf reader")
    from ctys_libvirt import conf as confmod

    if not hasattr(confmod, "load_conf"):
        pytest.skip("conf reader not available yet")
    write_header_conf(tmp_path, "good", body="MEMSIZE=64\nSMP=2\n")
    write_header_conf(tmp_path, "bad", body="X=$(rm -rf /)\n")
    res = scan([tmp_path], full=True)
    assert [h.label for h in res.headers] == ["good"]
    assert len(res.warnings) == 1 and "bad.ctys" in res.warnings[0]
    assert res.headers[0].shell["MEMSIZE"] == "64"


def test_missing_base_is_a_warning(tmp_path):
    write_header_conf(tmp_path, "a")
    res = scan([tmp_path / "nope", tmp_path])
    assert [h.label for h in res.headers] == ["a"]
    assert res.warnings == [f"base path {tmp_path / 'nope'} does not exist or is not a directory"]


def test_duplicate_stem_in_one_directory_warns_and_skips(tmp_path):
    write_header_conf(tmp_path, "vm", stem="vm")
    write_header_conf(tmp_path, "vm", stem="vm.old", dirname="vm")
    res = scan([tmp_path])
    assert [h.path for h in res.headers] == [str(tmp_path / "vm" / "vm.ctys")]
    assert len(res.warnings) == 1 and res.warnings[0].startswith("Configuration-Redundancy")


def test_same_stem_in_different_directories_both_listed(tmp_path):
    write_header_conf(tmp_path / "a", "vm")
    write_header_conf(tmp_path / "b", "vm")
    assert len(scan([tmp_path]).headers) == 2


def test_symlinked_dirs_not_followed(tmp_path):
    write_header_conf(tmp_path / "real", "a")
    os.symlink(tmp_path / "real", tmp_path / "link")
    assert len(scan([tmp_path]).headers) == 1


def test_overlapping_bases_list_each_conf_once(tmp_path):
    write_header_conf(tmp_path, "a")
    res = scan([tmp_path, tmp_path / "a"])
    assert len(res.headers) == 1


def test_default_base_is_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    write_header_conf(tmp_path / "vms", "h")
    assert [h.label for h in scan().headers] == ["h"]


def test_matchvstat_filter(tmp_path):
    write_header_conf(tmp_path, "act", extra='#@#VMSTATE = "ACTIVE"')
    write_header_conf(tmp_path, "tpl", extra='#@#VMSTATE = "TEMPLATE"')
    write_header_conf(tmp_path, "none")
    labels = lambda **kw: sorted(r[2] for r in collect.enumerate_local([tmp_path], **kw).records)
    assert labels() == ["act", "none"]
    assert labels(matchvstat=("TEMPLATE",)) == ["tpl"]
    assert labels(matchvstat=("PRESENT",)) == ["act", "none", "tpl"]
    assert labels(matchvstat=("EMPTY",)) == ["none"]


# -- escaping ----------------------------------------------------------------------

def test_escape_round_trip():
    fields = [""] * NFIELDS
    fields[2] = "we;ird\\lab\nel"
    fields[3] = "/vm/a b/x.ctys"
    line = join_record(fields)
    assert line.count(";") == NFIELDS - 1 + 1  # one escaped ';' inside a value
    assert "\n" not in line
    assert split_record(line) == fields


def test_plain_records_are_unescaped_legacy_text(shared_dir):
    res = collect.enumerate_local([shared_dir / "examples" / "confs"])
    for r in res.records:
        assert join_record(r) == ";".join(r)


def test_split_record_tolerates_43_fields_and_trailing_separator():
    assert split_record(";".join(["x"] * 43)) == ["x"] * 43 + [""] * 4
    assert split_record(";".join(["x"] * 47) + ";") == ["x"] * 47
    with pytest.raises(ValueError, match="42 fields"):
        split_record(";".join(["x"] * 42))


def test_parallel_scan_equals_serial(tmp_path):
    for i in range(40):
        write_header_conf(tmp_path / f"g{i % 10}", f"p{i}", mac=f"00:50:56:00:00:{i:02x}", ip=f"10.0.0.{i}")
    write_header_conf(tmp_path / "g0", "p0", stem="p0.old", dirname="p0")          # duplicate stem
    write_header_conf(tmp_path / "g1", "ign", extra="#@#MAGICID-IGNORE")
    (tmp_path / "loose.ctys").write_text('#@#MAGICID-QEMU\n#@#LABEL = "loose"\n')
    serial = collect.enumerate_local([tmp_path], jobs=1)
    parallel = collect.enumerate_local([tmp_path], jobs=2)
    assert parallel.records == serial.records
    assert len(serial.records) == 41
    assert sorted(parallel.warnings) == sorted(serial.warnings) and len(serial.warnings) == 1
    assert parallel.files_seen == serial.files_seen == 43
    db1, db2 = tmp_path / "s.sqlite", tmp_path / "p.sqlite"
    collect.enumerate_local([tmp_path], jobs=1, update_db=True, db=db1)
    collect.enumerate_local([tmp_path], jobs=2, update_db=True, db=db2)
    assert collect.records_from_db(db1).records == collect.records_from_db(db2).records


def test_parallel_path_is_taken_for_big_trees(tmp_path, monkeypatch):
    for i in range(20):
        write_header_conf(tmp_path, f"q{i}")
    calls = []
    real = os.fork

    def spy():
        calls.append("fork")
        return real()

    monkeypatch.setattr(collect.os, "fork", spy)
    # Other tests in the same process may leave threads (libvirt's event loop) running;
    # this test is about the single-threaded case, the guard is tested below.
    monkeypatch.setattr(collect.threading, "active_count", lambda: 1)
    assert len(collect.enumerate_local([tmp_path], jobs=2).records) == 20
    assert calls == ["fork"]
    calls.clear()
    collect.enumerate_local([tmp_path], jobs=1)
    assert calls == []
    # forking a threaded process is unsafe: with other threads alive the scan stays serial
    monkeypatch.setattr(collect.threading, "active_count", lambda: 2)
    assert len(collect.enumerate_local([tmp_path], jobs=2).records) == 20
    assert calls == []


def test_scan_cache_follows_every_change(tmp_path):
    cache = tmp_path / "cache"
    base = tmp_path / "vms"
    a = write_header_conf(base, "a", uuid="aa" * 16)
    b = write_header_conf(base, "b")
    labels = lambda: [r[2] for r in collect.enumerate_local([base], cache_dir=cache).records]
    uuids = lambda: [r[4] for r in collect.enumerate_local([base], cache_dir=cache).records]
    assert labels() == ["a", "b"]
    assert len(list(cache.iterdir())) == 1
    # same size, new content: the stat key (mtime/ctime/inode) changes
    a.write_text(a.read_text().replace("aa" * 16, "bb" * 16))
    assert uuids()[0] == "bb" * 16
    b.write_text(b.read_text() + "#@#MAGICID-IGNORE\n")
    assert labels() == ["a"]
    a.unlink()
    assert labels() == []
    write_header_conf(base, "c")
    assert labels() == ["c"]
    # the cached records equal a cold scan
    assert (collect.enumerate_local([base], cache_dir=cache).records
            == collect.enumerate_local([base]).records)


def test_scan_cache_damaged_file_is_a_cold_cache(tmp_path):
    cache = tmp_path / "cache"
    write_header_conf(tmp_path / "vms", "a")
    collect.enumerate_local([tmp_path / "vms"], cache_dir=cache)
    for f in cache.iterdir():
        f.write_bytes(b"not a database")
    assert [r[2] for r in collect.enumerate_local([tmp_path / "vms"], cache_dir=cache).records] == ["a"]


def test_scan_cache_is_data_only_a_planted_pickle_never_runs(tmp_path):
    """The cache lives in a directory others may reach ($CTYS_SCAN_CACHE_DIR): a pickle
    planted under the cache's name must never be unpickled (that would run its code)."""
    import pickle

    cache = tmp_path / "cache"
    canary = tmp_path / "canary"
    write_header_conf(tmp_path / "vms", "a")
    collect.enumerate_local([tmp_path / "vms"], cache_dir=cache)

    class Boom:
        def __reduce__(self):
            return (open, (str(canary), "w"))

    files = list(cache.iterdir())
    assert files and all(f.suffix == ".sqlite" for f in files)
    for f in files:
        f.write_bytes(pickle.dumps({"v": 2, "base": str(tmp_path / "vms"), "time": 0, "entries": Boom()}))
        f.with_suffix(".pickle").write_bytes(f.read_bytes())     # the old name too
    assert [r[2] for r in collect.enumerate_local([tmp_path / "vms"], cache_dir=cache).records] == ["a"]
    assert not canary.exists()
    # the cold scan rewrote a valid cache, which the next scan uses
    import sqlite3

    for f in cache.glob("*.sqlite"):
        assert sqlite3.connect(f).execute("SELECT count(*) FROM confs").fetchone() == (1,)


def test_scan_cache_keeps_duplicate_stem_rule_and_warnings(tmp_path):
    cache = tmp_path / "cache"
    write_header_conf(tmp_path, "vm", stem="vm")
    write_header_conf(tmp_path, "vm", stem="vm.old", dirname="vm")
    for _ in range(2):
        res = collect.enumerate_local([tmp_path], cache_dir=cache)
        assert [r[3] for r in res.records] == [str(tmp_path / "vm" / "vm.ctys")]
        assert len(res.warnings) == 1 and "Configuration-Redundancy" in res.warnings[0]


def test_scan_cache_directory_listings(tmp_path, monkeypatch):
    """Unchanged directories are not listed again; any entry added/removed shows up."""
    import time as _time

    from ctys_libvirt.inventory import collect as col

    monkeypatch.setattr(col, "RACY_NS", 0)   # trust entries at once (the test sleeps a tick)
    cache, base = tmp_path / "cache", tmp_path / "vms"
    write_header_conf(base, "a")
    write_header_conf(base, "b")
    labels = lambda: [r[2] for r in col.enumerate_local([base], cache_dir=cache).records]
    assert labels() == ["a", "b"]
    calls = []
    real = os.scandir
    monkeypatch.setattr(os, "scandir", lambda p: calls.append(p) or real(p))
    _time.sleep(0.05)
    assert labels() == ["a", "b"] and calls == []           # nothing listed again
    write_header_conf(base, "c")
    _time.sleep(0.05)
    assert labels() == ["a", "b", "c"]
    assert str(base) in calls and str(base / "a") not in calls
    write_header_conf(base, "a", stem="extra", dirname="a")         # new conf in a cached dir
    _time.sleep(0.05)
    assert labels() == ["a", "a", "b", "c"]
    shutil.rmtree(base / "b")
    _time.sleep(0.05)
    assert labels() == ["a", "a", "c"]
    assert (col.enumerate_local([base], cache_dir=cache).records
            == col.enumerate_local([base]).records)


@pytest.mark.parametrize("body,expected", [
    ("MEMSIZE=256\nSMP=1\nARCH=i386\nMEMSIZE=2048\nSMP=4\nARCH=x86_64\n",
     {"MEMSIZE": "2048", "SMP": "4", "ARCH": "x86_64"}),               # the last assignment wins
    ("MEMSIZE=256\nMEMSIZE=${MEMSIZE:-1024}\n", {"MEMSIZE": "256"}),   # a default fills only empty
    ("MEMSIZE=\nMEMSIZE=${MEMSIZE:-1024}\n", {"MEMSIZE": "1024"}),
    ("SMP=2\nSMP=$X\n", {}),                                          # computed: --full knows
    ("ARCH=${HOSTARCH:-x86_64}\n", {}),
    ("  STARTERCALL=${STARTERCALL:-/usr/bin/qemu}\n\tSTARTERCALL=${STARTERCALL:-$QEMUKVM}\n",
     {"STARTERCALL": "/usr/bin/qemu"}),
])
def test_fast_header_follows_shell_assignment_order(body, expected):
    from ctys_libvirt.inventory.scan import parse_header_bytes

    hdr = parse_header_bytes("/x/v.ctys", ("#@#MAGICID-QEMU\n" + body).encode())
    got = {k: v for k, v in hdr.shell.items() if k in ("MEMSIZE", "SMP", "ARCH", "STARTERCALL")}
    assert got == expected


def test_enumerate_cli_missing_base_path_is_not_found(tmp_path):
    from support.cli import run_cli

    r = run_cli("enumerate", tmp_path / "nope", timeout=60)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip().splitlines() == [
        f"ctys-libvirt: error: base path {tmp_path / 'nope'} does not exist "
        "(give existing directories (or .ctys files) to scan)"]


def test_matchvstat_all_lifts_availability_not_the_state_filter():
    """ctys-cli.md: ALL ignores hypervisor availability (as ctys-vdbgen's
    'matchvstat:all%active%disabled%empty' shows, it names no states); PRESENT is any."""
    from ctys_libvirt.inventory.collect import vmstate_filter

    states = ["ACTIVE", "DISABLED", "", "BACKUP", "TEMPLATE"]
    assert [s for s in states if vmstate_filter(["ALL"])(s)] == ["ACTIVE", "DISABLED", ""]
    assert [s for s in states if vmstate_filter([])(s)] == ["ACTIVE", "DISABLED", ""]
    assert [s for s in states if vmstate_filter(["all", "backup"])(s)] == ["BACKUP"]
    assert [s for s in states if vmstate_filter(["PRESENT"])(s)] == states
    assert [s for s in states if vmstate_filter(["ENABLED", "EMPTY"])(s)] == ["ACTIVE", ""]
