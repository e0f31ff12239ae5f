"""Benchmark of the direct backend (run: .venv/bin/python bench/direct.py [N]).

1. ``DirectBackend.create`` to a running QEMU vs running the very same argv by hand
   (``subprocess.run`` of the daemonizing QEMU + reading its pidfile); goal <= 1.2x.
2. QEMU probe: cache hit vs miss (``<bin> -h`` run and parsed).
Uses the tiny hello guest, TCG, 16 MiB, console NONE; prints medians and ratios."""
from __future__ import annotations

import hashlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ctys_libvirt.backends.direct import DirectBackend, _pid_alive  # noqa: E402
from ctys_libvirt.model import BootRequest, CancelMode, ConsoleType, CreateOptions, VmConfig  # noqa: E402
from ctys_libvirt.qemu.probe import probe  # noqa: E402

QEMU = "/usr/bin/qemu-system-x86_64"
GUEST = REPO / "examples" / "guests" / "hello.img"


def _vm(d: Path) -> VmConfig:
    conf = d / "ctysbench.ctys"
    conf.write_text("#@#MAGICID-QEMU\nLABEL=ctysbench\n")
    shutil.copyfile(GUEST, d / "hda.img")
    return VmConfig(label="ctysbench", source_path=conf, conf_dir=d,
                    sha256=hashlib.sha256(conf.read_bytes()).hexdigest(), memory_mib=16,
                    accelerator="QEMU", hdd_boot_image=d / "hda.img", nic_model=None, localtime=False)


def _kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    while _pid_alive(pid):
        time.sleep(0.001)


def main(n: int = 15) -> None:
    work = Path(tempfile.mkdtemp(prefix="ctb", dir="/tmp"))
    os.environ["XDG_CACHE_HOME"] = str(work / "cache")
    try:
        be = DirectBackend(qemu=QEMU, base=work / "run")
        vm = _vm(work)
        req = BootRequest(console=ConsoleType.NONE)
        # warm: probe cache, page cache
        be.create(vm, req, CreateOptions())
        argv = (be.runtime(vm.label).argv_file.read_text())
        import json

        argv = json.loads(argv)
        be.cancel(vm.label, CancelMode.FORCE)
        ours, hand = [], []
        for _ in range(n):
            t = time.perf_counter()
            pid = be.create(vm, req, CreateOptions()).pid
            ours.append(time.perf_counter() - t)
            _kill(pid)
            shutil.rmtree(be.runtime(vm.label).dir, ignore_errors=True)

            rt = be.runtime(vm.label)
            t = time.perf_counter()
            rt.create()
            subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=True)
            pid = int(rt.pidfile.read_text())
            hand.append(time.perf_counter() - t)
            _kill(pid)
            shutil.rmtree(rt.dir, ignore_errors=True)
        mo, mh = statistics.median(ours), statistics.median(hand)
        print(f"direct create -> running : median {mo * 1000:7.1f} ms  (n={n})")
        print(f"same argv by hand        : median {mh * 1000:7.1f} ms")
        print(f"ratio create/by-hand     : {mo / mh:5.2f}x   (goal <= 1.20x)")

        miss, hit = [], []
        for _ in range(n):
            t = time.perf_counter()
            probe(QEMU, use_cache=False)
            miss.append(time.perf_counter() - t)
            t = time.perf_counter()
            probe(QEMU)
            hit.append(time.perf_counter() - t)
        pm, ph = statistics.median(miss), statistics.median(hit)
        print(f"probe cache miss         : median {pm * 1000:7.2f} ms")
        print(f"probe cache hit          : median {ph * 1000:7.2f} ms")
        print(f"ratio miss/hit           : {pm / ph:5.1f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 15)
