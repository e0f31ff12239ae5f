"""Facts read from one domain XML (live or inactive) for LIST, CREATE results and the
"is this domain ours?" check.  One lxml parse per domain."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional

from ctys_libvirt.translate.metadata import LIFECYCLE_NS, METADATA_NS, read_instance as read_metadata  # noqa: E402


@dataclass
class DomXml:
    name: str = ""
    uuid: str = ""
    dom_type: str = ""
    arch: str = ""
    emulator: str = ""
    mac: Optional[str] = None
    ifname: Optional[str] = None
    vnc_port: Optional[int] = None
    vnc_listen: Optional[str] = None
    graphics: Optional[str] = None           # vnc | sdl | spice | None
    serial_pty: Optional[str] = None
    serial_types: tuple = ()
    memory_kib: Optional[int] = None
    vcpus: Optional[int] = None
    ours: bool = False
    meta: Dict[str, object] = field(default_factory=dict)
    define_digest: Optional[str] = None


def parse(xml, ns: Optional[str] = None) -> DomXml:
    """The facts of one domain XML in a single pass over the tree (LIST parses one XML
    per domain, so no XPath and no per-field searches).  Same answers as path lookups:
    the first <name>/<uuid>/<memory>/<vcpu>/<metadata> counts, <os> and <devices>
    children are taken in document order."""
    from lxml import etree      # here: LIST answered from its cache never parses XML

    root = etree.fromstring(xml.encode() if isinstance(xml, str) else xml)
    ns = ns if ns is not None else METADATA_NS
    d = DomXml()
    d.dom_type = root.get("type", "")
    first = {}
    dev = _Devices()
    for el in root:
        tag = el.tag
        if tag == "devices":
            dev.add(el)
        elif tag == "os":
            if not d.arch and "os" not in first:
                t = el.find("type")
                if t is not None:
                    first["os"] = el
                    d.arch = t.get("arch", "")
        elif tag not in first:  # (comments land here under a non-str key: harmless)
            first[tag] = el
    el = first.get("name")
    if el is not None:
        d.name = el.text or ""
    el = first.get("uuid")
    if el is not None:
        d.uuid = el.text or ""
    try:
        el = first.get("memory")
        if el is not None:
            d.memory_kib = int(el.text or 0) or None
        el = first.get("vcpu")
        if el is not None:
            d.vcpus = int(el.text or 0) or None
    except ValueError:
        pass
    dev.into(d)
    md = first.get("metadata")
    if md is not None:
        for child in md:
            ctag = child.tag
            if not isinstance(ctag, str) or ctag[:1] != "{":
                continue  # comments, or no namespace: neither ours nor our lifecycle
            cns = ctag[1:ctag.index("}")]
            if ns and cns == ns:
                d.ours = True
                d.meta = read_metadata(child, ns)
            elif cns == LIFECYCLE_NS:
                d.define_digest = child.get("digest")
    return d


class _Devices:
    """The <devices> children parse() needs, collected in one pass."""

    __slots__ = ("emulator", "iface", "graphics", "serials", "consoles")

    def __init__(self):
        self.emulator = self.iface = None
        self.graphics = []
        self.serials = []
        self.consoles = []

    def add(self, devices) -> None:
        for el in devices:
            tag = el.tag
            if tag == "emulator":
                if self.emulator is None:
                    self.emulator = el
            elif tag == "interface":
                if self.iface is None:
                    self.iface = el
            elif tag == "graphics":
                self.graphics.append(el)
            elif tag == "serial":
                self.serials.append(el)
            elif tag == "console":
                self.consoles.append(el)

    def into(self, d: DomXml) -> None:
        if self.emulator is not None:
            d.emulator = self.emulator.text or ""
        iface = self.iface
        if iface is not None:
            m = iface.find("mac")
            d.mac = m.get("address") if m is not None else None
            t = iface.find("target")
            d.ifname = t.get("dev") if t is not None else None
        for g in self.graphics:
            gtype = g.get("type")
            d.graphics = d.graphics or gtype
            if gtype == "vnc":
                port = g.get("port")
                if port and port.lstrip("-").isdigit() and int(port) > 0:
                    d.vnc_port = int(port)
                d.vnc_listen = g.get("listen")
                break
        types = []
        for s in self.serials + self.consoles:
            stype = s.get("type")
            types.append(stype)
            if stype == "pty" and d.serial_pty is None:
                src = s.find("source")
                if src is not None and src.get("path"):
                    d.serial_pty = src.get("path")
                elif s.get("tty"):
                    d.serial_pty = s.get("tty")
        d.serial_types = tuple(types)


def meta_value(meta: Dict[str, object], *names: str) -> Optional[str]:
    """First non-empty string among ``names`` (the translator's spelling may vary)."""
    for n in names:
        v = meta.get(n)
        if isinstance(v, str) and v:
            return v
        if isinstance(v, dict):
            for k in ("path", "value", "sha256"):
                if isinstance(v.get(k), str) and v.get(k):
                    return v[k]
    return None
