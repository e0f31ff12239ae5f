"""Translator benchmarks; prints each ratio next to its goal (run: .venv/bin/python bench/translate.py).

(a) in-process load_conf + build_domain of 1,000 generated confs vs lxml parse+serialize of
    the same output XMLs, in the same run (goal <= 3x)
(b) one `ctys-libvirt xml` call vs one `virt-install --connect test:///default --print-xml
    --dry-run` call with equivalent options (goal <= 0.5x)
(c) `ctys-libvirt --help` vs `python -c 'import libvirt'` (goal <= 2x)
Medians of several runs.  `--only-a` runs part (a) alone (for profiling the translator).
"""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO / "tests" / "data" / "legacy"   # in-repo copies of the legacy example trees
LABELS = ("debian5", "centos55", "kvmkern")
N_CONFS = int(os.environ.get("BENCH_CONFS", "1000"))
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
BIN = Path(sys.executable).with_name("ctys-libvirt")


def make_tree(root: Path, n: int) -> list:
    """n conf variants of the three examples, each in its own VM dir with its images."""
    texts = {lb: (SHARED / "examples" / "confs" / lb / f"{lb}.ctys").read_text() for lb in LABELS}
    confs = []
    for i in range(n):
        base = LABELS[i % len(LABELS)]
        label = f"{base}x{i:04d}"
        d = root / "vm" / "qemu" / label
        (d / "boot").mkdir(parents=True)
        text = texts[base].replace(f"/vm/qemu/{base}/", f"{d}/").replace("/mntn/", f"{root}/mntn/")
        text = text.replace(f'"{base}"', f'"{label}"')
        text = text.replace("MEMSIZE=${MEMSIZE:-", f"MEMSIZE=${{MEMSIZE:-{64 + i % 7}")
        text = text.replace('#@#UUID                      = "', f'#@#UUID                      = "{i:04x}', 1)
        text = text.replace('#@#UUID                      = "', '#@#UUID                      = "')
        # keep 32 hex digits: drop the same number of characters from the end of the value
        lines = []
        for line in text.splitlines(True):
            if line.startswith("#@#UUID"):
                key, _, val = line.partition('"')
                val = val.split('"')[0][:32]
                line = f'{key}"{val}"\n'
            lines.append(line)
        conf = d / f"{label}.ctys"
        conf.write_text("".join(lines))
        for name in ("hda.img", "hdb.img", "boot/vmlinuz-2.6.32-5-amd64", "boot/initrd.img-2.6.32-5-amd64"):
            (d / name).write_bytes(b"\x00" * 512)
        confs.append(conf)
    for iso in ("UNIXDist/debian/5.0.8/raw/amd64/iso-dvd/debian-508-amd64-DVD-1.iso",
                "UNIXDist/centOS/5.5/inst/isos/i386/CentOS-5.5-i386-bin-DVD.iso"):
        p = root / "mntn" / "swpool" / iso
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"\x00" * 2048)
    return confs


def bench_inprocess(confs: list) -> tuple:
    from lxml import etree

    from ctys_libvirt.conf import load_conf
    from ctys_libvirt.host.facts import host_facts
    from ctys_libvirt.model import HostCaps, HostContext
    from ctys_libvirt.translate.request import make_request
    from ctys_libvirt.translate.xml import build_domain

    caps = HostCaps(kvm=True, emulator="/usr/bin/qemu-system-x86_64")
    ctx = HostContext(mydist="CentOS", user="acue")
    consoles = ("VNC:1", "CLI", "SDL", "NONE")
    t0 = time.perf_counter()
    xmls = []
    t_load = 0.0
    for i, conf in enumerate(confs):
        t1 = time.perf_counter()
        vm = load_conf(conf, context=ctx)
        t_load += time.perf_counter() - t1
        req = make_request(console=consoles[i % len(consoles)])
        # host facts gathered per VM, as a create does (image headers read on demand)
        xmls.append(build_domain(vm, req, host_facts(caps)).xml)
    t_translate = time.perf_counter() - t0
    parser = etree.XMLParser(remove_blank_text=True)
    t0 = time.perf_counter()
    for x in xmls:
        etree.tostring(etree.fromstring(x.encode(), parser), pretty_print=True, encoding="unicode")
    t_lxml = time.perf_counter() - t0
    return t_translate, t_lxml, t_load


def timed(cmd: list, runs: int = RUNS) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        times.append(time.perf_counter() - t0)
        if r.returncode != 0:
            raise SystemExit(f"{cmd[0]} failed: {r.stderr.decode(errors='replace')}")
    return statistics.median(times)


def report(name: str, ours: float, anchor: float, goal: float, unit: str = "s") -> bool:
    ratio = ours / anchor
    ok = ratio <= goal
    print(f"{name}: ours {ours:.4f}{unit} vs anchor {anchor:.4f}{unit} -> ratio {ratio:.2f}x "
          f"(goal <= {goal}x) {'OK' if ok else 'MISSED'}")
    return ok


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="ctys-bench-"))
    try:
        confs = make_tree(tmp, N_CONFS)
        results = [bench_inprocess(confs) for _ in range(3)]
        t_tr = statistics.median(r[0] for r in results)
        t_lx = statistics.median(r[1] for r in results)
        t_ld = statistics.median(r[2] for r in results)
        ok = report(f"(a) load_conf+build_domain of {N_CONFS} confs vs lxml parse+serialize", t_tr, t_lx, 3)
        print(f"    split: load_conf {t_ld:.4f}s ({t_ld / t_tr:.0%}), plan+XML {t_tr - t_ld:.4f}s "
              f"= {(t_tr - t_ld) / t_lx:.1f}x the lxml parse+serialize alone")
        if "--only-a" in sys.argv[1:]:
            return 0 if ok else 1

        conf = confs[0]            # a debian5 variant: KVM, HDD boot, rtl8139, VNC :1, keymap de
        d = conf.parent
        ours = timed([str(BIN), "xml", str(conf), "--mydist", "CentOS", "--console", "VNC:1",
                      "--argsadd", "-no-hpet"])
        vi = shutil.which("virt-install")
        if vi is None:
            print("(b) virt-install not installed: skipped")
        else:
            anchor = timed([vi, "--connect", "test:///default", "--name", conf.stem, "--memory", "64",
                            "--vcpus", "2", "--cpu", "qemu64", "--import", "--osinfo", "generic",
                            "--disk", f"path={d}/hda.img,bus=ide,format=raw",
                            "--network", "user,mac=00:50:56:13:11:40,model=rtl8139",
                            "--graphics", "vnc,port=5901,listen=127.0.0.1,keymap=de", "--video", "cirrus",
                            "--clock", "offset=localtime", "--qemu-commandline=-no-hpet",
                            "--print-xml", "--dry-run"])
            ok &= report("(b) one `ctys-libvirt xml` vs one `virt-install --print-xml --dry-run`", ours, anchor, 0.5)

        ours = timed([str(BIN), "--help"])
        anchor = timed([sys.executable, "-c", "import libvirt"])
        ok &= report("(c) `ctys-libvirt --help` vs `python -c 'import libvirt'`", ours, anchor, 2)
        # typer._adapters only exists in some typer versions; `import typer.main` is typer itself
        floor = timed([sys.executable, "-c", "import typer.main"])
        print(f"    start-up floor: `import typer` alone takes {floor:.4f}s "
              f"({floor / anchor:.1f}x the libvirt import; typer pulls in click, rich, pydantic)")
        return 0 if ok else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
