"""Runner for the ``ctys-qemu`` / ``ctys-libvirt enumerate`` integration tests."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parent.parent
BIN = REPO / ".venv" / "bin"


def _cmd(name: str, module: str):
    p = BIN / name
    return [str(p)] if p.exists() else [sys.executable, "-c", f"import {module} as m; m.main()"]


CTYS_QEMU = _cmd("ctys-qemu", "ctys_libvirt.cli.ctys_qemu")
CTYS_LIBVIRT = _cmd("ctys-libvirt", "ctys_libvirt.cli.app")


def run(cmd, *args: str, env: Optional[dict] = None, timeout: float = 120) -> subprocess.CompletedProcess:
    e = dict(os.environ)
    e.pop("LIBVIRT_DEFAULT_URI", None)
    if env:
        e.update(env)
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=timeout, env=e,
                          stdin=subprocess.DEVNULL)


def qemu(*args: str, **kw) -> subprocess.CompletedProcess:
    return run(CTYS_QEMU, *args, **kw)


def libvirt_cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return run(CTYS_LIBVIRT, *args, **kw)


def one_error(proc, code: int, *needles: str, prog: str = "ctys-qemu") -> str:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{prog}: error: "), lines
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]
