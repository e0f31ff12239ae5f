"""A private Xvfb for the console-client tests, and the means to look at it: windows by
owner pid or title (xdotool, xwininfo), a window's pixels (xwd, parsed here), xterm logs.

Every program comes from a Debian package scripts/setup.sh installs (xvfb, xdotool, x11-utils,
x11-apps, xterm)."""
from __future__ import annotations

import os
import shutil
import struct
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

import pytest

X_TOOLS = {"Xvfb": "xvfb", "xdotool": "xdotool", "xwininfo": "x11-utils", "xwd": "x11-apps",
           "xterm": "xterm", "vncviewer": "tigervnc-viewer", "tmux": "tmux"}


@dataclass
class Xvfb:
    display: str                 # ":N"
    proc: subprocess.Popen

    def env(self, **extra: str) -> Dict[str, str]:
        e = dict(os.environ)
        e["DISPLAY"] = self.display
        e.pop("XAUTHORITY", None)
        e.update(extra)
        return e

    def run(self, *argv: str) -> str:
        return subprocess.run(list(argv), env=self.env(), capture_output=True, text=True,
                              timeout=30).stdout


def start_xvfb(size: str = "1280x1024x24") -> Xvfb:
    """Xvfb on a display it picks itself (-displayfd: no race for a free number)."""
    missing = [f"{t} ({pkg})" for t, pkg in X_TOOLS.items() if not shutil.which(t)]
    if missing:
        pytest.fail("missing X tools: " + ", ".join(missing) + " (run scripts/setup.sh)")
    r, w = os.pipe()
    # -noreset: by default Xvfb resets when its last client goes, and a client connecting
    # during that reset (RECONNECT ends the old viewer, starts a new one) cannot open the display
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", size, "-nolisten", "tcp",
                             "-noreset"],
                            pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    os.close(w)
    num = b""
    with os.fdopen(r, "rb") as f:
        while not num.endswith(b"\n"):
            c = f.read(1)
            if not c:
                proc.kill()
                pytest.fail("Xvfb ended before telling its display number")
            num += c
    return Xvfb(f":{int(num)}", proc)


def stop_xvfb(x: Xvfb) -> None:
    x.proc.terminate()
    try:
        x.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        x.proc.kill()


def windows_of_pid(x: Xvfb, pid: int) -> List[int]:
    """Mapped windows whose _NET_WM_PID is ``pid``."""
    out = x.run("xdotool", "search", "--onlyvisible", "--pid", str(pid))
    return [int(w) for w in out.split()]


def window_title(x: Xvfb, wid: int) -> str:
    return x.run("xdotool", "getwindowname", str(wid)).strip()


def wait_for(pred, timeout: float, what: str, step: float = 0.1):
    """Poll ``pred`` until it returns something truthy (the waits are generous: TCG on a busy
    host); fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise AssertionError(f"{what} not within {timeout:g}s")


@dataclass
class Shot:
    width: int
    height: int
    pixels: List[int]            # one int per pixel (masked to the visual's RGB bits)

    def colours(self) -> int:
        return len(set(self.pixels))


def screenshot(x: Xvfb, wid: int) -> Shot:
    """The window's pixels, by ``xwd`` (format: X11 XWD, header big-endian)."""
    data = subprocess.run(["xwd", "-silent", "-id", str(wid)], env=x.env(), capture_output=True,
                          check=True, timeout=30).stdout
    return parse_xwd(data)


def parse_xwd(data: bytes) -> Shot:
    h = struct.unpack(">25I", data[:100])
    header_size, _ver, fmt, depth, width, height, _xoff, byte_order = h[:8]
    bits_per_pixel, bytes_per_line = h[11], h[12]
    red, green, blue = h[14], h[15], h[16]
    ncolors = h[19]
    if fmt != 2 or bits_per_pixel not in (24, 32):      # ZPixmap, true colour
        raise AssertionError(f"unexpected XWD format {fmt}/{bits_per_pixel} bpp (depth {depth})")
    off = header_size + 12 * ncolors
    step = bits_per_pixel // 8
    order = "big" if byte_order == 1 else "little"
    mask = red | green | blue
    px = []
    for y in range(height):
        row = data[off + y * bytes_per_line: off + y * bytes_per_line + width * step]
        for i in range(0, len(row), step):
            px.append(int.from_bytes(row[i:i + step], order) & mask)
    return Shot(width, height, px)


def xterm_logging(tmp: Path, log: Path) -> Dict[str, str]:
    """Environment that makes every xterm started with it log its screen output to ``log``
    (X resources read through XENVIRONMENT): what the client shows, readable by a test."""
    res = tmp / "xterm-resources"
    res.write_text(f"XTerm*logging: true\nXTerm*logFile: {log}\n")
    return {"XENVIRONMENT": str(res)}


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:   # a zombie is gone for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
