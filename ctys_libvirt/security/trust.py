"""Trust of a conf, decided once when it is loaded (``load_conf`` sets ``VmConfig.trust``).

A conf is *trusted* when the file, its VM directory and every directory above are owned by
root or by the invoking user and are not writable by group/others, or when the root-owned
site policy (security/policy.py) trusts the owner of the ones that are not.  Root-owned
sticky directories such as /tmp and /var/tmp are accepted as ancestors, as OpenSSH and sudo
do for their path checks: nobody but an entry's owner can rename or replace it there.  An
untrusted conf acts with its owner's rights only (owner_uid/owner_gid).
"""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Optional

from ctys_libvirt.model import ConfTrust
from ctys_libvirt.security.policy import SitePolicy, load_policy
from ctys_libvirt.util.realpath import real_path


def _owner_ok(st: os.stat_result, me: int, policy: SitePolicy) -> Optional[str]:
    """None when the owner is root/me, 'policy' when only the policy trusts it, else 'no'."""
    if st.st_uid in (0, me):
        return None
    if st.st_uid in policy.trusted_uids or st.st_gid in policy.trusted_gids:
        return "policy"
    return "no"


def _who(st: os.stat_result) -> str:
    try:
        import pwd
        return f"{pwd.getpwuid(st.st_uid).pw_name} (uid {st.st_uid})"
    except KeyError:
        return f"uid {st.st_uid}"


def assess(conf_path: Path, policy: Optional[SitePolicy] = None) -> ConfTrust:
    """The trust of the conf at ``conf_path`` (an absolute path of an existing file)."""
    policy = policy if policy is not None else load_policy()
    try:
        return _assess(conf_path, policy)
    except OSError as exc:      # a directory we cannot stat: nothing vouches for the conf
        try:
            st = os.stat(conf_path)
            owner, group = st.st_uid, st.st_gid
        except OSError:
            owner = group = -1
        return ConfTrust(False, owner, group, f"{exc.filename or conf_path}: {exc.strerror}")


def _dir_verdict(d: str, me: int, policy: SitePolicy, *, symlink_free: bool = False):
    """(problem or None, by_policy) for directory ``d`` and every directory above it,
    checked from ``d`` upwards (one fresh stat each, never remembered: see the module doc).
    ``symlink_free``: lstat them instead; a symlink before any problem returns None."""
    by_policy = False
    ancestor = False
    while True:
        dst = os.lstat(d) if symlink_free else os.stat(d)
        if symlink_free and stat.S_ISLNK(dst.st_mode):
            return None
        dv = _owner_ok(dst, me, policy)
        if dv == "no":
            return f"directory {d} is owned by {_who(dst)}, not by root or you", False
        if dst.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not (
                ancestor and dst.st_uid == 0 and dst.st_mode & stat.S_ISVTX):
            return f"directory {d} is writable by group/others", False
        by_policy = by_policy or dv == "policy"
        parent = os.path.dirname(d)
        if parent == d:
            return None, by_policy
        d, ancestor = parent, True


def _assess(conf_path: Path, policy: SitePolicy) -> ConfTrust:
    me = os.geteuid()
    st = os.lstat(conf_path)
    linked = stat.S_ISLNK(st.st_mode)
    if linked:
        st = os.stat(conf_path)
    owner, group = st.st_uid, st.st_gid
    verdict = _owner_ok(st, me, policy)
    if verdict == "no":
        return ConfTrust(False, owner, group, f"{conf_path} is owned by {_who(st)}, not by root or you")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return ConfTrust(False, owner, group, f"{conf_path} is writable by group/others")
    via = verdict == "policy"
    # both the directories the conf is reached through (its CTYSWRAPPERPATH, where relative
    # paths resolve) and those it really lives in.  The usual case is a normal absolute
    # path (no '..' for the kernel to take after a symlink) with no symlink on the way
    # (lstat says so for the file and each directory): then the two are the same, and
    # resolving the path (three more system calls) and a second walk are not needed.
    conf = os.fspath(conf_path)
    given_conf = os.path.abspath(conf)
    given = os.path.dirname(given_conf)
    plain = not linked and given_conf == conf
    found = _dir_verdict(given, me, policy, symlink_free=True) if plain else None
    if found is not None:
        walks = [found]
    else:
        real = os.path.dirname(real_path(conf))
        walks = (_dir_verdict(start, me, policy) for start in ((given,) if given == real else (given, real)))
    for problem, by_pol in walks:
        if problem:
            return ConfTrust(False, owner, group, problem)
        via = via or by_pol
    if via:
        return ConfTrust(True, owner, group, f"owner trusted by the site policy {policy.path}", by_policy=True)
    return ConfTrust(True, owner, group, "conf and every directory above owned by root or you, "
                                         "not writable by others")
