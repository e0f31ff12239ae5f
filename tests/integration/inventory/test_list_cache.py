"""LIST's per-domain cache (backends/libvirt_listcache.py) against the real libvirtd: a
planted value proves LIST answers from the cache, and a definition changed behind our back
(`virsh define` of an edited XML) or an edited conf is seen at once."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from pathlib import Path

from lxml import etree

from support.cli import run_cli
from support.confs import write_conf
from support.domains import unique_label
from ctys_libvirt.backends import libvirt_listcache as LC

URI = "qemu:///system"


def settle(*paths) -> None:
    """Wait until the files are older than the cache's racy window (entries younger
    than that are never trusted, so the cache would not be exercised at all)."""
    for p in paths:
        st = os.stat(p)
        left = max(st.st_mtime_ns, st.st_ctime_ns) + LC.RACY_NS - time.time_ns()
        if left > 0:
            time.sleep(left / 1e9 + 0.05)


def entry(env, label):
    p = run_cli("list", "--all", "--format", "json", "--backend", "libvirt", env=env)
    assert p.returncode == 0, p.stderr
    return [i for i in json.loads(p.stdout) if i["name"] == label][0]


def plant(cache_dir: Path, uuid: str, memory_mib=None, drift=None) -> None:
    """Rewrite the cached row of ``uuid`` (stamps kept): what LIST then shows came
    from the cache."""
    [db] = list(cache_dir.glob("domains-*.sqlite"))
    con = sqlite3.connect(str(db))
    try:
        facts, dkey = con.execute("SELECT facts, dkey FROM doms WHERE uuid=?", (uuid,)).fetchone()
        f = LC.from_json(facts)
        if memory_mib is not None:
            f.memory_kib = memory_mib * 1024
        assert dkey, "the drift was not cached"
        con.execute("UPDATE doms SET facts=?, drift=COALESCE(?, drift) WHERE uuid=?",
                    (LC.to_json(f), drift, uuid))
        con.commit()
    finally:
        con.close()


def test_list_cache_follows_virsh_define_and_conf_edits(vmroot, media, janitor, tmp_path):
    cache_dir = tmp_path / "lc"
    env = {"CTYS_LIST_CACHE_DIR": str(cache_dir), "CTYS_DRIFT_CACHE": str(tmp_path / "drift.sqlite")}
    label = janitor.add(unique_label("lcache"))
    conf = write_conf(vmroot, label, image=media["hello"], extra="NIC=rtl8139\n")
    p = run_cli("define", str(conf), env=env)
    assert p.returncode == 0, p.stderr
    defn = Path("/etc/libvirt/qemu") / f"{label}.xml"
    settle(defn, conf)
    first = entry(env, label)
    assert (first["memory_mib"], first["drift"], first["ours"]) == (16, "in sync", True)
    assert first["conf_path"] == str(conf)

    # positive control: with unchanged stamps LIST takes the cached facts and drift
    plant(cache_dir, first["uuid"], memory_mib=99, drift="planted")
    cached = entry(env, label)
    assert (cached["memory_mib"], cached["drift"]) == (99, "planted")

    # the definition changes behind our back: never the cached facts again
    xml = subprocess.run(["virsh", "-c", URI, "dumpxml", "--inactive", label], capture_output=True,
                         text=True, check=True).stdout
    root = etree.fromstring(xml.encode())
    for tag in ("memory", "currentMemory"):
        el = root.find(tag)
        el.text, el.attrib["unit"] = str(40 * 1024), "KiB"
    edited = tmp_path / "edited.xml"
    edited.write_bytes(etree.tostring(root))
    subprocess.run(["virsh", "-c", URI, "define", str(edited)], capture_output=True, check=True)
    settle(defn)        # past the racy window: only the changed stamp can tell
    now = entry(env, label)
    assert (now["memory_mib"], now["drift"]) == (40, "domain edited")

    # cached again, with the new facts and drift
    plant(cache_dir, first["uuid"], drift="planted")
    assert entry(env, label)["drift"] == "planted"

    # the conf changes: the drift is worked out again
    conf.write_text(conf.read_text().replace("MEMSIZE=16", "MEMSIZE=24"))
    settle(conf)
    assert entry(env, label)["drift"] == "conflict"
    conf.rename(conf.with_suffix(".gone"))
    assert entry(env, label)["drift"] == "conf missing"


def test_list_cache_is_not_used_for_remote_uris():
    assert LC.driver_dirs("qemu+ssh://root@127.0.0.1/system") is None
    assert LC.driver_dirs("qemu+tcp://somehost/system") is None
