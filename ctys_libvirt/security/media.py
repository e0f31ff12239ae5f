"""Media paths a conf or request names (disk/CD/floppy/USB images, kernel, initrd, INSTMODE
source and target, the QEMUBIOS directory): resolved and checked in this one place, before
any backend sees them.  The backends only ever get the resolved path.

Rules (docs/run-security.md):

* Every path is resolved through symlinks (``realpath``); the plan carries the result.
* Block and character devices are refused for every conf, root's own included, unless the
  resolved device is in ``MediaPolicy.allow_devices`` (``--allow-device PATH`` or the site
  policy): a conf line must not hand a guest the host's disks.
* An untrusted conf (security.trust) acts with its owner's rights only: each resolved file
  must be readable by that owner (and writable, for a read-write disk); a new install
  target's directory must be writable by the owner.  Checked by running ``test -r/-w`` as
  the owner (uid, primary gid and supplementary groups, exactly as the kernel will judge it,
  ACLs and every directory on the way included) rather than by reading mode bits, which
  would miss ACLs and the search permission of the directories above.  Without root we
  cannot switch user; then the mode bits of the file are checked for the owner, and our own
  rights bound the rest anyway.  Checking the resolved target as the owner also answers the
  symlink question: a link in the VM directory may point anywhere its author could read
  (write) themselves, and nowhere else.
* An untrusted conf whose file is root's (it is untrusted because others can write it or a
  directory above it) has no author we can name: it acts as ``nobody``.
"""
from __future__ import annotations

import grp
import os
import pwd
import stat
import subprocess
from dataclasses import dataclass, field
from typing import FrozenSet, Iterable, List, Optional, Tuple

from ctys_libvirt.errors import ConfError, NotFoundError
from ctys_libvirt.util.realpath import real_path

NOBODY = 65534
_TEST = "/usr/bin/test"


@dataclass(frozen=True)
class MediaPolicy:
    """Whose rights a conf's media are checked with, and which devices may be attached."""

    trusted: bool = True
    owner_uid: int = 0
    owner_gid: int = 0
    allow_devices: FrozenSet[str] = field(default_factory=frozenset)   # resolved device paths
    conf: str = ""                                                     # for messages

    @property
    def acting_uid(self) -> int:
        return NOBODY if (not self.trusted and self.owner_uid == 0) else self.owner_uid

    @property
    def acting_gid(self) -> int:
        return NOBODY if (not self.trusted and self.owner_uid == 0) else self.owner_gid


def conf_trust(vm):
    """The ConfTrust of ``vm``: the loader's verdict when it set one, else assessed here.
    The one place media checks ask for it (so the loader's field replaces this call)."""
    trust = getattr(vm, "trust", None)
    if trust is not None:
        return trust
    from ctys_libvirt.security.trust import assess

    try:
        return assess(vm.source_path)
    except OSError as exc:
        raise NotFoundError(f"conf {vm.source_path}: {exc.strerror}",
                            hint="the conf went away after it was read; run the command again") from None


def policy_for(vm, allow_devices: Iterable[str] = ()) -> MediaPolicy:
    t = conf_trust(vm)
    devices = frozenset(map(os.path.realpath, allow_devices))
    return MediaPolicy(t.trusted, t.owner_uid, t.owner_gid, devices, str(vm.source_path))


class MediaRefused(ConfError):
    """A medium the conf may not use (exit 3, like every conf error)."""


def _groups(uid: int, gid: int) -> List[int]:
    try:
        pw = pwd.getpwuid(uid)
        return sorted(set(os.getgrouplist(pw.pw_name, gid)))
    except (KeyError, OSError):
        return [gid]


def _mode_allows(st: os.stat_result, uid: int, gids: List[int], write: bool, search: bool) -> bool:
    need = (4 | (2 if write else 0) | (1 if search else 0))
    if st.st_uid == uid:
        bits = (st.st_mode >> 6) & 7
    elif st.st_gid in gids:
        bits = (st.st_mode >> 3) & 7
    else:
        bits = st.st_mode & 7
    return bits & need == need


