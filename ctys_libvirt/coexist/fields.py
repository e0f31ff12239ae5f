"""The conf-owned fields of a domain XML: how each is found, compared and replaced.

A field's *value* is a short canonical text built from what it means (memory in KiB, the
disks' targets/sources/boot orders, ...), never from the raw XML: libvirt adds addresses,
aliases, units and machine versions on define, and those must not read as an edit.
Everything not listed here (devices the admin added, title, description, other metadata,
tuning, the NIC's host wiring, emulator, memballoon) belongs to the definition's owner and
is never touched once the domain exists."""
from __future__ import annotations

import copy
import hashlib
import re
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from lxml import etree

from ctys_libvirt.translate.metadata import METADATA_NS

QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"
_QCMD = "{%s}commandline" % QEMU_NS
_QARG = "{%s}arg" % QEMU_NS
_QENV = "{%s}env" % QEMU_NS
_INSTANCE = "{%s}instance" % METADATA_NS

# Fields the conf owns (checked for drift and conflicts), in the order a diff shows them.
CONF_FIELDS = ("type", "memory", "vcpu", "cpu", "os", "clock", "disks", "nic", "video",
               "graphics", "serial", "qemu:commandline")
# A run's one-off choices may also change these in its live configuration only.
RUN_FIELDS = CONF_FIELDS + ("lifecycle", "nic-wiring")

# conf variable(s) behind each field, for messages and `sync --prefer domain`
CONF_VARIABLES = {
    "type": "ACCELERATOR", "memory": "MEMSIZE", "vcpu": "SMP", "cpu": "CPU/ARCH",
    "os": "ARCH/KERNELIMAGE/INITRDIMAGE/APPEND/DEFAULTBOOTMODE", "clock": "TIMEOPT",
    "disks": "HDDBOOTIMAGE/HDB../CDIMAGE/FDDIMAGE/DEFAULTBOOTMODE", "nic": "MAC0/NIC",
    "video": "VGADRIVER", "graphics": "#@#DEFAULTCONSOLE/KBD_LAYOUT/VNCACCESSDISPLAY",
    "serial": "#@#DEFAULTCONSOLE", "qemu:commandline": "ARGSADD/QEMUBIOS/TIMEOPT",
}


class Context:
    """What identifies *our* devices among the admin's: the disk targets and the NIC MAC
    the conf uses now and used at the last define."""

    def __init__(self, targets: Sequence[str] = (), macs: Sequence[str] = (),
                 first_nic: bool = False):
        self.targets = {t for t in targets if t}
        self.macs = {m.lower() for m in macs if m}
        # no record of our MAC (a domain defined before this version): the first NIC is ours
        self.first_nic = first_nic


def _devices(root) -> Optional[etree._Element]:
    return root.find("devices")


def _text(el) -> str:
    return (el.text or "").strip() if el is not None else ""


# -- value extraction ---------------------------------------------------------------

def _kib(el) -> str:
    if el is None:
        return ""
    unit = (el.get("unit") or "KiB").lower()
    mult = {"b": 1 / 1024, "bytes": 1 / 1024, "k": 1, "kib": 1, "kb": 1000 / 1024, "m": 1024,
            "mib": 1024, "mb": 1e6 / 1024, "g": 1024 ** 2, "gib": 1024 ** 2, "gb": 1e9 / 1024,
            "t": 1024 ** 3, "tib": 1024 ** 3}.get(unit, 1)
    try:
        return f"{int(int(_text(el)) * mult)} KiB"
    except ValueError:
        return _text(el)


def _machine(m: str) -> str:
    # libvirt expands 'pc' to 'pc-i440fx-7.2' on define: compare the machine family
    m = m or ""
    if m == "pc" or m.startswith("pc-i440fx"):
        return "pc"
    if m == "q35" or m.startswith("pc-q35"):
        return "q35"
    return m


def disk_target(disk) -> str:
    t = disk.find("target")
    return t.get("dev", "") if t is not None else ""


