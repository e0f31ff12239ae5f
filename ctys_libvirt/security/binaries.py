"""Which programs we ever run: STARTERCALL, ``--qemu``, every QEMU probed with ``-h``, and
programs named in allowed ARGSADD values (``script=``).

A program is run only when its real path (symlinks resolved) is a regular file owned by root
(or by the invoking user, when that is not root: running one's own file gains nothing), not
writable by group/others, in directories alike up to / (root-owned sticky directories such as
/tmp accepted, as for confs), and not inside the VM directory of the conf at hand -- or when
the site policy names the file or a directory above it (``[binaries] allow``).  So nothing a
conf's author can write is ever executed, whatever its name.
"""
from __future__ import annotations

import os
import stat
from typing import Optional

from ctys_libvirt.errors import QemuProbeError


def _owner_ok(uid: int) -> bool:
    me = os.geteuid()
    return uid == 0 or (me != 0 and uid == me)


def binary_problem(path: str, *, policy=None, vm_dir: Optional[str] = None) -> Optional[str]:
    """None when ``path`` may be executed; else why not (a phrase after the path)."""
    from ctys_libvirt.security.policy import load_policy

    policy = policy if policy is not None else load_policy()
    try:
        real = os.path.realpath(path)
        st = os.stat(real)
    except (OSError, ValueError):
        return "does not exist"
    for allowed in policy.allow_binaries:
        if real == allowed or real.startswith(allowed.rstrip("/") + "/"):
            return None
    given = os.path.abspath(path)
    if vm_dir:
        vd = os.path.realpath(vm_dir)
        for p in (real, given, os.path.join(os.path.realpath(os.path.dirname(given)), os.path.basename(given))):
            if p == vd or p.startswith(vd.rstrip("/") + "/"):
                return f"(resolving to {real}) lies in the VM directory {vd}, where the conf's author may write"
    if not stat.S_ISREG(st.st_mode):
        return f"(resolving to {real}) is not a regular file"
    if not _owner_ok(st.st_uid):
        return f"(resolving to {real}) is owned by uid {st.st_uid}, not by root"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"(resolving to {real}) is writable by group/others"
    # the directories of the file and of the name it is run by (a symlink there could be
    # re-pointed between our check and the exec)
    for start in (os.path.dirname(real), os.path.dirname(given)):
        why = _dir_chain_problem(start, real)
        if why:
            return why
    return None


def _dir_chain_problem(d: str, real: str) -> Optional[str]:
    first = True
    while True:
        try:
            dst = os.stat(d)
        except OSError:
            return f"(resolving to {real}): directory {d} cannot be checked"
        writable = dst.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        sticky_root = not first and dst.st_uid == 0 and dst.st_mode & stat.S_ISVTX
        if not _owner_ok(dst.st_uid):
            return f"(resolving to {real}) is reached through directory {d}, owned by uid {dst.st_uid}, not by root"
        if writable and not sticky_root:
            return f"(resolving to {real}) is reached through directory {d}, writable by group/others"
        first = False
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent


def check_binary(path: str, *, what: str = "QEMU binary", vm_dir: Optional[str] = None,
                 policy=None) -> None:
    """Raise QemuProbeError (exit 4) unless ``path`` may be run (see binary_problem)."""
    why = binary_problem(path, policy=policy, vm_dir=vm_dir)
    if why == "does not exist" or why is None:
        return          # missing binaries are reported by the caller that looks for them
    raise QemuProbeError(f"{what} {path} {why}; not run",
                         hint="install QEMU in a root-owned directory, name it in the site policy "
                              "([binaries] allow), or pass another binary with --qemu")
