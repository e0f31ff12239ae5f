"""Inventory store: SQLite WAL, atomic replace per base, enum.fdb/macmap.fdb, corruption."""
from __future__ import annotations

import multiprocessing
import os
import sqlite3
import time

import pytest

from ctys_libvirt.inventory import collect
from ctys_libvirt.ctys.enum_record import join_record, split_record
from ctys_libvirt.inventory.scan import scan
from ctys_libvirt.inventory.store import Store
from inv_helpers import mac_of, uuid_of, write_conf


def _labels(store):
    return sorted(r[2] for r in store.all_records())


def test_wal_mode_and_schema(tmp_path):
    with Store(tmp_path / "db" / "inv.sqlite") as st:
        assert st.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert st.count() == 0
        assert st.warnings == []


def test_update_db_and_records_from_db(tmp_path):
    write_conf(tmp_path / "vms", "a", uuid=uuid_of(1), mac=mac_of(1), ip="10.0.0.1")
    write_conf(tmp_path / "vms", "b", uuid=uuid_of(2))
    db = tmp_path / "inv.sqlite"
    res = collect.enumerate_local([tmp_path / "vms"], update_db=True, db=db)
    stored = collect.records_from_db(db)
    assert stored.records == sorted(res.records, key=lambda r: r[3])
    assert stored.vms == 2


def test_replace_is_per_base_path(tmp_path):
    a1 = write_conf(tmp_path / "base1", "a1")
    write_conf(tmp_path / "base2", "b1")
    db = tmp_path / "inv.sqlite"
    collect.enumerate_local([tmp_path / "base1", tmp_path / "base2"], update_db=True, db=db)
    with Store(db) as st:
        assert _labels(st) == ["a1", "b1"]
    # VM removed below base1 and one added: rescanning base1 only must keep base2's VM
    a1.unlink()
    write_conf(tmp_path / "base1", "a2")
    collect.enumerate_local([tmp_path / "base1"], update_db=True, db=db)
    with Store(db) as st:
        assert _labels(st) == ["a2", "b1"]


def test_prefix_sibling_directory_not_replaced(tmp_path):
    # /x/vm and /x/vm2: replacing base /x/vm must not touch /x/vm2
    write_conf(tmp_path / "vm", "in1")
    write_conf(tmp_path / "vm2", "in2")
    db = tmp_path / "inv.sqlite"
    collect.enumerate_local([tmp_path / "vm", tmp_path / "vm2"], update_db=True, db=db)
    for p in (tmp_path / "vm").rglob("*.ctys"):
        p.unlink()
    collect.enumerate_local([tmp_path / "vm"], update_db=True, db=db)
    with Store(db) as st:
        assert _labels(st) == ["in2"]


def test_missing_base_does_not_wipe_its_rows(tmp_path):
    write_conf(tmp_path / "base", "keep")
    db = tmp_path / "inv.sqlite"
    collect.enumerate_local([tmp_path / "base"], update_db=True, db=db)
    os.rename(tmp_path / "base", tmp_path / "moved")
    res = collect.enumerate_local([tmp_path / "base"], update_db=True, db=db)
    assert "does not exist" in res.warnings[0]
    with Store(db) as st:
        assert _labels(st) == ["keep"]


def test_find_exact(tmp_path):
    write_conf(tmp_path, "vm1", uuid=uuid_of(1), mac="00:50:56:AA:00:01", ip="10.0.0.1")
    write_conf(tmp_path, "vm10", uuid=uuid_of(10), mac="00:50:56:AA:00:10", ip="10.0.0.10")
    with Store(tmp_path / "inv.sqlite") as st:
        st.replace_base(tmp_path, scan([tmp_path]).headers)
        p1 = str(tmp_path / "vm1" / "vm1.ctys")
        assert st.find(label="vm1") == [p1]
        assert st.find(uuid=uuid_of(1)) == [p1]
        assert st.find(mac="00:50:56:aa:00:01") == [p1]
        assert st.find(mac="00-50-56-AA-00-01") == [p1]
        assert st.find(tcp="10.0.0.1") == [p1]
        assert st.find(filename="vm1.ctys") == [p1]
        assert st.find(label="vm") == []
        assert st.find(label="vm1", uuid=uuid_of(10)) == []
        assert st.find(label="vm1", under=[str(tmp_path / "other")]) == []


def test_enum_fdb_round_trip(tmp_path, shared_dir):
    db1 = tmp_path / "one.sqlite"
    collect.enumerate_local([shared_dir / "examples" / "confs"], update_db=True, db=db1)
    write_conf(tmp_path / "more", "semi", extra='#@#USTRG = "a;b"', mac="00:50:56:00:00:01",
               ip="10.1.1.1", uuid=uuid_of(7))
    collect.enumerate_local([tmp_path / "more"], update_db=True, db=db1)
    fdb = tmp_path / "enum.fdb"
    with Store(db1) as st:
        n = st.export_enum_fdb(fdb)
        original = sorted(st.all_records())
    lines = fdb.read_text().splitlines()
    assert n == len(lines) == 4
    assert lines == sorted(lines)
    assert all(len(split_record(l)) == 47 for l in lines)
    assert "a\\;b" in fdb.read_text()           # the ';' inside a value is escaped
    db2 = tmp_path / "two.sqlite"
    with Store(db2) as st:
        count, warns = st.import_enum_fdb(fdb)
        assert count == 4 and warns == []
        assert sorted(st.all_records()) == original
        st.export_enum_fdb(tmp_path / "again.fdb")
    assert (tmp_path / "again.fdb").read_text() == fdb.read_text()