def _our_disks(root, ctx: Context) -> List[etree._Element]:
    dev = _devices(root)
    if dev is None:
        return []
    return [d for d in dev.iterfind("disk") if disk_target(d) in ctx.targets]


def _disk_value(d) -> str:
    src = d.find("source")
    path = ""
    if src is not None:
        path = src.get("file") or src.get("dev") or ""
    drv = d.find("driver")
    boot = d.find("boot")
    t = d.find("target")
    parts = [disk_target(d), d.get("device", "disk"), t.get("bus", "") if t is not None else "",
             path, f"format={drv.get('type', '')}" if drv is not None else "format="]
    if d.find("readonly") is not None:
        parts.append("readonly")
    if boot is not None:
        parts.append(f"boot={boot.get('order')}")
    return " ".join(parts)


def _mac_of(iface) -> str:
    m = iface.find("mac")
    return (m.get("address") or "").lower() if m is not None else ""


def our_nic(root, ctx: Context):
    dev = _devices(root)
    if dev is None:
        return None
    ifaces = dev.findall("interface")
    for i in ifaces:
        if _mac_of(i) in ctx.macs:
            return i
    return ifaces[0] if ifaces and ctx.first_nic else None


def _nic_value(i) -> str:
    if i is None:
        return "none"
    m = i.find("model")
    b = i.find("boot")
    return " ".join([_mac_of(i) or "(libvirt's MAC)", m.get("type", "") if m is not None else "",
                     f"boot={b.get('order')}" if b is not None else ""]).strip()


def _wiring_value(i) -> str:
    if i is None:
        return "none"
    src = i.find("source")
    attrs = sorted(src.attrib.items()) if src is not None else []
    return i.get("type", "") + " " + " ".join(f"{k}={v}" for k, v in attrs)


def _graphics_value(g) -> str:
    parts = [g.get("type", "")]
    if g.get("autoport") == "no" and g.get("port"):
        parts.append(f"port={g.get('port')}")
    if g.get("keymap"):
        parts.append(f"keymap={g.get('keymap')}")
    listen = g.get("listen")
    if listen:
        parts.append(f"listen={listen}")
    return " ".join(parts)


def value(root, name: str, ctx: Context) -> str:
    """The canonical text of field ``name`` in the domain ``root``."""
    if name == "type":
        return root.get("type", "")
    if name == "memory":
        return _kib(root.find("memory"))
    if name == "vcpu":
        return _text(root.find("vcpu"))
    if name == "cpu":
        cpu = root.find("cpu")
        if cpu is None:
            return "default"
        feats = sorted(f"{f.get('policy', 'require')}:{f.get('name')}" for f in cpu.iterfind("feature"))
        return " ".join([cpu.get("mode", "custom"), _text(cpu.find("model"))] + feats).strip()
    if name == "os":
        os_ = root.find("os")
        if os_ is None:
            return ""
        t = os_.find("type")
        parts = [t.get("arch", "") if t is not None else "", _machine(t.get("machine", "") if t is not None else "")]
        for tag in ("kernel", "initrd", "cmdline"):
            if os_.find(tag) is not None:
                parts.append(f"{tag}={_text(os_.find(tag))}")
        parts += [f"boot={b.get('dev')}" for b in os_.iterfind("boot")]
        return " ".join(parts)
    if name == "clock":
        c = root.find("clock")
        return c.get("offset", "utc") if c is not None else "utc"
    if name == "lifecycle":
        return " ".join(f"{t}={_text(root.find(t))}" for t in ("on_poweroff", "on_reboot", "on_crash"))
    if name == "disks":
        return "; ".join(_disk_value(d) for d in _our_disks(root, ctx)) or "none"
    if name == "nic":
        return _nic_value(our_nic(root, ctx))
    if name == "nic-wiring":
        return _wiring_value(our_nic(root, ctx))
    dev = _devices(root)
    if name == "video":
        if dev is None:
            return "none"
        return " ".join(v.find("model").get("type", "") for v in dev.iterfind("video")
                        if v.find("model") is not None) or "default"
    if name == "graphics":
        if dev is None:
            return "none"
        return "; ".join(_graphics_value(g) for g in dev.iterfind("graphics")) or "none"
    if name == "serial":
        if dev is None:
            return "none"
        out = []
        for s in list(dev.iterfind("serial")) + list(dev.iterfind("console")):
            log = s.find("log")
            out.append(s.tag + ":" + s.get("type", "") + (f" log={log.get('file')}" if log is not None else ""))
        return " ".join(out) or "none"
    if name == "qemu:commandline":
        cmd = root.find(_QCMD)
        if cmd is None:
            return "none"
        # the environment counts too: CONSOLE SDL sets one (DBUS_SESSION_BUS_ADDRESS)
        words = [repr(a.get("value", "")) for a in cmd.iterfind(_QARG)]
        words += [f"env:{e.get('name', '')}={e.get('value', '')}" for e in cmd.iterfind(_QENV)]
        return " ".join(words) or "none"
    raise KeyError(name)


