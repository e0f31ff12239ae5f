"""Install-target creation (INSTMODE STAGE INIT) with ``qemu-img``, shared by the
libvirt and direct backends.

The rule from design.md §4: a target is created only when nothing exists at its
path; an existing file, symlink or device is never touched.  Creation goes to a
temporary name in the same directory and is published with ``os.link`` (which
refuses an existing name), so two concurrent installs cannot both "create" it."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Optional

from ctys_libvirt.errors import BackendError, NotFoundError, UsageError

_SIZE = re.compile(r"^\d+(\.\d+)?[kKmMgGtT]?$")
FORMATS = ("raw", "qcow2", "qcow", "vmdk", "vdi", "vpc", "vhdx", "qed", "cow")


def qemu_img() -> str:
    path = shutil.which("qemu-img")
    if not path:
        raise BackendError("qemu-img not found on PATH",
                           hint="install qemu-utils (sh scripts/setup.sh)")
    from ctys_libvirt.security.binaries import check_binary

    check_binary(path, what="qemu-img")     # a PATH entry a user can write is never run
    return path


def ensure_install_target(path: Path, fmt: str, size: Optional[str], *,
                          preallocate: bool = False) -> bool:
    """Create ``path`` as an empty ``fmt`` image of ``size`` unless something exists there
    (``preallocate``: fully allocated, the legacy HDDDOS dd-style target).

    Returns True when this call created it, False when it already existed."""
    path = Path(path)
    if os.path.lexists(path):
        return False
    fmt = (fmt or "raw").lower()
    if fmt not in FORMATS:
        raise UsageError(f"install target {path}: unknown image format QEMU_IMG={fmt!r}",
                         hint="use one of " + ", ".join(FORMATS))
    if not size or not _SIZE.match(size.strip()):
        raise UsageError(f"install target {path}: no usable size (HDDBOOTIMAGE_INST_SIZE={size!r})",
                         hint="set HDDBOOTIMAGE_INST_SIZE, e.g. 8G, in the conf")
    if not path.parent.is_dir():
        raise NotFoundError(f"install target directory {path.parent} does not exist",
                            hint="create the VM directory first")
    tmp = path.parent / f".{path.name}.ctys-new.{os.getpid()}"
    try:
        argv = [qemu_img(), "create", "-q", "-f", fmt]
        if preallocate:
            argv += ["-o", "preallocation=full" if fmt == "raw" else "preallocation=falloc"]
        proc = subprocess.run(argv + [str(tmp), size.strip()], capture_output=True, text=True)
        if proc.returncode != 0:
            msg = (proc.stderr or proc.stdout).strip().splitlines()
            raise BackendError(f"qemu-img create {path} failed: {msg[-1] if msg else proc.returncode}",
                               hint="check the directory permissions and free space")
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False  # somebody else created it meanwhile: theirs stands
        return True
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass


def remove_created_target(path: Optional[str]) -> None:
    """Delete an install target this very CREATE made (qemu-img, STAGE INIT) after the
    start failed; a target that existed before is never passed here."""
    if path:
        try:
            os.unlink(path)
        except OSError:
            pass