def owner_may(path: str, policy: MediaPolicy, *, write: bool, search: bool = False) -> bool:
    """May the conf's acting user read (and write; and search, for a directory) ``path``?"""
    uid, gid = policy.acting_uid, policy.acting_gid
    if uid == 0:
        return True
    gids = _groups(uid, gid)
    if os.geteuid() != 0:
        try:
            st = os.stat(path)
        except OSError:
            return False
        return _mode_allows(st, uid, gids, write, search) and \
            os.access(path, os.R_OK | (os.W_OK if write else 0) | (os.X_OK if search else 0))
    args = [_TEST, "-r", path]
    if write:
        args += ["-a", "-w", path]
    if search:
        args += ["-a", "-x", path]
    try:
        return subprocess.run(args, user=uid, group=gid, extra_groups=gids, cwd="/",
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env={}).returncode == 0
    except OSError:
        return False


def _who(policy: MediaPolicy) -> str:
    uid = policy.acting_uid
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = str(uid)
    return f"uid {uid} ({name})"


def check_medium(path: str, policy: MediaPolicy, *, what: str, write: bool) -> Tuple[str, os.stat_result]:
    """``path`` (absolute, existing) resolved through symlinks and checked; returns the
    resolved path and its stat.  Raises MediaRefused."""
    real = real_path(path)
    try:
        st = os.stat(real)
    except OSError as exc:
        raise NotFoundError(f"{what} {path}: {exc.strerror}", hint=f"fix the path in {policy.conf}") from None
    shown = path if real == path else f"{path} (-> {real})"
    if stat.S_ISBLK(st.st_mode) or stat.S_ISCHR(st.st_mode):
        if real not in policy.allow_devices and path not in policy.allow_devices:
            raise MediaRefused(f"{what} {shown} is a host device; devices are attached only when allowed",
                               path=policy.conf,
                               hint=f"give --allow-device {real} (or list it under allow_devices "
                                    "in the site policy) if the guest may really have it")
    if not policy.trusted and not owner_may(real, policy, write=write):
        need = "read and write" if write else "read"
        raise MediaRefused(f"{what} {shown}: the conf is untrusted and its owner {_who(policy)} "
                           f"may not {need} it", path=policy.conf,
                           hint="an untrusted conf only uses files its owner can use; "
                                "give the owner access, or have root own the conf")
    return real, st


def check_new_target(path: str, policy: MediaPolicy, *, what: str) -> str:
    """An install target still to be created: nothing (not even a dangling symlink) may be
    at ``path``; returns the path under the resolved directory."""
    if os.path.lexists(path):
        raise MediaRefused(f"{what} {path} is a dangling symlink; a target is never created "
                           "through a symlink", path=policy.conf,
                           hint="remove the symlink or give the real path")
    d = os.path.realpath(os.path.dirname(path) or ".")
    if not policy.trusted and not owner_may(d, policy, write=True, search=True):
        raise MediaRefused(f"{what} {path}: the conf is untrusted and its owner {_who(policy)} "
                           f"may not create files in {d}", path=policy.conf,
                           hint="give the owner write access to the directory, or have root own the conf")
    return os.path.join(d, os.path.basename(path))


def check_dir(path: str, policy: MediaPolicy, *, what: str) -> str:
    """A directory QEMU reads from (QEMUBIOS): resolved; readable by an untrusted conf's owner."""
    real = os.path.realpath(path)
    if not policy.trusted and os.path.isdir(real) and not owner_may(real, policy, write=False, search=True):
        raise MediaRefused(f"{what} {path}: the conf is untrusted and its owner {_who(policy)} "
                           "may not read it", path=policy.conf,
                           hint="give the owner access, or have root own the conf")
    return real


def conflicts(disks, in_use) -> Optional[str]:
    """The first disk of ``disks`` (PlanDisk-like: path, readonly) that another running
    domain holds so that sharing it would corrupt one of them: either side writes.
    ``in_use``: {resolved path: [(domain name, readonly)]}.  Returns a message or None."""
    for d in disks:
        for other, ro in in_use.get(os.path.realpath(d.path), ()):
            if not (ro and d.readonly):
                return (f"{d.path} is in use by running domain {other}"
                        + (" (read-write)" if not ro else "") + f"; attaching it to {d.target} "
                        "too would let one guest corrupt the other's disk")
    return None