def values(root, ctx: Context, names: Sequence[str] = CONF_FIELDS) -> Dict[str, str]:
    return {n: value(root, n, ctx) for n in names}


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# -- replacement --------------------------------------------------------------------

def _replace_top(dst, src, tag: str, after: Sequence[str]) -> None:
    """``dst``'s <tag> becomes a copy of ``src``'s (removed when src has none)."""
    old = dst.find(tag)
    new = src.find(tag)
    if new is not None:
        new = copy.deepcopy(new)
        if old is not None:
            old.addprevious(new)
            dst.remove(old)
        else:
            _insert_after(dst, new, after)
    elif old is not None:
        dst.remove(old)


def _insert_after(parent, el, after: Sequence[str]) -> None:
    """Insert ``el`` after the last child whose tag is in ``after`` (else at the end)."""
    anchor = None
    for child in parent:
        if child.tag in after:
            anchor = child
    if anchor is not None:
        anchor.addnext(el)
    else:
        parent.append(el)


def _ensure_devices(root):
    dev = root.find("devices")
    if dev is None:
        dev = etree.SubElement(root, "devices")
    return dev


def _keep_address(new, old) -> None:
    """The guest keeps its PCI/drive address when its device is replaced in place."""
    if old is None:
        return
    for tag in ("address", "alias"):
        el = old.find(tag)
        if el is not None and new.find(tag) is None:
            new.append(copy.deepcopy(el))


def _replace_devices(dst, src, tag_list: Sequence[str], pick_old: Callable, pick_new: Callable,
                     key: Optional[Callable] = None) -> None:
    dev = _ensure_devices(dst)
    olds = pick_old(dst)
    news = [copy.deepcopy(e) for e in pick_new(src)]
    by_key = {key(o): o for o in olds} if key else {}
    anchor = olds[0] if olds else None
    for n in news:
        if key:
            _keep_address(n, by_key.get(key(n)))
        if anchor is not None:
            anchor.addprevious(n)
        else:
            _insert_after(dev, n, ("emulator",) + tuple(tag_list))
    for o in olds:
        dev.remove(o)


