"""``os.path.realpath`` of an existing path, resolved by the kernel.

posixpath.realpath walks the path in Python, one lstat per component (about 25 us for a
VM image six directories deep); opening the path with O_PATH and reading its
/proc/self/fd link costs three system calls and gives the same answer.  O_PATH opens
nothing (no device is touched, no FIFO blocks)."""
from __future__ import annotations

import os

_O_PATH = getattr(os, "O_PATH", 0)
_PROC_FD = "/proc/self/fd/"


def real_path(path: str) -> str:
    """The absolute path of ``path`` with every symlink resolved (as os.path.realpath);
    a path that does not exist, or a host without /proc, falls back to os.path.realpath."""
    if not _O_PATH:
        return os.path.realpath(path)
    try:
        fd = os.open(path, _O_PATH | os.O_CLOEXEC)
    except OSError:
        return os.path.realpath(path)
    try:
        real = os.readlink(_PROC_FD + str(fd))
    except OSError:
        return os.path.realpath(path)
    finally:
        os.close(fd)
    # a deleted or unreachable file reads back as "... (deleted)" or "/x (unreachable)"
    if not real.startswith("/") or real.endswith(" (deleted)"):
        return os.path.realpath(path)
    return real
