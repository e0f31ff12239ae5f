#!/usr/bin/env python3
"""Bulk define benchmark (run as root with libvirtd up: `.venv/bin/python bench/define.py`):

1. `ctys-libvirt define --all --base DIR` of N confs (one process, one connection; the
   confs translated in the calling thread, the libvirt calls in worker threads)
   vs N `virsh define FILE` calls of the same XML (what an admin scripts today;
   goal: ratio <= 0.15);
2. the same vs the floor: an in-process `defineXML` loop of the same XML on one
   connection (goal: ratio <= 1.5);
3. for information: the second `define --all` (every row "unchanged": lookups and merges,
   no writes) and `--threads 1`.
Every domain is undefined between the runs and at the end; ctysbench-define- names only."""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
import uuid as uuidlib
from pathlib import Path

import libvirt

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))     # support.domains: the one domain purge

from support.domains import purge_domain  # noqa: E402
CTYS = str(REPO / ".venv" / "bin" / "ctys-libvirt")
URI = os.environ.get("CTYS_BENCH_URI", "qemu:///system")
ROOT = Path("/var/tmp/ctys-bench-define")
PREFIX = "ctysbench-define-"


def write_confs(n: int) -> list:
    shutil.rmtree(ROOT, ignore_errors=True)
    ROOT.mkdir(parents=True)
    os.chmod(ROOT, 0o755)
    image = ROOT / "hda.img"
    shutil.copyfile(REPO / "examples" / "guests" / "hello.img", image)
    confs = []
    for i in range(n):
        label = f"{PREFIX}{i:04d}"
        d = ROOT / "estate" / label
        d.mkdir(parents=True)
        conf = d / f"{label}.ctys"
        conf.write_text(
            "#@#MAGICID-QEMU\n"
            f'#@#LABEL = "{label}"\nLABEL="{label}"\n'
            f'#@#UUID = "{uuidlib.uuid4().hex}"\n'
            f'HDDBOOTIMAGE="{image}"\n'
            f"ACCELERATOR=QEMU\nMEMSIZE={16 + i % 8}\nSMP=1\nNIC=e1000\n")
        confs.append(conf)
    return confs


def purge_all(conn) -> None:
    for d in conn.listAllDomains(0):
        if d.name().startswith(PREFIX):
            purge_domain(conn, d.name())


def count(conn) -> int:
    return sum(1 for d in conn.listAllDomains(0) if d.name().startswith(PREFIX))


def timed(argv) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"bench: {' '.join(argv[:3])}... failed: {p.stderr.strip()[:300]}")
    return dt


def xml_of(conn, confs) -> list:
    """What `define` writes for each conf (the merged XML with our baseline)."""
    from ctys_libvirt.backends.libvirt import normal_request
    from ctys_libvirt.coexist.merge import merge
    from ctys_libvirt.conf import load_conf
    from ctys_libvirt.host.caps import libvirt_host_caps
    from ctys_libvirt.host.facts import host_facts
    from ctys_libvirt.translate.xml import build_domain

    caps = host_facts(libvirt_host_caps(conn))
    out = []
    for c in confs:
        vm = load_conf(c)
        out.append(merge(None, build_domain(vm, normal_request(vm), caps).xml, conf_path=str(c)).xml)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=300, help="number of confs (default 300)")
    args = ap.parse_args()
    n = args.n
    # bytecode as an installed package has it (PYTHONDONTWRITEBYTECODE would otherwise make
    # every CLI run compile the modules it imports)
    import compileall

    compileall.compile_dir(str(REPO / "ctys_libvirt"), quiet=1)
    conn = libvirt.open(URI)
    purge_all(conn)
    confs = write_confs(n)
    base = str(ROOT / "estate")
    try:
        ours = timed([CTYS, "define", "--all", "--base", base])
        assert count(conn) == n, count(conn)
        again = timed([CTYS, "define", "--all", "--base", base])
        purge_all(conn)
        one = timed([CTYS, "define", "--all", "--base", base, "--threads", "1"])
        purge_all(conn)

        xmls = xml_of(conn, confs)
        files = []
        for i, x in enumerate(xmls):
            f = ROOT / f"{i:04d}.xml"
            f.write_text(x)
            files.append(str(f))
        t0 = time.perf_counter()
        for f in files:
            p = subprocess.run(["virsh", "-c", URI, "define", f], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
            if p.returncode != 0:
                raise SystemExit(f"bench: virsh define {f}: {p.stderr.strip()}")
        virsh = time.perf_counter() - t0
        assert count(conn) == n
        purge_all(conn)

        t0 = time.perf_counter()
        for x in xmls:
            conn.defineXML(x)
        floor = time.perf_counter() - t0
        assert count(conn) == n
        purge_all(conn)
    finally:
        purge_all(conn)
        conn.close()
        shutil.rmtree(ROOT, ignore_errors=True)
    print(f"define : {n} confs: ctys-libvirt define --all {ours:.2f}s; {n}x virsh define {virsh:.2f}s "
          f"ratio {ours / virsh:.3f} (goal <= 0.15)")
    print(f"define : in-process defineXML loop (floor) {floor:.2f}s ratio {ours / floor:.2f} (goal <= 1.5)")
    print(f"define : again, all unchanged {again:.2f}s; --threads 1 {one:.2f}s")
    print(f"summary: virsh_ratio={ours / virsh:.3f}, floor_ratio={ours / floor:.3f}")


if __name__ == "__main__":
    sys.exit(main())
