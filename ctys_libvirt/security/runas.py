"""Who a directly started QEMU runs as, and the media it is lent for the run.

Started as root, the direct backend does what libvirt does: QEMU never keeps root.  The
user comes from ``--run-as USER`` (``CreateOptions.run_as``), else ``$CTYS_RUN_AS``, else the
site policy's value (passed in by the caller), else ``libvirt-qemu`` where it exists, else
``nobody``.  ``root`` opts out explicitly (QEMU keeps root; a warning says so).

Media are lent like libvirt's dynamic_ownership: each file QEMU must open is chowned to
that user for the run and given back (owner and group as before) on stop, cancel, a failed
start or when LIST finds the QEMU dead.  A file that already belongs to the run-as user
(another running VM holds it) is neither taken nor given back by us.
"""
from __future__ import annotations

import grp
import os
import pwd
from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence, Tuple

from ctys_libvirt.errors import UsageError

DEFAULT_USERS = ("libvirt-qemu", "nobody")
ENV = "CTYS_RUN_AS"


@dataclass(frozen=True)
class RunAs:
    name: str
    uid: int
    gid: int
    groups: Tuple[int, ...]


def resolve(explicit: Optional[str] = None, policy: Optional[str] = None) -> Optional[RunAs]:
    """The user QEMU runs as, or None: not started as root, or ``root`` asked for."""
    if os.geteuid() != 0:
        return None
    name = explicit or os.environ.get(ENV) or policy
    if not name:
        name = next((u for u in DEFAULT_USERS if _exists(u)), None)
        if name is None:
            raise UsageError("neither libvirt-qemu nor nobody exists to run QEMU as",
                             hint="give --run-as USER (an unprivileged account)")
    try:
        pw = pwd.getpwnam(name) if not name.isdigit() else pwd.getpwuid(int(name))
    except KeyError:
        raise UsageError(f"--run-as {name}: no such user",
                         hint="give an existing unprivileged account, e.g. libvirt-qemu") from None
    if pw.pw_uid == 0:
        return None
    groups = tuple(sorted(set(os.getgrouplist(pw.pw_name, pw.pw_gid))))
    return RunAs(pw.pw_name, pw.pw_uid, pw.pw_gid, groups)


def _exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
        return True
    except KeyError:
        return False


def lend(paths: Iterable[str], who: RunAs) -> List[List]:
    """chown each existing path to ``who``; returns [[path, uid, gid], ...] to give back.
    Stops at the first failure after giving back what it took (then raises OSError)."""
    taken: List[List] = []
    try:
        for p in dict.fromkeys(paths):
            try:
                st = os.stat(p)
            except FileNotFoundError:
                continue
            if st.st_uid == who.uid:
                continue
            os.chown(p, who.uid, who.gid)
            taken.append([p, st.st_uid, st.st_gid])
    except OSError:
        give_back(taken, who.uid)
        raise
    return taken


def give_back(taken: Sequence[Sequence], uid: Optional[int] = None) -> None:
    """Restore owner/group of lent media (only while they still belong to ``uid``)."""
    for p, u, g in taken or ():
        try:
            if uid is None or os.stat(p).st_uid == uid:
                os.chown(p, int(u), int(g))
        except OSError:
            pass


def group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)
