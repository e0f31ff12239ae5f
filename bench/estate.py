#!/usr/bin/env python3
"""Every row of issue 12's table in one run, ours against the anchor side by side
(alternating rounds, medians), as root with libvirtd up:

    .venv/bin/python bench/estate.py [--runs 5] [--only ROW ...] [--domains 1000] [--vms 10000]

Rows: help, list, create, define, enumerate, hosts.  Domains are named with a prefix unique to
this run (ctysest<pid>-) and undefined on every way out; trees live in a temp dir that is
removed.  Numbers only: nothing here is asserted (the goals are printed next to them)."""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid as uuidlib
from pathlib import Path

import libvirt

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))   # support.loopback: the loopback tcp listener

CTYS = str(REPO / ".venv" / "bin" / "ctys-libvirt")
PY = str(REPO / ".venv" / "bin" / "python")
URI = os.environ.get("CTYS_BENCH_URI", "qemu:///system")
PREFIX = f"ctysest{os.getpid()}-"
ROWS = ("help", "list", "create", "define", "enumerate", "hosts")
RESULTS: list = []          # (work, ours s, anchor s, ratio, goal, note)


def run(argv, env=None, shell=False) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                       env=env, shell=shell)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"bench: {argv if shell else ' '.join(argv[:4])} failed: {p.stderr.strip()[:400]}")
    return dt


def rounds(fns: dict, runs: int, warm: int = 1) -> dict:
    """Median seconds per callable, the callables alternating within each round so that
    load from other processes hits all alike; ``warm`` rounds are not counted."""
    times = {k: [] for k in fns}
    for i in range(runs + warm):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            dt = time.perf_counter() - t0
            if i >= warm:
                times[k].append(dt)
    return {k: statistics.median(v) for k, v in times.items()}


def row(work: str, ours: float, anchor: float, goal: float, note: str = "") -> None:
    r = ours / anchor
    RESULTS.append((work, ours, anchor, r, goal, note))
    print(f"  {work}: ours {ours:.3f}s anchor {anchor:.3f}s -> {r:.2f}x (goal <= {goal}x)"
          f"{' ' + note if note else ''}", flush=True)


def purge(conn, pred) -> None:
    from support.domains import purge_domain

    for d in conn.listAllDomains(0):
        if pred(d.name()):
            purge_domain(conn, d.name())


def mine(name: str) -> bool:
    return name.startswith(PREFIX)


def our_conf(root: Path, label: str) -> Path:
    d = root / label
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o755)
    shutil.copyfile(REPO / "examples" / "guests" / "hello.img", d / "hda.img")
    os.chmod(d / "hda.img", 0o644)
    conf = d / f"{label}.ctys"
    conf.write_text("#@#MAGICID-QEMU\n"
                    f'#@#LABEL = "{label}"\nLABEL="{label}"\n'
                    f'#@#UUID = "{uuidlib.uuid4().hex}"\n'
                    'HDDBOOTIMAGE="${CTYSWRAPPERPATH}/hda.img"\n'
                    "ACCELERATOR=QEMU\nMEMSIZE=16\nSMP=1\nNIC=\n")
    return conf


def define_copies(conn, work: Path, count: int, tag: str) -> list:
    """``count`` persistent domains of ours (the XML `ctys-libvirt xml` makes, renamed)."""
    from lxml import etree

    conf = our_conf(work, PREFIX + tag)
    base = subprocess.run([CTYS, "xml", str(conf), "--console", "NONE"], capture_output=True,
                          text=True, check=True).stdout
    names = []
    for i in range(count):
        root = etree.fromstring(base.encode())
        name = f"{PREFIX}{tag}{i:04d}"
        root.find("name").text = name
        root.find("uuid").text = str(uuidlib.uuid4())
        conn.defineXML(etree.tostring(root, encoding="unicode"))
        names.append(name)
    # an estate's definitions are older than LIST's racy window (2 s): so are these
    time.sleep(2.1)
    return names


# -- rows ----------------------------------------------------------------------------

def bench_help(args, conn, work) -> None:
    m = rounds({"ours": lambda: run([CTYS, "--help"]),
                "anchor": lambda: run([PY, "-c", "import libvirt"])}, args.runs * 2)
    row("`ctys-libvirt --help` / `python3 -c 'import libvirt'`", m["ours"], m["anchor"], 1.5)


