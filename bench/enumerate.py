#!/usr/bin/env python3
"""ENUMERATE benchmark (design.md §8): a generated tree of N VM directories (default 10,000),
scanned by

  anchor   find TREE -name '*.ctys' | xargs grep -l MAGICID-QEMU
  library  ctys_libvirt.inventory.collect.enumerate_local([TREE])   (in process, 47-field records)
  cli      ctys-libvirt enumerate TREE --format records             (new process each run)

all in the same run (warm cache, median of --repeat runs), plus machine-address resolution from
an inventory of the same N VMs (in process, per lookup).  Prints the ratios against the anchor
(goal: scan <= 1.5x, lookup < 20 ms).

    python bench/enumerate.py [--vms 10000] [--repeat 5] [--keep DIR]
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "tests" / "data" / "legacy" / "examples" / "confs" / "debian5" / "debian5.ctys"


def conf_text(template: str, i: int) -> str:
    label = f"vm{i:05d}"
    mac = f"00:50:56:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}"
    return (template.replace("debian5", label)
            .replace("3f2a6c1e9b7d4e0a8c5b1d2e3f4a5b6c", f"{i:032x}")
            .replace("00:50:56:13:11:40", mac)
            .replace("172.20.6.40", f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"))


def make_tree(root: Path, n: int) -> None:
    """n VM dirs in 100 groups: <label>.ctys (a full generated-style conf), <label>.sh,
    a backup conf marked IGNORE every 50th VM, and a tiny image placeholder."""
    template = EXAMPLE.read_text() if EXAMPLE.exists() else "#@#MAGICID-QEMU\n#@#LABEL = \"debian5\"\n"
    for i in range(n):
        d = root / f"grp{i % 100:02d}" / f"vm{i:05d}"
        d.mkdir(parents=True)
        text = conf_text(template, i)
        (d / f"vm{i:05d}.ctys").write_text(text)
        (d / f"vm{i:05d}.sh").write_text("#!/bin/bash\n#@#MAGICID-IGNORE\nexit 0\n")
        (d / "hda.img").write_bytes(b"")
        if i % 50 == 0:
            (d / f"vm{i:05d}.ctys.20110307").write_text(text.replace("#@#MAGICID-QEMU", "#@#MAGICID-IGNORE"))


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vms", type=int, default=10000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--lookups", type=int, default=300)
    ap.add_argument("--keep", help="build/keep the tree in this directory")
    args = ap.parse_args()

    sys.path.insert(0, str(REPO))
    from ctys_libvirt.inventory import collect
    from ctys_libvirt.inventory.address import resolve_conf_path

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="ctys-bench-enum-"))
    tree = work / "tree"
    try:
        if not tree.exists():
            t0 = time.perf_counter()
            make_tree(tree, args.vms)
            print(f"generated {args.vms} VM dirs under {tree} in {time.perf_counter() - t0:.1f}s")
        anchor_cmd = f"find {tree} -name '*.ctys' | xargs grep -l MAGICID-QEMU > /dev/null"
        cli = REPO / ".venv" / "bin" / "ctys-libvirt"
        cli_cmd = [str(cli) if cli.exists() else "ctys-libvirt", "enumerate", str(tree), "--format", "records"]
        cache = work / "scancache"
        env = dict(os.environ, CTYS_SCAN_CACHE_DIR=str(cache))

        # warm the page cache (and the scan cache) and check all agree on the VM count
        hits = subprocess.run(f"find {tree} -name '*.ctys' | xargs grep -l MAGICID-QEMU",
                              shell=True, capture_output=True, text=True).stdout.split()
        res = collect.enumerate_local([tree])
        out = subprocess.run(cli_cmd, capture_output=True, text=True, env=env)
        n_cli = len(out.stdout.splitlines())
        print(f"VMs: find|grep {len(hits)}, library {res.vms} records {len(res.records)}, cli {n_cli}")
        collect.enumerate_local([tree], cache_dir=cache)

        # interleaved rounds, so load from other processes hits all variants alike
        fns = {
            "anchor: find | xargs grep -l MAGICID-QEMU":
                lambda: subprocess.run(anchor_cmd, shell=True, check=True),
            "library, no scan cache, parallel": lambda: collect.enumerate_local([tree]),
            "library, no scan cache, one process": lambda: collect.enumerate_local([tree], jobs=1),
            "library, warm scan cache": lambda: collect.enumerate_local([tree], cache_dir=cache),
            "cli: enumerate --format records (cache)":
                lambda: subprocess.run(cli_cmd, stdout=subprocess.DEVNULL, check=True, env=env),
            "cli: enumerate --format records --no-cache":
                lambda: subprocess.run(cli_cmd + ["--no-cache"], stdout=subprocess.DEVNULL, check=True, env=env),
        }
        runs = {k: [] for k in fns}
        for _ in range(args.repeat):
            for k, fn in fns.items():
                runs[k].append(median_time(fn, 1))
        med = {k: statistics.median(v) for k, v in runs.items()}
        t_anchor = med["anchor: find | xargs grep -l MAGICID-QEMU"]

        db = work / "inventory.sqlite"
        if db.exists():
            db.unlink()
        t0 = time.perf_counter()
        collect.enumerate_local([tree], update_db=True, db=db)
        t_update = time.perf_counter() - t0

        rnd = random.Random(7)
        picks = [rnd.randrange(args.vms) for _ in range(args.lookups)]
        kinds = [lambda i: f"L:vm{i:05d}", lambda i: f"U:{i:032x}",
                 lambda i: "M:" + f"00:50:56:{i >> 16 & 255:02X}:{i >> 8 & 255:02X}:{i & 255:02X}",
                 lambda i: f"vm{i:05d}"]
        addrs = [kinds[n % len(kinds)](i) for n, i in enumerate(picks)]
        t0 = time.perf_counter()
        for a, i in zip(addrs, picks):
            p = resolve_conf_path(a, [tree], db=db)
            assert p.name == f"vm{i:05d}.ctys", (a, p)
        t_lookup = (time.perf_counter() - t0) / len(addrs)

        print()
        print(f"{'measurement':46} {'median s':>9} {'ratio':>7}")
        for k, v in med.items():
            print(f"{k:46} {v:9.3f} {v / t_anchor:7.2f}")
        print(f"{'enumerate --update-db (scan + SQLite)':46} {t_update:9.3f} {t_update / t_anchor:7.2f}")
        print(f"address lookup from inventory of {args.vms}: {t_lookup * 1000:.3f} ms per lookup "
              f"({len(addrs)} lookups; goal < 20 ms)")
        best_lib = med["library, warm scan cache"] / t_anchor
        cold_lib = med["library, no scan cache, parallel"] / t_anchor
        print(f"ratios vs anchor: library warm {best_lib:.2f}x, library cold {cold_lib:.2f}x, "
              f"cli warm {med['cli: enumerate --format records (cache)'] / t_anchor:.2f}x "
              f"(goal <= 1.5x); lookup {t_lookup * 1000:.2f} ms (goal < 20 ms); "
              f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