def replace(dst, src, name: str, ctx: Context) -> None:
    """Field ``name`` of ``dst`` (the definition being merged) becomes ``src``'s (the
    generated XML); nothing else of ``dst`` changes."""
    if name == "type":
        dst.set("type", src.get("type", "qemu"))
    elif name == "memory":
        _replace_top(dst, src, "memory", ("name", "uuid", "title", "description", "metadata", "maxMemory"))
        cur = dst.find("currentMemory")
        if cur is not None:
            dst.remove(cur)             # libvirt sets it to the new <memory>
    elif name == "vcpu":
        _replace_top(dst, src, "vcpu", ("memory", "currentMemory", "blkiotune", "memtune", "memoryBacking"))
    elif name == "cpu":
        _replace_top(dst, src, "cpu", ("os", "features", "vcpus", "iothreads", "cputune"))
    elif name == "os":
        old, new = dst.find("os"), src.find("os")
        if old is None or new is None:
            _replace_top(dst, src, "os", ("vcpu", "iothreads", "cputune", "resource", "sysinfo"))
            return
        for el in [c for c in old if c.tag in ("type", "kernel", "initrd", "cmdline", "boot")]:
            old.remove(el)
        for i, el in enumerate(c for c in new if c.tag in ("type", "kernel", "initrd", "cmdline", "boot")):
            old.insert(i, copy.deepcopy(el))
    elif name == "clock":
        c = dst.find("clock")
        if c is None:
            _replace_top(dst, src, "clock", ("cpu", "features", "os"))
        else:
            sc = src.find("clock")
            c.set("offset", sc.get("offset", "utc") if sc is not None else "utc")
    elif name == "lifecycle":
        for tag in ("on_poweroff", "on_reboot", "on_crash"):
            _replace_top(dst, src, tag, ("clock", "on_poweroff", "on_reboot"))
    elif name == "disks":
        _replace_devices(dst, src, ("disk",), lambda r: _our_disks(r, ctx),
                         lambda r: _our_disks(r, ctx), key=disk_target)
    elif name in ("nic", "nic-wiring"):
        dev = _ensure_devices(dst)
        old, new = our_nic(dst, ctx), our_nic(src, ctx)
        if new is None:
            if old is not None:
                dev.remove(old)
            return
        if old is None:
            _insert_after(dev, copy.deepcopy(new), ("emulator", "disk", "controller", "filesystem"))
            return
        if name == "nic":
            # the conf's MAC/model/boot order; the host wiring (network, bridge) stays
            for tag in ("mac", "model", "boot"):
                o, n = old.find(tag), new.find(tag)
                if o is not None:
                    old.remove(o)
                if n is not None:
                    old.append(copy.deepcopy(n))
        else:
            old.set("type", new.get("type", "user"))
            o, n = old.find("source"), new.find("source")
            if o is not None:
                old.remove(o)
            if n is not None:
                old.insert(0, copy.deepcopy(n))
    elif name in ("video", "graphics"):
        _replace_devices(dst, src, (name,), lambda r: _all(r, name), lambda r: _all(r, name))
    elif name == "serial":
        _replace_devices(dst, src, ("serial", "console"),
                         lambda r: _all(r, "serial") + _all(r, "console"),
                         lambda r: _all(r, "serial") + _all(r, "console"))
    elif name == "qemu:commandline":
        for old in dst.findall(_QCMD):
            dst.remove(old)
        new = src.find(_QCMD)
        if new is not None:
            dst.append(copy.deepcopy(new))
    else:
        raise KeyError(name)


def _all(root, tag: str) -> List[etree._Element]:
    dev = _devices(root)
    return [] if dev is None else dev.findall(tag)


def replace_instance(dst, src) -> None:
    """Our <ctys:instance> of ``dst`` becomes ``src``'s; other metadata stays."""
    md = dst.find("metadata")
    new_md = src.find("metadata")
    new = new_md.find(_INSTANCE) if new_md is not None else None
    if md is None:
        if new is None:
            return
        md = etree.Element("metadata")
        _insert_after(dst, md, ("name", "uuid", "genid", "title", "description"))
    for old in md.findall(_INSTANCE):
        md.remove(old)
    if new is not None:
        md.append(copy.deepcopy(new))


def targets_of(root) -> Tuple[str, ...]:
    dev = _devices(root)
    return tuple(disk_target(d) for d in dev.iterfind("disk")) if dev is not None else ()


def macs_of(root) -> Tuple[str, ...]:
    dev = _devices(root)
    return tuple(_mac_of(i) for i in dev.iterfind("interface")) if dev is not None else ()


_WS = re.compile(r"\s+")


def parse(xml, known: Optional[Mapping[str, etree._Element]] = None) -> etree._Element:
    """``xml`` as a tree ours to change.  ``known``: trees the caller built, by the text they
    were serialized to (``DomainBuild.tree``): a copy of one of those instead of parsing our
    own text again."""
    tree = known.get(xml) if known is not None and isinstance(xml, str) else None
    if tree is not None:
        return copy.deepcopy(tree)
    parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)
    return etree.fromstring(xml.encode() if isinstance(xml, str) else xml, parser)