def bench_list(args, conn, work) -> None:
    from ctys_libvirt.backends.libvirt import LibvirtBackend

    env = dict(os.environ, CTYS_LIST_CACHE_DIR=str(work / "listcache"),
               CTYS_DRIFT_CACHE=str(work / "drift.sqlite"))
    t0 = time.perf_counter()
    define_copies(conn, work, args.domains, "l")
    print(f"  (defined {args.domains} domains in {time.perf_counter() - t0:.1f}s)", flush=True)
    os.environ.update(CTYS_LIST_CACHE_DIR=env["CTYS_LIST_CACHE_DIR"])
    be = LibvirtBackend(URI, events=False)
    try:
        m = rounds({"ours": lambda: run([CTYS, "list", "--all", "--connect", URI], env=env),
                    "anchor": lambda: run(["virsh", "-c", URI, "list", "--all"]),
                    "lib": lambda: be.list(include_inactive=True)}, args.runs)
        cold = rounds({"cold": lambda: (shutil.rmtree(work / "listcache", ignore_errors=True),
                                        run([CTYS, "list", "--all", "--connect", URI], env=env))},
                      1, warm=0)["cold"]
    finally:
        be.close()
        purge(conn, mine)
    n = len(conn.listAllDomains(0))
    row(f"`list --all`, {args.domains} of our domains / `virsh list --all`", m["ours"], m["anchor"], 1.0,
        f"(in-process {m['lib'] / m['anchor']:.2f}x, goal <= 0.3x; first list without cache "
        f"{cold / m['anchor']:.2f}x; {n} other domains on the host)")
    RESULTS.append((f"`list --all` in-process (LibvirtBackend.list) / `virsh list --all`",
                    m["lib"], m["anchor"], m["lib"] / m["anchor"], 0.3, ""))


def bench_create(args, conn, work) -> None:
    from ctys_libvirt.backends.libvirt import LibvirtBackend
    from ctys_libvirt.conf import load_conf
    from ctys_libvirt.model import CreateOptions
    from ctys_libvirt.translate.request import make_request

    label = PREFIX + "create"
    conf = our_conf(work, label)
    xml = subprocess.run([CTYS, "xml", str(conf), "--console", "NONE"], capture_output=True,
                         text=True, check=True).stdout
    xml_path = work / f"{label}.xml"
    xml_path.write_text(xml)
    be = LibvirtBackend(URI)
    gone = lambda: purge(conn, lambda n: n == label)  # noqa: E731

    def lib():
        be.create(load_conf(conf), make_request(console="NONE"), CreateOptions(transient=True))

    try:
        fns = {"ours": lambda: run([CTYS, "create", str(conf), "--console", "NONE", "--transient",
                                    "--connect", URI]),
               "anchor": lambda: run(["virsh", "-q", "-c", URI, "create", str(xml_path)]),
               "lib": lib}
        m = rounds({k: (lambda f=f: (gone(), f())[1]) for k, f in fns.items()}, args.runs)
    finally:
        gone()
        be.close()
    row("`create` / `virsh create` of the same XML", m["ours"], m["anchor"], 1.2,
        f"(in-process {m['lib'] / m['anchor']:.2f}x)")


