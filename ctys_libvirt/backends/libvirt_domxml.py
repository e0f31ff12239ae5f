"""Facts read from one domain XML (live or inactive) for LIST, CREATE results and the
"is this domain ours?" check.  One lxml parse per domain."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional

from lxml import etree

# Our own small lifecycle element, next to the translator's metadata: the digest of the
# XML we last defined, so CREATE re-defines only when the generated XML changed.
LIFECYCLE_NS = "https://ctys-libvirt.invalid/ns/lifecycle/1"
LIFECYCLE_TAG = f"{{{LIFECYCLE_NS}}}define"


def metadata_ns() -> Optional[str]:
    try:
        from ctys_libvirt.translate.xml import METADATA_NS
    except ImportError:
        return None
    return METADATA_NS


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


def _local(tag) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _meta_dict(el) -> Dict[str, object]:
    """Flatten our metadata element: attributes and leaf children by local name; a
    ``keys``-like element with children becomes a nested dict."""
    out: Dict[str, object] = dict(el.attrib)
    for child in el:
        name = _local(child.tag)
        if not name:
            continue
        if len(child):
            sub = {}
            for g in child:
                k = g.get("name") or _local(g.tag)
                sub[k] = (g.text or g.get("value") or "")
            out[name] = sub
        else:
            out[name] = child.text if child.text is not None else dict(child.attrib)
    return out


def _read_meta(el) -> Dict[str, object]:
    """The translator's reader when present (one spelling for everybody), else a
    generic flattening of the element."""
    try:
        from ctys_libvirt.translate.xml import read_metadata
    except ImportError:
        return _meta_dict(el)
    return read_metadata(el) or {}


def parse(xml: str, ns: Optional[str] = None) -> DomXml:
    root = etree.fromstring(xml.encode() if isinstance(xml, str) else xml)
    d = DomXml()
    d.name = root.findtext("name") or ""
    d.uuid = root.findtext("uuid") or ""
    d.dom_type = root.get("type", "")
    ostype = root.find("os/type")
    if ostype is not None:
        d.arch = ostype.get("arch", "")
    d.emulator = root.findtext("devices/emulator") or ""
    try:
        d.memory_kib = int(root.findtext("memory") or 0) or None
        d.vcpus = int(root.findtext("vcpu") or 0) or None
    except ValueError:
        pass
    iface = root.find("devices/interface")
    if iface is not None:
        m = iface.find("mac")
        d.mac = m.get("address") if m is not None else None
        t = iface.find("target")
        d.ifname = t.get("dev") if t is not None else None
    for g in root.iterfind("devices/graphics"):
        d.graphics = d.graphics or g.get("type")
        if g.get("type") == "vnc":
            port = g.get("port")
            if port and port.lstrip("-").isdigit() and int(port) > 0:
                d.vnc_port = int(port)
            d.vnc_listen = g.get("listen")
            break
    types = []
    for s in list(root.iterfind("devices/serial")) + list(root.iterfind("devices/console")):
        types.append(s.get("type"))
        if s.get("type") == "pty" and d.serial_pty is None:
            src = s.find("source")
            if src is not None and src.get("path"):
                d.serial_pty = src.get("path")
            elif s.get("tty"):
                d.serial_pty = s.get("tty")
    d.serial_types = tuple(types)
    md = root.find("metadata")
    if md is not None:
        ns = ns if ns is not None else metadata_ns()
        for child in md:
            if not isinstance(child.tag, str):
                continue
            q = etree.QName(child.tag)
            if ns and q.namespace == ns:
                d.ours = True
                d.meta = _read_meta(child)
            elif q.namespace == LIFECYCLE_NS:
                d.define_digest = child.get("digest")
    return d


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


def with_define_digest(xml: str, digest: str) -> str:
    """``xml`` with our lifecycle element (digest of the generated XML) in <metadata>."""
    root = etree.fromstring(xml.encode())
    md = root.find("metadata")
    if md is None:
        md = etree.Element("metadata")
        # <metadata> goes right after <description>/<title>/<uuid>/<name>; libvirt
        # re-orders on define anyway, but keep the input schema-valid.
        anchor = None
        for tag in ("description", "title", "uuid", "name"):
            anchor = root.find(tag)
            if anchor is not None:
                break
        if anchor is not None:
            anchor.addnext(md)
        else:
            root.insert(0, md)
    for old in md.findall(LIFECYCLE_TAG):
        md.remove(old)
    el = etree.SubElement(md, LIFECYCLE_TAG, nsmap={"ctyslc": LIFECYCLE_NS})
    el.set("digest", digest)
    return etree.tostring(root, encoding="unicode")
