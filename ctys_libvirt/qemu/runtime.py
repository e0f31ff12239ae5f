"""The private per-VM runtime directory of the direct backend: pidfile, monitor
socket, serial log/socket, recorded argv and conf sha256, the start lock.

Base: ``$CTYS_RUNTIME_DIR`` (tests), else ``/run/ctys-libvirt`` as root, else
``$XDG_RUNTIME_DIR/ctys-libvirt`` (``/tmp/ctys-libvirt-<uid>`` without one)."""
from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional

from ctys_libvirt.errors import UsageError

if TYPE_CHECKING:
    from ctys_libvirt.qemu.monitor import Monitor


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


def pid_alive(pid: int) -> bool:
    """Alive and not a zombie (a late-reaped QEMU must count as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        if state not in ("Z", "X"):
            return True
        # a killed multi-threaded QEMU: the leader is a zombie while other threads still
        # exit and hold the fds (our start lock); it is gone only when they are
        return len(os.listdir(f"/proc/{pid}/task")) > 1
    except (OSError, IndexError):
        return False


def cmdline_of(pid: int) -> List[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def read_pid(path: Path) -> Optional[int]:
    try:
        return int(path.read_text().strip() or "0") or None
    except (OSError, ValueError):
        return None


class RuntimeVm:
    """One runtime dir of the direct backend and what it says: its metadata, recorded argv,
    pidfile, start lock and monitor (read by the backend and by the disk-in-use check)."""

    def __init__(self, rt: RuntimeDirs):
        import json     # only a host with direct VMs reads these (create's in-use check)

        self.rt = rt
        try:
            self.meta: Dict[str, object] = json.loads(rt.meta_file.read_text())
        except (OSError, ValueError):
            self.meta = {}
        self.pid = read_pid(rt.pidfile)

    @property
    def argv(self) -> List[str]:
        import json

        try:
            return list(json.loads(self.rt.argv_file.read_text()))
        except (OSError, ValueError):
            return list(self.meta.get("argv") or [])

    def alive(self) -> bool:
        """The pid in the pidfile is a live process running our recorded binary."""
        if not self.pid or not pid_alive(self.pid):
            return False
        cmd = cmdline_of(self.pid)
        argv = self.argv
        if not cmd or not argv:
            return bool(cmd)
        # scripts (fake QEMUs) show the interpreter first; match the binary anywhere
        return argv[0] in cmd[:3] or os.path.basename(argv[0]) in " ".join(cmd[:3])

    def locked(self) -> bool:
        """True while some process (QEMU) holds the start lock."""
        try:
            fd = os.open(self.rt.lock_file, os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        finally:
            os.close(fd)
        return False

    def monitor(self, timeout: float = 5.0) -> Monitor:
        kind = str(self.meta.get("monitor_kind") or "hmp")
        path = str(self.meta.get("monitor_path") or (self.rt.qmp if kind == "qmp" else self.rt.monitor))
        from ctys_libvirt.qemu.monitor import open_monitor

        return open_monitor(path, kind, timeout)
