"""``--serial-log FILE``: the file QEMU (``-serial file:``) or virtlogd writes the guest's
serial output to.  It must never cost the user a file: the path is taken as given (no
symlink is followed, ever), and a file that already exists is only reused when it is a
serial log of ours, i.e. carries our extended attribute.  A new log is created here with
``O_EXCL|O_NOFOLLOW`` and marked.  On a filesystem without user xattrs the log still
works, but a later run refuses to reuse it (remove it or pick another name)."""
from __future__ import annotations

import os
import stat
from typing import Optional, Tuple

from ctys_libvirt.errors import UsageError

XATTR = "user.ctys-libvirt"
MARK = b"serial-log"


def is_ours(path: str) -> bool:
    try:
        return os.getxattr(path, XATTR, follow_symlinks=False) == MARK
    except OSError:
        return False


def claim(path: str, conf_path: Optional[str] = None) -> Tuple[str, bool]:
    """(absolute path, created now?) of a serial log QEMU may write; UsageError when the
    path is anything but a new file or a serial log of ours."""
    p = os.path.abspath(os.path.expanduser(path))
    hint = "give a new file name (an existing file is only reused when it is a serial log of ours)"
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        st = None
    if st is not None:
        if conf_path and os.path.exists(conf_path) and os.path.samestat(st, os.stat(conf_path)):
            raise UsageError(f"--serial-log {p} is the conf itself; it would be overwritten", hint=hint)
        if stat.S_ISLNK(st.st_mode):
            raise UsageError(f"--serial-log {p} is a symlink; a serial log is never written through one",
                             hint=hint)
        if not stat.S_ISREG(st.st_mode):
            raise UsageError(f"--serial-log {p} exists and is not a regular file", hint=hint)
        if not is_ours(p):
            raise UsageError(f"--serial-log {p} exists and is not a serial log of ours; "
                             "it is left as it is", hint=hint)
        return p, False
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o640)
    except FileExistsError:
        raise UsageError(f"--serial-log {p} appeared while we checked it", hint=hint) from None
    except OSError as exc:
        raise UsageError(f"--serial-log {p}: {exc.strerror}",
                         hint="check that the directory exists and is writable") from None
    try:
        try:
            os.setxattr(fd, XATTR, MARK)
        except OSError:
            pass    # no user xattrs here: works now, is not reused later
    finally:
        os.close(fd)
    return p, True


def release_unused(path: Optional[str], created: bool) -> None:
    """After a failed start: remove a log this very run created, if nothing was written."""
    if path and created:
        try:
            if os.lstat(path).st_size == 0:
                os.unlink(path)
        except OSError:
            pass
