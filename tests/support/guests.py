"""The tiny test guests: boot media derived at test time (never committed) and waits for
their serial marker."""
from __future__ import annotations

import os
import select
import shutil
import subprocess
import time
from pathlib import Path

from .paths import GUESTS


def build_media(out: Path) -> dict:
    """Boot media for the tiny guests, made at test time (never committed):
    G.img (512 B, IDE/floppy), G-disk.img (one CHS cylinder), G-floppy.img (1.44 MB),
    G.iso (El Torito no-emulation), mbkernel.bin + mbkernel-mod.txt."""
    out.mkdir(parents=True, exist_ok=True)
    media = {}
    for g in ("hello", "acpi"):
        src = GUESTS / f"{g}.img"
        img = out / f"{g}.img"
        shutil.copyfile(src, img)
        media[g] = img
        for suffix, size in (("disk", 516096), ("floppy", 1474560)):
            p = out / f"{g}-{suffix}.img"
            shutil.copyfile(src, p)
            with open(p, "r+b") as f:
                f.truncate(size)
            media[f"{g}-{suffix}"] = p
        isodir = out / f"{g}-isodir"
        isodir.mkdir(exist_ok=True)
        shutil.copyfile(src, isodir / "boot.img")
        iso = out / f"{g}.iso"
        p = subprocess.run(
            ["xorriso", "-as", "mkisofs", "-quiet", "-o", str(iso), "-b", "boot.img",
             "-no-emul-boot", "-boot-load-size", "4", str(isodir)],
            stdin=subprocess.DEVNULL, capture_output=True, text=True,
        )
        if p.returncode != 0:   # say why: a bare CalledProcessError hides xorriso's reason
            raise RuntimeError(f"xorriso failed (exit {p.returncode}) building {iso}: {p.stderr.strip()}")
        shutil.rmtree(isodir)
        media[f"{g}-iso"] = iso
    shutil.copyfile(GUESTS / "mbkernel.bin", out / "mbkernel.bin")
    (out / "mbkernel-mod.txt").write_bytes(b"hello module")
    media["mbkernel"] = out / "mbkernel.bin"
    media["mbkernel-mod"] = out / "mbkernel-mod.txt"
    return media


def read_serial(path: Path) -> str:
    try:
        return Path(path).read_bytes().decode("ascii", "replace")
    except FileNotFoundError:
        return ""


def wait_marker(path: Path, marker: str, count: int = 1, timeout: float = 30.0) -> str:
    """Until the ``count``-th line holding ``marker`` is complete in the serial log.

    The guests write a line byte by byte (slowly under TCG on a busy host), so seeing the
    marker is not seeing the line: wait for the newline after it, or callers asserting on
    the rest of the line race the guest."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = read_serial(path)
        at = -1
        for _ in range(count):
            at = text.find(marker, at + 1)
            if at < 0:
                break
        if at >= 0 and "\n" in text[at:]:
            return text
        time.sleep(0.02)
    raise AssertionError(f"marker {marker!r} x{count} (whole line) not in {path} after {timeout}s: "
                         f"{text[-300:]!r}")


def read_until_marker(fd: int, dom, first_reset: float = 0.3, every: float = 4.0,
                      timeout: float = 30.0, marker: bytes = b"CTYS-GUEST-OK\r\n") -> bytes:
    """Read a console's output from ``fd`` until the guest's marker line; reset ``dom``
    after ``first_reset`` s and again every ``every`` s meanwhile (the console stream may
    open late on a loaded host, and a marker printed before it opened is gone).  Never
    blocks on a read past ``timeout``."""
    buf = b""
    deadline = time.monotonic() + timeout
    next_reset = time.monotonic() + first_reset
    while marker not in buf and time.monotonic() < deadline:
        if time.monotonic() >= next_reset:
            dom.reset(0)
            next_reset = time.monotonic() + every
        if select.select([fd], [], [], 0.2)[0]:
            buf += os.read(fd, 256)
    return buf
