"""The root-owned site policy (``/etc/ctys-libvirt/policy.toml``): whom to trust and what
to allow beyond the defaults.  Read with stdlib ``tomllib``, once per process.

A policy that is not owned by root, is writable by group/others, or sits below a directory
that is (root-owned sticky directories such as /tmp excepted) is ignored with a warning: a
policy anybody could write would let anybody widen it.  ``CTYS_LIBVIRT_POLICY`` names another
file (the test suite's way to exercise the policy); the same ownership rule applies to it,
so it cannot be used to sneak in a user's policy.

Format::

    [trust]
    users  = ["alice", 1001]          # confs owned by these users are trusted
    groups = ["vmadmins"]             # ... or by a member of these groups (conf's group)

    [argsadd]
    allow = ["-monitor", "exec:"]     # host-reaching ARGSADD options allowed for trusted confs
    allow_untrusted = ["-chardev"]    # ... and for untrusted confs too

    [paths]
    storage_roots = ["/srv/vm"]       # where paths named by allowed options may point

    [devices]
    allow = ["/dev/vg0/vm1"]          # block/char devices confs may use as media

    [binaries]
    allow = ["/opt/qemu-0.12/bin"]    # extra QEMU binaries or their directories
"""
from __future__ import annotations

import grp
import os
import pwd
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import FrozenSet, List, Optional, Tuple

DEFAULT_PATH = "/etc/ctys-libvirt/policy.toml"
ENV_VAR = "CTYS_LIBVIRT_POLICY"
# libvirt's own pool directory: allowed ARGSADD paths may point here without a policy
DEFAULT_STORAGE_ROOTS = ("/var/lib/libvirt/images",)


@dataclass(frozen=True)
class SitePolicy:
    path: Optional[str] = None                 # the file read (None: no policy in effect)
    trusted_uids: FrozenSet[int] = frozenset()
    trusted_gids: FrozenSet[int] = frozenset()
    allow_argsadd: FrozenSet[str] = frozenset()
    allow_argsadd_untrusted: FrozenSet[str] = frozenset()
    storage_roots: Tuple[str, ...] = DEFAULT_STORAGE_ROOTS
    allow_devices: Tuple[str, ...] = ()
    allow_binaries: Tuple[str, ...] = ()
    warnings: Tuple[str, ...] = field(default=())


# "No policy file": immutable, so every conf loaded without a policy shares it (whether
# the file exists is still asked afresh each time)
_NO_POLICY = SitePolicy()


def policy_path() -> str:
    return os.environ.get(ENV_VAR) or DEFAULT_PATH


def safe_root_file(path: str) -> Optional[str]:
    """None when ``path`` and every directory above are owned by root and not writable by
    group/others (root-owned sticky ancestors accepted); else why not."""
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        return f"{path} is not a regular file"
    if st.st_uid != 0 or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"{path} is not owned by root or is writable by group/others"
    d = Path(os.path.realpath(path)).parent
    first = True
    while True:
        dst = os.stat(d)
        bad = dst.st_uid != 0 or dst.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        if bad and not (not first and dst.st_uid == 0 and dst.st_mode & stat.S_ISVTX):
            return f"directory {d} is not owned by root or is writable by group/others"
        first = False
        if d.parent == d:
            return None
        d = d.parent


def load_policy(path: Optional[str] = None) -> SitePolicy:
    """The site policy in effect."""
    path = path or policy_path()
    try:
        os.stat(path)
    except FileNotFoundError:
        return _NO_POLICY
    except OSError as exc:
        return SitePolicy(warnings=(f"site policy {path} ignored: {exc.strerror}",))
    return _read(path)


def _read(path: str) -> SitePolicy:
    import tomllib

    why = safe_root_file(path)
    if why:
        return SitePolicy(warnings=(f"site policy ignored: {why} (it must be root's alone, "
                                    f"e.g. chown root:root, chmod 644)",))
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        return SitePolicy(warnings=(f"site policy {path} ignored: {exc}",))
    warnings: List[str] = []

    def strings(section: str, key: str) -> List[str]:
        value = data.get(section, {}).get(key, []) if isinstance(data.get(section, {}), dict) else []
        if not isinstance(value, list):
            warnings.append(f"site policy {path}: [{section}] {key} is not a list; ignored")
            return []
        out = []
        for v in value:
            if isinstance(v, (str, int)) and not isinstance(v, bool):
                out.append(v)
            else:
                warnings.append(f"site policy {path}: [{section}] {key} entry {v!r} ignored")
        return out

    uids, gids = set(), set()
    for u in strings("trust", "users"):
        uid = _id(u, pwd.getpwnam, "pw_uid")
        if uid is None:
            warnings.append(f"site policy {path}: unknown user {u!r} ignored")
        else:
            uids.add(uid)
    for g in strings("trust", "groups"):
        gid = _id(g, grp.getgrnam, "gr_gid")
        if gid is None:
            warnings.append(f"site policy {path}: unknown group {g!r} ignored")
        else:
            gids.add(gid)
    roots = [os.path.realpath(str(p)) for p in strings("paths", "storage_roots") if str(p).startswith("/")]
    return SitePolicy(
        path=path, trusted_uids=frozenset(uids), trusted_gids=frozenset(gids),
        allow_argsadd=frozenset(str(o) for o in strings("argsadd", "allow")),
        allow_argsadd_untrusted=frozenset(str(o) for o in strings("argsadd", "allow_untrusted")),
        storage_roots=tuple(dict.fromkeys(list(DEFAULT_STORAGE_ROOTS) + roots)),
        allow_devices=tuple(os.path.realpath(str(p)) for p in strings("devices", "allow")),
        allow_binaries=tuple(os.path.realpath(str(p)) for p in strings("binaries", "allow")),
        warnings=tuple(warnings))


def _id(value, lookup, attr) -> Optional[int]:
    if isinstance(value, int):
        return value
    if value.isdigit():
        return int(value)
    try:
        return getattr(lookup(value), attr)
    except KeyError:
        return None