def test_enum_fdb_import_legacy_lines(tmp_path):
    legacy = ";".join(["app2", "QEMU", "tst1", "/vm/tst1/tst1.ctys", "u1", "00:50:56:13:11:40",
                       "10.0.0.1"] + [""] * 36)  # 43 fields, as old writers produced
    bad = "too;few;fields"
    fdb = tmp_path / "enum.fdb"
    fdb.write_text(legacy + "\n" + bad + "\n\n")
    with Store(tmp_path / "x.sqlite") as st:
        count, warns = st.import_enum_fdb(fdb)
        assert count == 1
        assert warns == [f"{fdb}:2: record has 3 fields (expected 43..47); line skipped"]
        rec = st.all_records()[0]
        assert rec[:7] == ["app2", "QEMU", "tst1", "/vm/tst1/tst1.ctys", "u1", "00:50:56:13:11:40", "10.0.0.1"]
        assert len(rec) == 47
        assert st.find(mac="00:50:56:13:11:40") == ["/vm/tst1/tst1.ctys"]


def test_macmap_round_trip(tmp_path):
    mm = tmp_path / "macmap.fdb"
    mm.write_text("tst1;00:50:56:13:11:40;172.20.6.40;\n# comment\nbroken\ntst2;00:50:56:13:11:41;172.20.6.41;\n")
    with Store(tmp_path / "x.sqlite") as st:
        n, warns = st.import_macmap(mm)
        assert n == 2 and len(warns) == 1 and ":3:" in warns[0]
        assert st.ip_for_mac("00:50:56:13:11:41") == "172.20.6.41"
        out = tmp_path / "out.fdb"
        st.export_macmap(out)
    assert out.read_text() == ("tst1;00:50:56:13:11:40;172.20.6.40;\n"
                               "tst2;00:50:56:13:11:41;172.20.6.41;\n")


def test_corrupt_db_is_set_aside_and_rebuilt(tmp_path):
    db = tmp_path / "inv.sqlite"
    db.write_bytes(b"this is not an sqlite database at all" * 100)
    st = Store(db)
    try:
        assert st.count() == 0
        assert len(st.warnings) == 1 and "moved to" in st.warnings[0]
    finally:
        st.close()
    aside = [p for p in tmp_path.iterdir() if ".corrupt-" in p.name]
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not")


def test_truncated_db_is_set_aside(tmp_path):
    db = tmp_path / "inv.sqlite"
    write_conf(tmp_path / "v", "a")
    collect.enumerate_local([tmp_path / "v"], update_db=True, db=db)
    for side in ("-wal", "-shm"):
        p = tmp_path / ("inv.sqlite" + side)
        if p.exists():
            p.unlink()
    data = db.read_bytes()
    db.write_bytes(data[:100] + b"\xff" * 200)  # header kept, pages destroyed
    st = Store(db)
    try:
        assert st.count() == 0 and st.warnings
    finally:
        st.close()


def test_open_existing_never_raises_on_garbage(tmp_path):
    db = tmp_path / "g.sqlite"
    db.write_bytes(b"garbage" * 50)
    assert Store.open_existing(db) is None
    assert db.read_bytes() == b"garbage" * 50     # lookups never move the user's file


def _writer(db, base, rounds):
    from ctys_libvirt.inventory.scan import scan as _scan
    from ctys_libvirt.inventory.store import Store as _Store

    headers = _scan([base]).headers
    with _Store(db) as st:
        for _ in range(rounds):
            st.replace_base(base, headers)


def test_concurrent_scans_and_reads_do_not_corrupt_or_block(tmp_path):
    for i in range(200):
        write_conf(tmp_path / "b1", f"x{i}", uuid=uuid_of(i))
        write_conf(tmp_path / "b2", f"y{i}", uuid=uuid_of(1000 + i))
    db = tmp_path / "inv.sqlite"
    Store(db).close()
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(db), str(tmp_path / b), 15)) for b in ("b1", "b2")]
    for p in procs:
        p.start()
    slowest = 0.0
    counts = set()
    with Store(db) as st:
        while any(p.is_alive() for p in procs):
            t0 = time.monotonic()
            n = st.count()
            slowest = max(slowest, time.monotonic() - t0)
            counts.add(n)
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    # readers only ever see whole per-base sets: 0, 200 or 400 rows
    assert counts <= {0, 200, 400}
    assert slowest < 1.0
    with Store(db) as st:
        assert st.count() == 400
        assert st.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
