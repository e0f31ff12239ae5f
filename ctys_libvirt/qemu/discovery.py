"""Find candidate QEMU system emulators: ``--qemu PATH``, the conf's STARTERCALL,
then the usual names on PATH and in the legacy search directories."""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from ctys_libvirt.errors import QemuProbeError
from ctys_libvirt.qemu.probe import QemuProbe, probe

SEARCH_DIRS = ("/usr/local/bin", "/usr/bin", "/usr/libexec", "/opt/qemu/bin")
NAMES = ("qemu-system-x86_64", "qemu-system-i386", "qemu-kvm", "kvm", "qemu")
# Not emulators although they match qemu-*.
BLACKLIST = ("qemu-img", "qemu-io", "qemu-nbd", "qemu-pr-helper", "qemu-storage-daemon", "qemu-ga",
             "qemu-edid", "qemu-keymap", "qemu-bridge-helper", "qemu-vmsr-helper", "kvm-img", "kvm-nbd")


@dataclass
class Candidate:
    path: str
    source: str                         # --qemu | STARTERCALL | PATH | dir
    probe: Optional[QemuProbe] = None
    error: Optional[str] = None


def resolve_binary(name: str) -> Optional[str]:
    """A path as given (if it exists), a bare name through $PATH; None when absent."""
    if os.sep in name:
        return name if os.path.exists(name) else None
    return shutil.which(name)


def candidates(*, explicit: Optional[str] = None, startercall: Optional[str] = None,
               search_path: Optional[str] = None,
               dirs: Sequence[str] = SEARCH_DIRS, names: Sequence[str] = NAMES) -> List[Candidate]:
    """Every distinct candidate (by real path) in priority order."""
    found: List[Candidate] = []
    seen = set()

    def add(path: Optional[str], source: str) -> None:
        if not path:
            return
        base = os.path.basename(path)
        if base in BLACKLIST:
            return
        real = os.path.realpath(path)
        if real in seen:
            return
        seen.add(real)
        found.append(Candidate(path=path, source=source))

    if explicit:
        add(resolve_binary(explicit) or explicit, "--qemu")
    if startercall:
        add(resolve_binary(startercall) or startercall, "STARTERCALL")
    path_env = os.environ.get("PATH", "") if search_path is None else search_path
    for name in names:
        for d in path_env.split(os.pathsep):
            if d:
                p = os.path.join(d, name)
                if os.path.isfile(p) and os.access(p, os.X_OK):
                    add(p, "PATH")
                    break
    for d in dirs:
        for name in names:
            p = os.path.join(d, name)
            if os.path.isfile(p) and os.access(p, os.X_OK):
                add(p, "dir")
    return found


def probe_all(cands: List[Candidate], *, use_cache: bool = True, timeout: float = 10.0) -> List[Candidate]:
    for c in cands:
        try:
            c.probe = probe(c.path, use_cache=use_cache, timeout=timeout)
        except QemuProbeError as exc:
            c.error = exc.one_line()
    return cands


def _wants_i386(arch: Optional[str]) -> bool:
    return bool(arch) and arch in ("i386", "i486", "i586", "i686", "x86")


def find_qemu(*, explicit: Optional[str] = None, startercall: Optional[str] = None,
              arch: Optional[str] = None, use_cache: bool = True,
              search_path: Optional[str] = None, dirs: Sequence[str] = SEARCH_DIRS,
              assume_version: Optional[str] = None, vm_dir: Optional[str] = None) -> QemuProbe:
    """The binary to run: ``--qemu`` wins, then STARTERCALL, then the first candidate
    that probes (an x86_64 emulator runs i686 guests too).  ``assume_version`` (X.Y.Z)
    states the version of an explicit binary whose ``-h`` banner is not recognised.
    ``vm_dir``: the conf's directory, whose files are never run (security/binaries.py)."""
    if explicit:
        return probe(resolve_binary(explicit) or explicit, use_cache=use_cache, assume_version=assume_version,
                     vm_dir=vm_dir)
    if startercall:
        resolved = resolve_binary(startercall)
        if not resolved:
            raise QemuProbeError(f"STARTERCALL {startercall} not found",
                                 hint="install it, fix STARTERCALL in the conf or pass --qemu PATH")
        return probe(resolved, use_cache=use_cache, vm_dir=vm_dir)
    cands = candidates(search_path=search_path, dirs=dirs)
    errors = []
    for c in cands:
        try:
            return probe(c.path, use_cache=use_cache)
        except QemuProbeError as exc:
            errors.append(exc.one_line())
    if errors:
        raise QemuProbeError("no usable QEMU binary: " + "; ".join(errors),
                             hint="pass a working binary with --qemu PATH")
    raise QemuProbeError("no QEMU binary found (looked for " + ", ".join(NAMES) + " on PATH and in "
                         + ", ".join(dirs) + ")", hint="install qemu-system-x86 or pass --qemu PATH")


def libvirt_can_drive(startercall: str, vm_dir: Optional[str] = None) -> Tuple[bool, str]:
    """Whether libvirt's QEMU driver can run this STARTERCALL binary: it needs a
    QMP-capable QEMU (libvirt 9 requires >= 4.2, probing via QMP)."""
    resolved = resolve_binary(startercall)
    if not resolved:
        return False, "is not installed on this host"
    try:
        pr = probe(resolved, vm_dir=vm_dir)
    except QemuProbeError as exc:
        return False, f"cannot be probed ({exc.message})"
    if pr.version < (4, 2, 0) or not pr.has("-qmp"):
        return False, f"is QEMU {pr.version_text}; libvirt needs QEMU >= 4.2 with QMP"
    return True, f"is QEMU {pr.version_text}"
