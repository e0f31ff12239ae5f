"""The private per-VM runtime directory of the direct backend: pidfile, monitor
socket, serial log/socket, recorded argv and conf sha256, the start lock.

Base: ``$CTYS_RUNTIME_DIR`` (tests), else ``/run/ctys-libvirt`` as root, else
``$XDG_RUNTIME_DIR/ctys-libvirt`` (``/tmp/ctys-libvirt-<uid>`` without one)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ctys_libvirt.errors import UsageError


def runtime_base() -> Path:
    env = os.environ.get("CTYS_RUNTIME_DIR")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/run/ctys-libvirt")
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return Path(xdg) / "ctys-libvirt"
    return Path(f"/tmp/ctys-libvirt-{os.geteuid()}")


@dataclass(frozen=True)
class RuntimeDirs:
    dir: Path

    @classmethod
    def for_label(cls, label: str, base: Optional[Path] = None) -> "RuntimeDirs":
        if not label or "/" in label or label in (".", "..") or "\x00" in label:
            raise UsageError(f"label {label!r} cannot name a runtime directory",
                             hint="use a LABEL without '/'")
        return cls(Path(base or runtime_base()) / label)

    @property
    def label(self) -> str:
        return self.dir.name

    pidfile = property(lambda s: s.dir / "qemu.pid")
    monitor = property(lambda s: s.dir / "monitor.sock")     # HMP
    qmp = property(lambda s: s.dir / "qmp.sock")             # QMP
    serial_log = property(lambda s: s.dir / "serial.log")
    serial_sock = property(lambda s: s.dir / "serial.sock")
    argv_file = property(lambda s: s.dir / "argv.json")
    sha_file = property(lambda s: s.dir / "conf.sha256")
    meta_file = property(lambda s: s.dir / "meta.json")
    lock_file = property(lambda s: s.dir / "lock")
    stderr_log = property(lambda s: s.dir / "qemu.stderr")
    vmstate = property(lambda s: s.dir / "vmstate.bin")      # SUSPEND image

    def create(self) -> None:
        """Make the dir 0700 (and the base 0755 so other users' dirs stay private)."""
        self.dir.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        self.dir.mkdir(mode=0o700, exist_ok=True)
        os.chmod(self.dir, 0o700)
