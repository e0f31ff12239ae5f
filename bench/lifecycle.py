#!/usr/bin/env python3
"""Lifecycle benchmark against the anchor tools, measured in the same run on the same
guest XML (run as root with libvirtd up: `.venv/bin/python bench/lifecycle.py`):

1. `ctys-libvirt create CONF --transient` vs `virsh create XML`, where XML is exactly
   what ctys-libvirt generates for CONF (goal: ratio <= 1.2), medians of N runs.
2. `ctys-libvirt cancel` POWEROFF of the ACPI guest: return time minus the moment the
   guest's domain stopped (seen by an independent lifecycle-event listener here)
   (goal: <= 0.3 s).
3. `ctys-libvirt list --all` vs `virsh list --all` with 1,000 defined domains
   (goal: ratio <= 1.5); the domains are defined from Python and undefined afterwards.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid as uuidlib
from pathlib import Path

import libvirt

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))     # support.domains: the one domain purge

from support.domains import purge_domain as purge  # noqa: E402
CTYS = str(REPO / ".venv" / "bin" / "ctys-libvirt")
URI = os.environ.get("CTYS_BENCH_URI", "qemu:///system")
ROOT = Path(f"/var/tmp/ctys-bench-{os.getpid()}")
PREFIX = f"ctysbench{os.getpid()}-"   # unique: others may bench on the same libvirtd


def run(argv, check=True) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    dt = time.perf_counter() - t0
    if check and p.returncode != 0:
        raise SystemExit(f"bench: {' '.join(argv)} failed: {p.stderr.strip()}")
    return dt


def write_conf(label: str, image: Path) -> Path:
    d = ROOT / label
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o755)
    shutil.copyfile(image, d / "hda.img")
    os.chmod(d / "hda.img", 0o644)
    conf = d / f"{label}.ctys"
    conf.write_text(
        "#@#MAGICID-QEMU\n"
        f'#@#LABEL = "{label}"\nLABEL="{label}"\n'
        f'#@#UUID = "{uuidlib.uuid4().hex}"\n'
        'HDDBOOTIMAGE="${CTYSWRAPPERPATH}/hda.img"\n'
        "ACCELERATOR=QEMU\nMEMSIZE=16\nSMP=1\nNIC=\n")
    return conf


def bench_create(conn, n: int):
    label = PREFIX + "create"
    conf = write_conf(label, REPO / "examples" / "guests" / "hello.img")
    xml = subprocess.run([CTYS, "xml", str(conf), "--console", "NONE"], capture_output=True,
                         text=True, check=True).stdout
    xml_path = ROOT / f"{label}.xml"
    xml_path.write_text(xml)
    from ctys_libvirt.backends.libvirt import LibvirtBackend
    from ctys_libvirt.conf import load_conf
    from ctys_libvirt.model import CreateOptions
    from ctys_libvirt.translate.request import make_request

    ours, theirs, api = [], [], []
    backend = LibvirtBackend(URI)
    try:
        for i in range(n + 1):  # first round warms caches, not counted
            purge(conn, label)
            a = run([CTYS, "create", str(conf), "--console", "NONE", "--transient", "--connect", URI])
            purge(conn, label)
            b = run(["virsh", "-q", "-c", URI, "create", str(xml_path)])
            purge(conn, label)
            t0 = time.perf_counter()   # library call: conf read + XML build + start + wait
            backend.create(load_conf(conf), make_request(console="NONE"), CreateOptions(transient=True))
            c = time.perf_counter() - t0
            purge(conn, label)
            if i:
                ours.append(a)
                theirs.append(b)
                api.append(c)
    finally:
        purge(conn, label)
        backend.close()
    mo, mt, ma = statistics.median(ours), statistics.median(theirs), statistics.median(api)
    print(f"create : ctys-libvirt {mo:.3f}s  virsh create {mt:.3f}s  ratio {mo / mt:.2f} (goal <= 1.2); "
          f"in-process LibvirtBackend.create {ma:.3f}s ratio {ma / mt:.2f}")
    return mo / mt


def bench_poweroff(conn, n: int):
    label = PREFIX + "poweroff"
    conf = write_conf(label, REPO / "examples" / "guests" / "acpi.img")
    log = ROOT / label / "serial.log"
    stopped = {}
    cond = threading.Condition()

    def on_event(_c, dom, event, _detail, _o):
        if dom.name() == label and event == libvirt.VIR_DOMAIN_EVENT_STOPPED:
            with cond:
                stopped["t"] = time.perf_counter()
                cond.notify_all()

    cb = conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, on_event, None)
    overheads = []
    try:
        for i in range(n):
            purge(conn, label)
            if log.exists():
                log.unlink()
            run([CTYS, "create", str(conf), "--console", "NONE", "--serial-log", str(log), "--connect", URI])
            deadline = time.monotonic() + 30
            while b"CTYS-GUEST-OK" not in (log.read_bytes() if log.exists() else b""):
                if time.monotonic() > deadline:
                    raise SystemExit("bench: ACPI guest never printed its marker")
                time.sleep(0.005)
            stopped.clear()
            p = subprocess.run([CTYS, "cancel", label, "--connect", URI], capture_output=True, text=True)
            t_ret = time.perf_counter()
            if p.returncode != 0 or "-> shutdown" not in p.stdout:
                raise SystemExit(f"bench: cancel did not shut down by ACPI: {p.stdout} {p.stderr}")
            with cond:
                cond.wait_for(lambda: "t" in stopped, timeout=10)
            overheads.append(t_ret - stopped["t"])
    finally:
        conn.domainEventDeregisterAny(cb)
        purge(conn, label)
    m = statistics.median(overheads)
    print(f"cancel : POWEROFF return minus guest shutoff {m:.3f}s (goal <= 0.3 s)")
    return m


def bench_list(conn, count: int, n: int):
    label = PREFIX + "list"
    conf = write_conf(label, REPO / "examples" / "guests" / "hello.img")
    base = subprocess.run([CTYS, "xml", str(conf), "--console", "NONE"], capture_output=True,
                          text=True, check=True).stdout
    from lxml import etree

    names = []
    t0 = time.perf_counter()
    try:
        for i in range(count):
            root = etree.fromstring(base.encode())
            name = f"{PREFIX}l{i:04d}"
            root.find("name").text = name
            root.find("uuid").text = str(uuidlib.uuid4())
            conn.defineXML(etree.tostring(root, encoding="unicode"))
            names.append(name)
        print(f"list   : defined {count} domains in {time.perf_counter() - t0:.1f}s")
        from ctys_libvirt.backends.libvirt import LibvirtBackend

        backend = LibvirtBackend(URI)
        ours, theirs, api = [], [], []
        for i in range(n + 1):
            a = run([CTYS, "list", "--all", "--backend", "libvirt", "--connect", URI])
            b = run(["virsh", "-c", URI, "list", "--all"])
            t0 = time.perf_counter()
            backend.list(include_inactive=True)
            c = time.perf_counter() - t0
            if i:
                ours.append(a)
                theirs.append(b)
                api.append(c)
        backend.close()
    finally:
        for name in names:
            purge(conn, name)
    mo, mt, ma = statistics.median(ours), statistics.median(theirs), statistics.median(api)
    print(f"list   : ctys-libvirt list --all {mo:.3f}s  virsh list --all {mt:.3f}s  "
          f"ratio {mo / mt:.2f} (goal <= 1.5); in-process LibvirtBackend.list {ma:.3f}s "
          f"ratio {ma / mt:.2f}")
    t0 = time.perf_counter()
    subprocess.run([CTYS, "--help"], stdout=subprocess.DEVNULL, check=True)
    print(f"startup: `ctys-libvirt --help` alone takes {time.perf_counter() - t0:.3f}s "
          f"(Python + typer; the fixed part of every CLI ratio)")
    return mo / mt


def compile_package() -> None:
    """Byte-compile the package first, as an installed package is: with
    PYTHONDONTWRITEBYTECODE set (or a stale __pycache__ after an edit) every CLI run
    would otherwise re-compile each edited module from source (tens of ms per run),
    which is a cost of this checkout, not of ctys-libvirt."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "ctys_libvirt"),
                    str(REPO / "cli")],
                   stdout=subprocess.DEVNULL, check=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--domains", type=int, default=1000)
    ap.add_argument("--only", choices=("create", "cancel", "list"))
    args = ap.parse_args()
    compile_package()
    libvirt.registerErrorHandler(lambda *_: None, None)
    libvirt.virEventRegisterDefaultImpl()
    threading.Thread(target=lambda: [libvirt.virEventRunDefaultImpl() for _ in iter(int, 1)],
                     daemon=True).start()
    conn = libvirt.open(URI)
    ROOT.mkdir(parents=True, exist_ok=True)
    os.chmod(ROOT, 0o755)
    results = {}
    try:
        if args.only in (None, "create"):
            results["create_ratio"] = bench_create(conn, args.runs)
        if args.only in (None, "cancel"):
            results["poweroff_overhead_s"] = bench_poweroff(conn, args.runs)
        if args.only in (None, "list"):
            results["list_ratio"] = bench_list(conn, args.domains, args.runs)
    finally:
        conn.close()
        shutil.rmtree(ROOT, ignore_errors=True)
    print("summary: " + ", ".join(f"{k}={v:.3f}" for k, v in results.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
