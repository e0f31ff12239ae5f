"""Machine-address resolution (ctys-cli.md §3): exact matching, precedence, ambiguity."""
from __future__ import annotations

import os
import time

import pytest

from ctys_libvirt.errors import AmbiguousAddressError, NotFoundError, UsageError
from ctys_libvirt.inventory import collect
from ctys_libvirt.inventory.address import resolve_conf_path
from ctys_libvirt.inventory.store import Store
from support.confs import write_header_conf

U1 = "3f2a6c1e9b7d4e0a8c5b1d2e3f4a5b6c"
U1_DASHED = "3F2A6C1E-9B7D-4E0A-8C5B-1D2E3F4A5B6C"


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """vm1 / vm10 / vm100 traps, a shared UUID pair, and an empty DB path."""
    monkeypatch.setenv("CTYS_INVENTORY_DB", str(tmp_path / "none.sqlite"))
    base = tmp_path / "vms"
    p = {
        "vm1": write_header_conf(base, "vm1", uuid=U1, mac="00:50:56:AA:00:01", ip="10.0.0.1"),
        "vm10": write_header_conf(base, "vm10", uuid="ab" * 16, mac="00:50:56:aa:00:10", ip="10.0.0.10"),
        "vm100": write_header_conf(base, "vm100", uuid="cd" * 16, mac="00:50:56:aa:01:00", ip="10.0.0.100"),
        "twinA": write_header_conf(base / "grpA", "twin", uuid="ee" * 16),
        "twinB": write_header_conf(base / "grpB", "twin", uuid="ff" * 16),
    }
    return base, p


def r(addr, base, **kw):
    return resolve_conf_path(addr, [base], **kw)


def test_conf_path_and_vm_dir(tree):
    base, p = tree
    assert r(str(p["vm1"]), base) == p["vm1"]
    assert r(str(p["vm1"].parent), base) == p["vm1"]
    assert r(str(p["vm1"].parent) + "/", base) == p["vm1"]


def test_bare_label_exact_not_prefix(tree):
    base, p = tree
    assert r("vm1", base) == p["vm1"]
    assert r("vm10", base) == p["vm10"]
    with pytest.raises(NotFoundError, match="no QEMU VM matches L:vm"):
        r("vm", base)


@pytest.mark.parametrize("addr,key", [
    ("L:vm1", "vm1"), ("LABEL:vm10", "vm10"),
    (f"U:{U1}", "vm1"), (f"UUID:{U1_DASHED}", "vm1"), (f"u:{U1_DASHED.lower()}", "vm1"),
    ("M:00:50:56:aa:00:01", "vm1"), ("MAC:00:50:56:AA:00:10", "vm10"), ("m:00-50-56-AA-01-00", "vm100"),
    ("T:10.0.0.1", "vm1"), ("TCP:10.0.0.10", "vm10"),
    ("F:vm1.ctys", "vm1"), ("F:vm10", "vm10"), ("FILENAME:vm100/vm100.ctys", "vm100"),
    ("L:vm1,U:" + U1, "vm1"),
])
def test_address_forms_exact(tree, addr, key):
    base, p = tree
    assert r(addr, base) == p[key]


def test_pname_and_id(tree):
    base, p = tree
    assert r(f"P:{p['vm10']}", base) == p["vm10"]
    assert r(f"I:{p['vm10']}", base) == p["vm10"]
    assert r(f"ID:{p['vm10'].parent}", base) == p["vm10"]


def test_pname_missing_file(tree):
    base, p = tree
    with pytest.raises(NotFoundError, match="no such conf file"):
        r(f"P:{base}/nope/nope.ctys", base)


def test_pname_contradicting_label(tree):
    base, p = tree
    with pytest.raises(NotFoundError, match="does not match"):
        r(f"P:{p['vm1']},L:vm10", base)


def test_contradicting_parts_not_found(tree):
    base, _ = tree
    with pytest.raises(NotFoundError):
        r(f"L:vm10,U:{U1}", base)


def test_ip_prefix_trap(tree):
    base, _ = tree
    with pytest.raises(NotFoundError):
        r("T:10.0.0", base)


def test_filename_substring_trap(tree):
    base, _ = tree
    with pytest.raises(NotFoundError):
        r("F:m1", base)


def test_ambiguous_label_lists_candidates(tree):
    base, p = tree
    with pytest.raises(AmbiguousAddressError) as ei:
        r("L:twin", base)
    assert sorted(ei.value.candidates) == sorted([str(p["twinA"]), str(p["twinB"])])
    assert str(p["twinA"]) in str(ei.value) and ei.value.exit_code == 2


def test_ambiguity_resolved_by_basepath(tree):
    base, p = tree
    assert r(f"L:twin,B:{base / 'grpA'}", base) == p["twinA"]
    assert r(f"L:twin,U:{'ff' * 16}", base) == p["twinB"]


def test_not_found_names_address_and_bases(tree):
    base, _ = tree
    with pytest.raises(NotFoundError) as ei:
        r("L:ghost", base)
    msg = ei.value.one_line()
    assert "L:ghost" in msg and str(base) in msg and "give the conf path, or --base DIR" in msg


def test_missing_base_path(tree):
    base, _ = tree
    with pytest.raises(NotFoundError, match="base path .* does not exist"):
        r(f"L:vm1,B:{base}/nope", base)


