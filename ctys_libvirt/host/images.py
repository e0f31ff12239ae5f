"""Install-target creation (INSTMODE STAGE INIT) with ``qemu-img``, shared by the
libvirt and direct backends.

The rule from design.md §4: a target is created only when nothing exists at its
path; an existing file, symlink or device is never touched.  The image is built in an
anonymous file (``O_TMPFILE`` in the target's directory; qemu-img writes it through
``/proc/self/fd/N``) and published with ``linkat`` of that very inode, which refuses an
existing name and never follows a symlink there: two concurrent installs cannot both
"create" it, a symlink planted at the name or at a temporary name cannot redirect the
write, and a run killed midway leaves no file behind.  Filesystems without O_TMPFILE get
a named temporary ``.X.ctys-new.<pid>`` created ``O_EXCL|O_NOFOLLOW``; such a temporary of
a dead process is removed by the next create in that directory."""
from __future__ import annotations

import errno
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import List, Optional, Tuple

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
                          preallocate: bool = False,
                          owner: Optional[Tuple[int, int]] = None) -> bool:
    """Create ``path`` as an empty ``fmt`` image of ``size`` unless something exists there
    (``preallocate``: fully allocated, the legacy HDDDOS dd-style target; ``owner``: (uid,
    gid) the new image is given, e.g. an untrusted conf's owner).

    Returns True when this call created it, False when it already existed.  On any
    exception (SIGINT/SIGTERM included) qemu-img is killed and nothing stays behind."""
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
    clean_stale_temps(path.parent)
    fd, named = _open_temp(path)
    try:
        argv = [qemu_img(), "create", "-q", "-f", fmt]
        if preallocate:
            argv += ["-o", "preallocation=full" if fmt == "raw" else "preallocation=falloc"]
        _run_qemu_img(argv + [f"/proc/self/fd/{fd}", size.strip()], fd, path)
        if owner is not None:
            os.fchown(fd, owner[0], owner[1])
        try:
            _publish(fd, path)
        except FileExistsError:
            return False  # somebody else created it meanwhile: theirs stands
        return True
    finally:
        if named is not None:
            _unlink_if_same(named, fd)
        os.close(fd)


def _open_temp(path: Path) -> Tuple[int, Optional[Path]]:
    """An anonymous file in the target's directory, or (no O_TMPFILE there) a fresh named
    one; never opened through a symlink."""
    try:
        return os.open(path.parent, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600), None
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
            raise BackendError(f"cannot create the install target {path}: {exc.strerror}",
                               hint="check the directory permissions and free space") from None
    tmp = path.parent / f"{TEMP_PREFIX.format(name=path.name)}{os.getpid()}"
    try:
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise BackendError(f"cannot create {tmp}: {exc.strerror}",
                           hint="remove the leftover, check the directory permissions") from None
    return fd, tmp


def _run_qemu_img(argv: List[str], fd: int, path: Path) -> None:
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, pass_fds=(fd,))
    try:
        out, err = proc.communicate()
    except BaseException:
        # interrupted (SIGINT, SIGTERM turned into an exception by the CLI): qemu-img goes too
        proc.kill()
        proc.wait()
        raise
    if proc.returncode != 0:
        msg = (err or out).replace(f"/proc/self/fd/{fd}", str(path)).strip().splitlines()
        raise BackendError(f"qemu-img create {path} failed: {msg[-1] if msg else proc.returncode}",
                           hint="check the directory permissions and free space")


def _publish(fd: int, path: Path) -> None:
    """Give the inode behind ``fd`` the name ``path`` (linkat AT_SYMLINK_FOLLOW on the
    /proc fd link: the very file we wrote; an existing name, symlink or not, is refused)."""
    proc = os.open("/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.link(str(fd), path, src_dir_fd=proc, follow_symlinks=True)
    finally:
        os.close(proc)


def _unlink_if_same(tmp: Path, fd: int) -> None:
    try:
        st, mine = os.lstat(tmp), os.fstat(fd)
        if (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino):
            os.unlink(tmp)
    except OSError:
        pass


TEMP_PREFIX = ".{name}.ctys-new."
_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.ctys-new\.(?P<pid>\d+)$")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_temps(directory: Path) -> List[str]:
    """Remove ``.X.ctys-new.<pid>`` temporaries of processes that are gone (an older
    version's, or one killed by SIGKILL).  Only the name goes (``unlink`` never follows a
    symlink); returns the removed names."""
    removed = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for e in entries:
        m = _TEMP_RE.match(e.name)
        if not m or int(m.group("pid")) == os.getpid() or _pid_alive(int(m.group("pid"))):
            continue
        try:
            os.unlink(e.path)
            removed.append(e.name)
        except OSError:
            pass
    return removed


def remove_created_target(path: Optional[str]) -> None:
    """Delete an install target this very CREATE made (qemu-img, STAGE INIT) after the
    start failed; a target that existed before is never passed here."""
    if path:
        try:
            os.unlink(path)
        except OSError:
            pass