def bench_define(args, conn, work) -> None:
    import define as D

    D.PREFIX, D.ROOT = PREFIX + "d", work / "define"
    confs = D.write_confs(args.confs)
    base = str(D.ROOT / "estate")
    ours, again = [], []
    anchor, floor = [], []
    xmls = None
    try:
        for _ in range(max(1, args.runs // 2)):
            purge(conn, mine)
            ours.append(run([CTYS, "define", "--all", "--base", base]))
            again.append(run([CTYS, "define", "--all", "--base", base]))
            purge(conn, mine)
            if xmls is None:
                xmls = D.xml_of(conn, confs)
                files = []
                for i, x in enumerate(xmls):
                    f = D.ROOT / f"{i:04d}.xml"
                    f.write_text(x)
                    files.append(str(f))
            t0 = time.perf_counter()
            for f in files:
                run(["virsh", "-c", URI, "define", f])
            anchor.append(time.perf_counter() - t0)
            purge(conn, mine)
            t0 = time.perf_counter()
            for x in xmls:
                conn.defineXML(x)
            floor.append(time.perf_counter() - t0)
    finally:
        purge(conn, mine)
    o, a, fl = statistics.median(ours), statistics.median(anchor), statistics.median(floor)
    row(f"`define` of {args.confs} confs in one call / {args.confs} `virsh define` calls", o, a, 0.15,
        f"(all unchanged again: {statistics.median(again):.2f}s)")
    row(f"`define` of {args.confs} confs / in-process defineXML loop of the same XML", o, fl, 1.5)


def bench_enumerate(args, conn, work) -> None:
    import enumerate as E

    tree = work / "tree"
    t0 = time.perf_counter()
    E.make_tree(tree, args.vms)
    print(f"  (generated {args.vms} VM dirs in {time.perf_counter() - t0:.1f}s)", flush=True)
    env = dict(os.environ, CTYS_SCAN_CACHE_DIR=str(work / "scancache"))
    cli = [CTYS, "enumerate", str(tree), "--format", "records"]
    anchor = f"find {tree} -name '*.ctys' | xargs grep -l MAGICID-QEMU > /dev/null"
    m = rounds({"anchor": lambda: run(anchor, shell=True),
                "warm": lambda: run(cli, env=env),
                "cold": lambda: run(cli + ["--no-cache"], env=env)}, args.runs)
    per_vm = (m["cold"] - m["warm"]) / args.vms
    row(f"ENUMERATE {args.vms} VM dirs, CLI warm / `find | xargs grep -l MAGICID-QEMU`",
        m["warm"], m["anchor"], 1.5, f"({m['warm'] / args.vms * 1e6:.0f} us per VM)")
    row(f"ENUMERATE {args.vms} VM dirs, CLI `--no-cache` / same", m["cold"], m["anchor"], 2.5,
        f"({m['cold'] / args.vms * 1e6:.0f} us per VM; the cache saves {per_vm * 1e6:.0f} us per VM)")
    shutil.rmtree(tree, ignore_errors=True)


def bench_hosts(args, conn, work) -> None:
    from support.loopback import PROXY_CODE, LIBVIRT_SOCK, free_port, stop, wait_port

    define_copies(conn, work, args.host_domains, "h")
    procs, uris = [], []
    try:
        for _ in range(8):      # 8 "hosts": 8 loopback qemu+tcp listeners in front of libvirtd
            port = free_port()
            p = subprocess.Popen([sys.executable, "-c", PROXY_CODE, str(port), LIBVIRT_SOCK],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(p)
            wait_port(port, p)
            uris.append(f"qemu+tcp://127.0.0.1:{port}/system")
        ours = [CTYS, "list", "--all"] + [a for u in uris for a in ("-c", u)]

        def virsh8():
            for u in uris:
                run(["virsh", "-c", u, "list", "--all"])

        from ctys_libvirt.cli.lifecycle_run import _multi_list

        # the floor of any Python CLI doing this: start-up and libvirt imported (a plain
        # `list` does not import typer: cli/plain.py)
        m = rounds({"ours": lambda: run(ours), "anchor": virsh8,
                    "lib": lambda: _multi_list(uris, True, True),
                    "floor": lambda: run([PY, "-c", "import libvirt"])}, args.runs)
    finally:
        for p in procs:
            stop(p)
        purge(conn, mine)
    n = len(conn.listAllDomains(0)) + args.host_domains
    row("`list --all` over 8 hosts / 8 sequential `virsh list --all`", m["ours"], m["anchor"], 0.3,
        f"(8 qemu+tcp loopback URIs, ~{n} domains each; in-process "
        f"{m['lib'] / m['anchor']:.2f}x; python + import libvirt alone "
        f"{m['floor']:.3f}s = {m['floor'] / m['anchor']:.2f}x)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only", nargs="*", choices=ROWS)
    ap.add_argument("--domains", type=int, default=1000)
    ap.add_argument("--host-domains", type=int, default=20)
    ap.add_argument("--confs", type=int, default=300)
    ap.add_argument("--vms", type=int, default=10000)
    args = ap.parse_args()
    import lifecycle

    lifecycle.compile_package()
    libvirt.registerErrorHandler(lambda *_: None, None)
    libvirt.virEventRegisterDefaultImpl()
    threading.Thread(target=lambda: [libvirt.virEventRunDefaultImpl() for _ in iter(int, 1)],
                     daemon=True).start()
    conn = libvirt.open(URI)
    work = Path(tempfile.mkdtemp(prefix="ctys-bench-estate-", dir="/var/tmp"))
    os.chmod(work, 0o755)
    try:
        for name in args.only or ROWS:
            print(f"{name}:", flush=True)
            globals()[f"bench_{name}"](args, conn, work)
    finally:
        purge(conn, mine)
        conn.close()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nload average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores\n")
    print("| work | ours / anchor | goal |")
    print("|---|---|---|")
    for work_, o, a, r, goal, note in RESULTS:
        print(f"| {work_} | {r:.2f}x ({o:.3f} s / {a:.3f} s) {note} | ≤ {goal}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
