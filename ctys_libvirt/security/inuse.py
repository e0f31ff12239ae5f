"""Disks held by running domains, so a new VM never gets another running VM's disk
(security.media.conflicts decides; either side writing is a conflict).

Two sources: the active domains of a libvirt connection (their live XML's disk sources)
and the direct backend's runtime dirs (the disks recorded in meta.json of a live QEMU).
Paths are resolved (realpath) so a symlink cannot hide a shared disk."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Optional, Tuple

InUse = Dict[str, List[Tuple[str, bool]]]     # resolved path -> [(domain, read-only)]


def _add(out: InUse, path: Optional[str], name: str, ro: bool) -> None:
    if path:
        out.setdefault(os.path.realpath(path), []).append((name, ro))


def libvirt_disks(conn, skip: Tuple[str, ...] = (), *, active_only: bool = True) -> InUse:
    """Disks of every active (``active_only=False``: every defined) domain of ``conn``
    except those named/UUID'd in ``skip``."""
    import libvirt
    from lxml import etree

    out: InUse = {}
    try:
        doms = conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE if active_only else 0)
    except libvirt.libvirtError:
        return out
    for dom in doms:
        try:
            if dom.name() in skip or dom.UUIDString() in skip:
                continue
            root = etree.fromstring(dom.XMLDesc(0).encode())
        except (libvirt.libvirtError, etree.XMLSyntaxError):
            continue      # gone meanwhile
        for d in root.iterfind("devices/disk"):
            src = d.find("source")
            if src is None:
                continue
            ro = d.get("device") == "cdrom" or d.find("readonly") is not None
            _add(out, src.get("file") or src.get("dev"), dom.name(), ro)
    return out


def direct_disks(base: Path, skip: Tuple[str, ...] = ()) -> InUse:
    """Disks recorded by the direct backend for its live QEMUs under ``base``."""
    from ctys_libvirt.qemu.runtime import RuntimeDirs, RuntimeVm

    out: InUse = {}
    try:
        entries = list(os.scandir(base))
    except OSError:
        return out
    for e in entries:
        if not e.is_dir(follow_symlinks=False) or e.name in skip:
            continue
        v = RuntimeVm(RuntimeDirs(Path(e.path)))
        if not v.meta or not v.alive():
            continue
        # meta.json's list; a QEMU started before it was recorded: its argv
        for path, ro in v.meta.get("disks") or argv_disks(v.argv):
            _add(out, path, e.name, bool(ro))
    return out


_LEGACY = {"-hda": False, "-hdb": False, "-hdc": False, "-hdd": False, "-fda": False,
           "-fdb": False, "-cdrom": True}


def argv_disks(argv: List[str]) -> List[Tuple[str, bool]]:
    """(path, read-only) of the media in a QEMU argv as translate.argv writes them."""
    out: List[Tuple[str, bool]] = []
    for i, w in enumerate(argv[:-1]):
        val = argv[i + 1]
        if w in _LEGACY:
            out.append((val, _LEGACY[w]))
        elif w == "-usbdevice" and val.startswith("disk:"):
            out.append((val[5:], False))
        elif w == "-drive":
            from ctys_libvirt.qemu.opts import split_commas

            parts = dict(f.partition("=")[::2] for f in split_commas(val))
            if parts.get("file"):
                ro = parts.get("media") == "cdrom" or parts.get("readonly") in ("on", "true")
                out.append((parts["file"], ro))
    return out


def local_libvirt_disks(skip: Tuple[str, ...] = ()) -> InUse:
    """Best effort for the direct backend: the local system libvirtd's running domains
    (nothing when it is not there)."""
    if not os.path.exists("/run/libvirt/libvirt-sock-ro") and not os.path.exists("/run/libvirt/libvirt-sock"):
        return {}
    try:
        import libvirt

        libvirt.registerErrorHandler(lambda *_: None, None)
        conn = libvirt.openReadOnly("qemu:///system")
    except Exception:       # no libvirt-python, no daemon: nothing to learn
        return {}
    try:
        return libvirt_disks(conn, skip)
    finally:
        conn.close()


def merge(*maps: InUse) -> InUse:
    out: InUse = {}
    for m in maps:
        for k, v in m.items():
            out.setdefault(k, []).extend(v)
    return out