def test_bad_uuid_and_mac_are_usage_errors(tree):
    base, _ = tree
    with pytest.raises(UsageError, match="not a UUID"):
        r("U:1234", base)
    with pytest.raises(UsageError, match="not a MAC"):
        r("M:00:50", base)


def test_nonexistent_path_form(tree):
    base, _ = tree
    with pytest.raises(NotFoundError, match="no such conf file or VM directory"):
        r(str(base / "nope" / "x.ctys"), base)


def test_default_base_is_home(tree, monkeypatch):
    base, p = tree
    monkeypatch.setenv("HOME", str(base))
    assert resolve_conf_path("vm100") == p["vm100"]


def test_ignored_conf_not_resolvable(tmp_path, monkeypatch):
    monkeypatch.setenv("CTYS_INVENTORY_DB", str(tmp_path / "none.sqlite"))
    write_header_conf(tmp_path, "off", extra="#@#MAGICID-IGNORE")
    with pytest.raises(NotFoundError):
        resolve_conf_path("off", [tmp_path])


# -- inventory first, then filesystem ------------------------------------------------

def test_inventory_hit_without_scan(tree, monkeypatch):
    base, p = tree
    db = base.parent / "inv.sqlite"
    collect.enumerate_local([base], update_db=True, db=db)
    import ctys_libvirt.inventory.address as addrmod

    def no_scan(*a, **kw):
        raise AssertionError("filesystem scanned although the inventory knew the VM")

    monkeypatch.setattr(addrmod, "scan", no_scan)
    assert resolve_conf_path("M:00:50:56:AA:00:10", [base], db=db) == p["vm10"]
    assert resolve_conf_path(f"U:{U1_DASHED}", [base], db=db) == p["vm1"]
    assert resolve_conf_path("vm1", [base], db=db) == p["vm1"]
    with pytest.raises(AmbiguousAddressError):
        resolve_conf_path("L:twin", [base], db=db)


def test_stale_inventory_falls_back_to_scan(tree):
    base, p = tree
    db = base.parent / "inv.sqlite"
    collect.enumerate_local([base], update_db=True, db=db)
    # the VM moved after the inventory was built
    new = base / "moved"
    os.rename(p["vm100"].parent, new)
    os.rename(new / "vm100.ctys", new / "moved.ctys")
    assert resolve_conf_path("L:vm100", [base], db=db) == new / "moved.ctys"


def test_inventory_outside_bases_ignored(tree, tmp_path):
    base, p = tree
    other = tmp_path / "other"
    write_header_conf(other, "vm1", uuid="12" * 16)
    db = tmp_path / "inv.sqlite"
    collect.enumerate_local([other], update_db=True, db=db)
    assert resolve_conf_path("L:vm1", [base], db=db) == p["vm1"]


def test_dbrecord(tree):
    base, p = tree
    db = base.parent / "inv.sqlite"
    collect.enumerate_local([base], update_db=True, db=db)
    with Store(db) as st:
        recs = st.all_records()
    idx = next(i for i, rec in enumerate(recs) if rec[2] == "vm10")
    assert resolve_conf_path(f"DR:{idx}", [base], db=db) == p["vm10"]
    with pytest.raises(NotFoundError, match="no such inventory record"):
        resolve_conf_path("DR:999", [base], db=db)


def test_dbrecord_without_db(tree):
    base, _ = tree
    with pytest.raises(NotFoundError, match="no inventory database"):
        resolve_conf_path("DR:0", [base], db=base.parent / "absent.sqlite")


def test_corrupt_db_is_rebuilt_with_warning_and_resolution_goes_on(tree):
    base, p = tree
    db = base.parent / "bad.sqlite"
    db.write_bytes(b"junk" * 300)
    found = []
    assert resolve_conf_path("vm1", [base], db=db, warnings=found) == p["vm1"]
    assert len(found) == 1 and "moved to" in found[0] and "rebuilt" in found[0]
    aside = [x for x in base.parent.iterdir() if x.name.startswith("bad.sqlite.corrupt-")]
    assert len(aside) == 1 and aside[0].read_bytes() == b"junk" * 300
    assert Store.open_existing(db) is not None          # a usable empty DB now
    found.clear()
    assert resolve_conf_path("vm10", [base], db=db, warnings=found) == p["vm10"]
    assert found == []


def test_lookup_in_10000_vm_inventory_is_fast(tmp_path):
    db = tmp_path / "inv.sqlite"
    recs = []
    for i in range(10000):
        f = [""] * 47
        f[:7] = ["h", "QEMU", f"vm{i}", f"/nonexist/vm{i}/vm{i}.ctys", f"{i:032x}",
                 f"00:50:56:{i >> 16 & 255:02X}:{i >> 8 & 255:02X}:{i & 255:02X}", f"10.0.{i >> 8}.{i & 255}"]
        recs.append(f)
    with Store(db) as st:
        st.replace_records("/nonexist", recs)
        t0 = time.perf_counter()
        for i in range(0, 10000, 100):
            assert st.find(label=f"vm{i}") == [f"/nonexist/vm{i}/vm{i}.ctys"]
            assert st.find(mac=recs[i][5].lower()) == [f"/nonexist/vm{i}/vm{i}.ctys"]
        per = (time.perf_counter() - t0) / 200
    assert per < 0.02
