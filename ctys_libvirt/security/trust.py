"""Trust of a conf, decided once when it is loaded.

A conf is *trusted* when the file, its VM directory and every directory above are owned by
root or by the invoking user and are not writable by group/others (root-owned sticky
directories such as /tmp and /var/tmp are accepted as ancestors, as OpenSSH and sudo do for
their path checks), or when a root-owned site policy trusts the owner.  An untrusted conf acts
with its owner's rights only.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ConfTrust:
    trusted: bool
    owner_uid: int        # whose rights an untrusted conf acts with (the conf file's owner)
    owner_gid: int
    reason: str           # one line for `check` and for refusals

    @property
    def acts_as_root(self) -> bool:
        return self.trusted and os.geteuid() == 0


def _safe_dir(st: os.stat_result, me: int, *, ancestor: bool) -> bool:
    if st.st_uid not in (0, me):
        return False
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        # a root-owned sticky directory (/tmp) lets nobody replace our entries
        return ancestor and st.st_uid == 0 and bool(st.st_mode & stat.S_ISVTX)
    return True


def assess(conf_path: Path) -> ConfTrust:
    """The trust of the conf at ``conf_path`` (an absolute path of an existing file)."""
    me = os.geteuid()
    st = os.stat(conf_path)
    owner, group = st.st_uid, st.st_gid
    if st.st_uid not in (0, me) or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return ConfTrust(False, owner, group, f"{conf_path} is owned by uid {owner} or writable by others")
    d = Path(os.path.realpath(conf_path)).parent
    first = True
    while True:
        dst = os.stat(d)
        if not _safe_dir(dst, me, ancestor=not first):
            return ConfTrust(False, owner, group,
                             f"directory {d} is owned by uid {dst.st_uid} or writable by others")
        first = False
        if d.parent == d:
            break
        d = d.parent
    return ConfTrust(True, owner, group, "conf and every directory above owned by root or you, "
                                         "not writable by others")
