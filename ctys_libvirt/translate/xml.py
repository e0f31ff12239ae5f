"""MachinePlan -> libvirt domain XML (design.md §5, conf-format.md §5.7).

The skeleton ``xml_templates/domain.xml`` is parsed with lxml and filled through the lxml
API only, so every value is escaped structurally.  Output is pretty printed in a fixed
element order so golden files diff well.

Public API:

    build_domain(vm, req, caps, options=None) -> DomainBuild
    read_metadata(xml_or_element) -> dict | None
    METADATA_NS, METADATA_PREFIX, QEMU_NS
    validate_domain_xml(xml) -> None | str      (RelaxNG check against libvirt's schema)
    XmlOptions
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, replace
from importlib import resources
from typing import Any, Dict, List, Optional, Union

from lxml import etree

from ctys_libvirt.errors import ConfError
from ctys_libvirt.model import BootRequest, HostCaps, VmConfig
from ctys_libvirt.translate.plan import MachinePlan, resolve_plan
from ctys_libvirt.translate.request import VNC_BASEPORT

METADATA_NS = "https://ctys-libvirt.invalid/xmlns/domain/1"
METADATA_PREFIX = "ctys"
QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"
VNC_LISTEN = "127.0.0.1"
# ctys/QEMU -vga names -> libvirt <video><model type=...>
VIDEO_MODELS = {"cirrus": "cirrus", "std": "vga", "vmware": "vmvga", "qxl": "qxl",
                "virtio": "virtio", "none": "none"}
# Characters XML 1.0 cannot carry at all.
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True)
class XmlOptions:
    """How the domain is wired on the target host.

    network: libvirt network name (wins over the active 'default' network); bridge: host
    bridge (wins over network); user_network: force user-mode networking; serial_log: file
    the serial console is logged to (tests read the guest marker from it)."""

    network: Optional[str] = None
    bridge: Optional[str] = None
    user_network: bool = False
    serial_log: Optional[str] = None


@dataclass
class DomainBuild:
    xml: str                          # the domain to start (install XML for install runs)
    final_xml: Optional[str]          # install runs: persistent definition (same UUID)
    name: str
    uuid: str                         # dashed
    warnings: List[str]
    plan: MachinePlan
    install: bool                     # xml is a transient install run (on_reboot destroy)
    final_plan: Optional[MachinePlan] = None


_TEMPLATE: Optional[etree._Element] = None
_SCHEMA: Optional[etree.RelaxNG] = None
SCHEMA_PATH = "/usr/share/libvirt/schemas/domain.rng"


def validate_domain_xml(xml: Union[str, bytes]) -> Optional[str]:
    """None if ``xml`` validates against libvirt's domain RelaxNG schema, else the first
    problem (schema compiled once per process)."""
    global _SCHEMA
    if _SCHEMA is None:
        try:
            _SCHEMA = etree.RelaxNG(etree.parse(SCHEMA_PATH))
        except (OSError, etree.LxmlError) as exc:
            return f"cannot load the libvirt schema {SCHEMA_PATH}: {exc}"
    doc = etree.fromstring(xml.encode() if isinstance(xml, str) else xml)
    if _SCHEMA.validate(doc):
        return None
    err = _SCHEMA.error_log.last_error
    return f"line {err.line}: {err.message}" if err is not None else "invalid"


def _template() -> etree._Element:
    global _TEMPLATE
    if _TEMPLATE is None:
        parser = etree.XMLParser(remove_blank_text=True, remove_comments=True)
        data = resources.files("ctys_libvirt.xml_templates").joinpath("domain.xml").read_bytes()
        _TEMPLATE = etree.fromstring(data, parser)
    return copy.deepcopy(_TEMPLATE)


def _clean(value: Any, what: str) -> str:
    text = str(value)
    if _XML_BAD.search(text):
        raise ConfError(f"{what} {text!r} contains control characters XML cannot carry",
                        hint="remove them from the conf or the request")
    return text


def _meta_text(value: Any) -> str:
    # Metadata is informational: replace what XML cannot carry instead of failing.
    text = str(value)
    return _XML_BAD.sub("\ufffd", text) if _XML_BAD.search(text) else text


def _sub(parent: etree._Element, tag: str, attrib: Optional[Dict[str, str]] = None,
         text: Optional[str] = None) -> etree._Element:
    el = etree.SubElement(parent, tag, attrib) if attrib else etree.SubElement(parent, tag)
    if text is not None:
        el.text = text
    return el


def _domain_type(plan: MachinePlan, caps: HostCaps, warnings: List[str]) -> str:
    if plan.accelerator == "KVM":
        if caps.kvm:
            return "kvm"
        warnings.append("ACCELERATOR=KVM but KVM is not usable on this host "
                        "(/dev/kvm missing or not accessible to QEMU); using TCG (domain type qemu)")
    elif plan.accelerator == "KQEMU":
        warnings.append("ACCELERATOR=KQEMU is obsolete (removed from QEMU); using TCG (domain type qemu)")
    elif plan.accelerator not in ("QEMU", "TCG"):
        warnings.append(f"ACCELERATOR={plan.accelerator} is unknown; using TCG (domain type qemu)")
    return "qemu"


def _metadata(md: etree._Element, vm: VmConfig, plan: MachinePlan, phase: str) -> None:
    from ctys_libvirt import __version__

    ns = "{%s}" % METADATA_NS
    inst = etree.SubElement(md, ns + "instance", nsmap={METADATA_PREFIX: METADATA_NS})
    _sub(inst, ns + "conf", {"path": _meta_text(plan.conf_path), "sha256": plan.conf_sha256 or ""})
    _sub(inst, ns + "label", text=_meta_text(plan.name))
    _sub(inst, ns + "tool", {"name": "ctys-libvirt", "version": __version__})
    req = plan.request
    attrs = {"console": plan.console.value, "phase": phase}
    if plan.bootmode is not None:
        attrs["bootmode"] = plan.bootmode.value
    if req.boot_path and phase == "boot":
        attrs["bootpath"] = _meta_text(req.boot_path)
    if req.instmode is not None:
        attrs["instmode"] = _meta_text(req.instmode)
    if req.kernel is not None:
        attrs["kernel"] = _meta_text(req.kernel)
    if plan.vnc_display is not None:
        attrs["vncdisplay"] = str(plan.vnc_display)
    r = _sub(inst, ns + "request", attrs)
    for word in req.argsadd:
        _sub(r, ns + "argsadd", text=_meta_text(word))
    keys = _sub(inst, ns + "keys")
    key_tag = ns + "key"
    sub = etree.SubElement
    for k, v in plan.keys:
        sub(keys, key_tag, name=_meta_text(k)).text = _meta_text(v)


def _devices(dev: etree._Element, plan: MachinePlan, caps: HostCaps, opts: XmlOptions) -> None:
    if caps.emulator:
        _sub(dev, "emulator", text=_clean(caps.emulator, "emulator path"))
    for d in plan.disks:
        disk = _sub(dev, "disk", {"type": "block" if d.block else "file", "device": d.device})
        _sub(disk, "driver", {"name": "qemu", "type": d.format})
        _sub(disk, "source", {"dev" if d.block else "file": _clean(d.path, f"{d.role} path")})
        _sub(disk, "target", {"dev": d.target, "bus": d.bus})
        if d.boot_order is not None:
            _sub(disk, "boot", {"order": str(d.boot_order)})
        if d.readonly:
            _sub(disk, "readonly")
    if plan.nic is not None:
        if opts.bridge:
            iface = _sub(dev, "interface", {"type": "bridge"})
        elif opts.network or (caps.default_network_active and not opts.user_network):
            iface = _sub(dev, "interface", {"type": "network"})
        else:
            iface = _sub(dev, "interface", {"type": "user"})
        if plan.nic.mac:
            _sub(iface, "mac", {"address": plan.nic.mac})
        if opts.bridge:
            _sub(iface, "source", {"bridge": _clean(opts.bridge, "bridge name")})
        elif iface.get("type") == "network":
            _sub(iface, "source", {"network": _clean(opts.network or "default", "network name")})
        _sub(iface, "model", {"type": plan.nic.model})
        if plan.nic.boot_order is not None:
            _sub(iface, "boot", {"order": str(plan.nic.boot_order)})
    serial = _sub(dev, "serial", {"type": "pty"})
    if opts.serial_log:
        _sub(serial, "log", {"file": _clean(opts.serial_log, "serial log path"), "append": "on"})
    _sub(serial, "target", {"port": "0"})
    console = _sub(dev, "console", {"type": "pty"})
    _sub(console, "target", {"type": "serial", "port": "0"})
    graphics = None
    if plan.console.value == "VNC":
        graphics = _sub(dev, "graphics", {"type": "vnc"})
        if plan.vnc_display is not None:
            graphics.set("port", str(VNC_BASEPORT + plan.vnc_display))
            graphics.set("autoport", "no")
        else:
            graphics.set("autoport", "yes")
        graphics.set("listen", VNC_LISTEN)
        if plan.keymap:
            graphics.set("keymap", _clean(plan.keymap, "KBD_LAYOUT"))
        _sub(graphics, "listen", {"type": "address", "address": VNC_LISTEN})
    elif plan.console.value == "SDL":
        graphics = _sub(dev, "graphics", {"type": "sdl"})
    if graphics is None:
        _sub(_sub(dev, "video"), "model", {"type": "none"})
    elif plan.vga:
        _sub(_sub(dev, "video"), "model", {"type": VIDEO_MODELS[plan.vga]})
    _sub(dev, "memballoon", {"model": "none"})


def _qemu_commandline(root: etree._Element, plan: MachinePlan) -> None:
    args: List[str] = []
    if plan.qemubios:
        args += ["-L", plan.qemubios]
    args += list(plan.timeopt_args) + list(plan.argsadd)
    if not args:
        return
    q = "{%s}" % QEMU_NS
    cmd = etree.SubElement(root, q + "commandline", nsmap={"qemu": QEMU_NS})
    for a in args:
        etree.SubElement(cmd, q + "arg").set("value", _clean(a, "ARGSADD word"))


def _to_xml(vm: VmConfig, plan: MachinePlan, caps: HostCaps, opts: XmlOptions,
            phase: str, warnings: List[str]) -> str:
    root = _template()
    root.set("type", _domain_type(plan, caps, warnings))
    root.find("name").text = _clean(plan.name, "LABEL")
    root.find("uuid").text = plan.uuid_dashed
    _metadata(root.find("metadata"), vm, plan, phase)
    root.find("memory").text = str(plan.memory_mib)
    root.find("vcpu").text = str(plan.smp)
    os_el = root.find("os")
    t = os_el.find("type")
    t.set("arch", _clean(plan.arch, "ARCH"))
    t.set("machine", plan.machine)
    if plan.arch not in caps.arches:
        warnings.append(f"ARCH {plan.arch} is not offered by this host ({', '.join(caps.arches)})")
    if plan.kernel is not None:
        _sub(os_el, "kernel", text=_clean(plan.kernel.kernel, "KERNELIMAGE"))
        if plan.kernel.initrd is not None:
            _sub(os_el, "initrd", text=_clean(plan.kernel.initrd, "INITRDIMAGE"))
        if plan.kernel.append:
            _sub(os_el, "cmdline", text=_clean(plan.kernel.append, "APPEND"))
    cpu = root.find("cpu")
    if plan.cpu == "host":
        # -cpu host has no named model: libvirt's passthrough mode is the same thing
        cpu.attrib.clear()
        cpu.set("mode", "host-passthrough")
        cpu.remove(cpu.find("model"))
    else:
        cpu.find("model").text = _clean(plan.cpu, "CPU")
    root.find("clock").set("offset", "localtime" if plan.localtime else "utc")
    if phase == "install":
        root.find("on_reboot").text = "destroy"
    _devices(root.find("devices"), plan, caps, opts)
    _qemu_commandline(root, plan)
    return etree.tostring(root, pretty_print=True, encoding="unicode")


def _options(options: Any) -> XmlOptions:
    if options is None:
        return XmlOptions()
    if isinstance(options, XmlOptions):
        return options
    # CreateOptions (or anything with the same attribute names)
    return XmlOptions(network=getattr(options, "network", None), bridge=getattr(options, "bridge", None),
                      user_network=bool(getattr(options, "user_network", False)),
                      serial_log=getattr(options, "serial_log", None))


def build_domain(vm: VmConfig, req: BootRequest, caps: Optional[HostCaps] = None,
                 options: Any = None) -> DomainBuild:
    """Domain XML for ``vm`` booted as ``req`` on a host with ``caps``.

    For an INSTMODE request in the install phase, ``xml`` is the transient install domain
    (``on_reboot`` destroy, source first in the boot order) and ``final_xml`` the persistent
    definition with the same UUID that boots the install target.  Raises the plan's errors
    (UsageError, NotFoundError, ConfError)."""
    caps = caps or HostCaps()
    opts = _options(options)
    plan = resolve_plan(vm, req)
    warnings = list(plan.warnings)
    if plan.install_phase:
        xml = _to_xml(vm, plan, caps, opts, "install", warnings)
        fplan = resolve_plan(vm, replace(req, install_phase=False))
        final_xml = _to_xml(vm, fplan, caps, opts, "final", [])
        return DomainBuild(xml, final_xml, plan.name, plan.uuid_dashed, warnings, plan, True, fplan)
    phase = "final" if plan.install is not None else "boot"
    xml = _to_xml(vm, plan, caps, opts, phase, warnings)
    return DomainBuild(xml, None, plan.name, plan.uuid_dashed, warnings, plan, False)


def read_metadata(xml_or_element: Union[str, bytes, etree._Element]) -> Optional[Dict[str, Any]]:
    """Our ``<ctys:instance>`` from a domain XML, a metadata fragment (as ``dom.metadata()``
    returns it) or an lxml element -> dict, or None if the domain is not ours."""
    if isinstance(xml_or_element, (str, bytes)):
        try:
            parser = etree.XMLParser(resolve_entities=False, no_network=True)
            data = xml_or_element.encode() if isinstance(xml_or_element, str) else xml_or_element
            el = etree.fromstring(data, parser)
        except etree.XMLSyntaxError:
            return None
    else:
        el = xml_or_element
    ns = "{%s}" % METADATA_NS
    inst = el if el.tag == ns + "instance" else el.find(f".//{ns}instance")
    if inst is None:
        return None
    conf = inst.find(ns + "conf")
    tool = inst.find(ns + "tool")
    req = inst.find(ns + "request")
    label = inst.find(ns + "label")
    out: Dict[str, Any] = {
        "conf_path": conf.get("path") if conf is not None else None,
        "conf_sha256": conf.get("sha256") if conf is not None else None,
        "label": label.text if label is not None else None,
        "tool_version": tool.get("version") if tool is not None else None,
        "console": None, "phase": None, "bootmode": None, "bootpath": None, "instmode": None,
        "kernel": None, "vnc_display": None, "argsadd": [],
        "keys": {},
    }
    if req is not None:
        for k in ("console", "phase", "bootmode", "bootpath", "instmode", "kernel"):
            out[k] = req.get(k)
        if req.get("vncdisplay") is not None:
            out["vnc_display"] = int(req.get("vncdisplay"))
        out["argsadd"] = [a.text or "" for a in req.findall(ns + "argsadd")]
    out["install_phase"] = out["phase"] == "install"
    keys = inst.find(ns + "keys")
    if keys is not None:
        for k in keys.findall(ns + "key"):
            out["keys"].setdefault(k.get("name"), k.text or "")
    return out
