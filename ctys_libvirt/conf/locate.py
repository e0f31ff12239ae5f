"""Find the conf of a VM from a path the user gives (file, VM directory, `.sh` wrapper)."""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Optional

from ctys_libvirt.conf.keys import read_keys
from ctys_libvirt.errors import AmbiguousAddressError, ConfError, CtysError, NotFoundError


_PATH_TYPE = type(Path())
_IGNORED_ERRNOS = (errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP)   # as pathlib's


def _abs(p: Path) -> Path:
    # absolute but not symlink-resolved: CTYSWRAPPERPATH is the directory as addressed
    s = str(p)
    a = os.path.abspath(os.path.expanduser(s))
    return p if a == s else Path(a)      # already absolute and normal: no second parse


def own_magic(conf: Path) -> bool:
    """True when a legacy ``<stem>.conf`` carries a MAGICID flag of its own (QEMU, IGNORE or
    NOENUM): the 01.07 layout, where it is the activated conf and the ``<stem>.ctys`` next
    to it a bash wrapper that ctys judged separately (and that is never read as a conf).
    Without a flag the .conf is the key file of the older ctys-conf variant, whose wrapper
    carries the header."""
    try:
        info = read_keys(conf)
    except (CtysError, OSError):
        return False
    return bool(info.magic_qemu or info.magic_ignore or info.magic_noenum)


def conf_in_dir(d) -> Optional[Path]:
    """The conf of VM directory ``d``, one rule for every caller (conf loading and address
    resolution): ``<d>/<dirname>.ctys`` (in the 01.07 layout its sibling ``<dirname>.conf``,
    which carries a MAGICID flag of its own), else the one active ``*.ctys`` (MAGICID-QEMU,
    not IGNORE/NOENUM); None when there is none.  Several -> AmbiguousAddressError (exit 2)."""
    d = _abs(Path(d))
    own = d / f"{d.name}.ctys"
    if own.is_file():
        legacy = own.with_suffix(".conf")
        return legacy if legacy.is_file() and own_magic(legacy) else own
    try:
        found = sorted(q for q in d.iterdir() if q.suffix == ".ctys" and q.is_file())
    except OSError as exc:
        raise ConfError(f"cannot list VM directory {d}: {exc.strerror}",
                        hint="check the directory's permissions") from None
    active = []
    for q in found:
        try:
            info = read_keys(q)
        except (CtysError, OSError):
            continue
        if info.magic_qemu and not (info.magic_ignore or info.magic_noenum):
            active.append(q)
    if len(active) > 1:
        names = ", ".join(q.name for q in active)
        raise AmbiguousAddressError(f"VM directory {d} holds several confs with MAGICID-QEMU: {names}",
                                    [str(q) for q in active],
                                    hint="give the .ctys file itself, or mark the others "
                                         "#@#MAGICID-IGNORE")
    return active[0] if active else None


def locate_conf(path_or_dir) -> Path:
    """A `.ctys` file; a VM directory (``conf_in_dir``); a `<stem>.sh` wrapper or legacy
    `<stem>.conf` -> the sibling `<stem>.ctys`, except a `<stem>.conf` with its own MAGICID
    line (01.07 layout), which is the conf."""
    p = _abs(path_or_dir if type(path_or_dir) is _PATH_TYPE else Path(path_or_dir))
    # One stat for Path.is_dir() and Path.is_file(), with their error handling.
    loop = False
    try:
        mode = os.stat(p).st_mode
    except OSError as exc:
        if exc.errno not in _IGNORED_ERRNOS:
            raise
        mode = 0
        loop = exc.errno == errno.ELOOP
    except ValueError:
        mode = 0
    if stat.S_ISDIR(mode):
        found = conf_in_dir(p)
        if found is None:
            raise NotFoundError(f"no {p.name}.ctys (or other *.ctys with #@#MAGICID-QEMU) in {p}",
                                hint="give the path of the VM's .ctys file")
        return found
    if stat.S_ISREG(mode):
        if p.suffix == ".conf" and own_magic(p):
            return p            # 01.07 layout: the .conf is judged on its own (never its wrapper)
        if p.suffix in (".sh", ".conf"):
            sib = p.with_suffix(".ctys")
            if sib.is_file():
                return sib
            if p.suffix == ".sh":
                raise NotFoundError(f"wrapper {p} has no sibling {sib.name}",
                                    hint="the conf must sit next to the wrapper with the same stem")
        return p
    if p.suffix == ".sh" and p.with_suffix(".ctys").is_file():
        return p.with_suffix(".ctys")
    if loop:
        raise NotFoundError(f"conf {p} is a symlink loop",
                            hint="point the link at the real .ctys file")
    if mode:    # a FIFO, socket or device: never opened (reading a FIFO would block)
        raise NotFoundError(f"conf {p} is not a regular file",
                            hint="give the path of a <label>.ctys file or its VM directory")
    raise NotFoundError(f"conf {p} does not exist",
                        hint="give the path of a <label>.ctys file or its VM directory")
