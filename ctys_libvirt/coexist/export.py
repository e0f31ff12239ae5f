"""`export`: any libvirt domain (ours or foreign) -> ``<DIR>/<LABEL>/<LABEL>.ctys`` with
``#@#`` keys, so it joins the ctys inventory.  The conf-owned fields survive the round
trip conf -> XML -> conf -> XML unchanged (tests/unit/test_coexist_export.py)."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import List, Optional, Tuple

from ctys_libvirt.coexist import fields as F
from ctys_libvirt.coexist.confmap import conf_text, from_domain
from ctys_libvirt.errors import UsageError
from ctys_libvirt.translate.metadata import read_instance

_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}")


def conf_from_xml(xml: str) -> Tuple[str, str, List[str]]:
    """(label, conf text, notes) for one domain XML."""
    root = F.parse(xml)
    name = root.findtext("name") or ""
    if not _LABEL.fullmatch(name):
        raise UsageError(f"domain name {name!r} is not usable as a ctys LABEL",
                         hint="rename the domain (virsh domrename) to letters, digits, _ . + -")
    meta = read_instance(root)
    console = meta.get("console") if isinstance(meta.get("console"), str) else None
    v = from_domain(root, meta_console=console)
    return name, conf_text(v, source=name), v.notes


def write_conf(directory: Path, label: str, text: str) -> Path:
    """``directory/label/label.ctys``; never overwrites an existing file."""
    d = Path(directory) / label
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{label}.ctys"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise UsageError(f"{path} already exists; not overwritten",
                         hint="choose another --dir or move the existing conf away") from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def export(conn, domain_name: str, directory: Path) -> Tuple[Path, List[str]]:
    import libvirt

    from ctys_libvirt.errors import NotFoundError

    try:
        dom = conn.lookupByName(domain_name)
    except libvirt.libvirtError:
        dom = None
        try:
            dom = conn.lookupByUUIDString(domain_name)
        except libvirt.libvirtError:
            pass
    if dom is None:
        raise NotFoundError(f"no domain {domain_name!r}", hint="see `ctys-libvirt list --all`")
    flags = libvirt.VIR_DOMAIN_XML_INACTIVE if dom.isPersistent() else 0
    label, text, notes = conf_from_xml(dom.XMLDesc(flags))
    return write_conf(directory, label, text), notes
