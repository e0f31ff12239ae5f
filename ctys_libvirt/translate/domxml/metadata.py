"""``<metadata><ctys:instance>``: where a domain came from (conf path and hash, label,
tool version), how it was asked to boot (``<ctys:request>``) and the conf's ``#@#`` keys.

The reader is ``ctys_libvirt.translate.metadata.read_instance``; the element names and attributes
are an on-disk contract (domains defined by earlier versions carry them)."""
from __future__ import annotations

from itertools import chain

from lxml import etree

from ctys_libvirt import __version__
from ctys_libvirt.translate.domxml.text import CTYS, NSMAP_CTYS, XML_BAD, meta_text
from ctys_libvirt.translate.plan import MachinePlan

SubElement = etree.SubElement


def add_metadata(domain: etree._Element, plan: MachinePlan, phase: str) -> None:
    """``<metadata>`` holding our ``<ctys:instance>``; ``phase``: boot | install | final."""
    inst = SubElement(SubElement(domain, "metadata"), CTYS + "instance", nsmap=NSMAP_CTYS)
    conf = SubElement(inst, CTYS + "conf")
    conf.set("path", meta_text(plan.conf_path))
    conf.set("sha256", plan.conf_sha256 or "")
    SubElement(inst, CTYS + "label").text = meta_text(plan.name)
    tool = SubElement(inst, CTYS + "tool")
    tool.set("name", "ctys-libvirt")
    tool.set("version", __version__)
    add_request(inst, plan, phase)
    add_keys(inst, plan.keys)


def add_request(inst: etree._Element, plan: MachinePlan, phase: str) -> None:
    """``<ctys:request>``: console, phase and the CREATE values that shaped this domain,
    with one ``<ctys:argsadd>`` per request ARGSADD word."""
    req = plan.request
    el = SubElement(inst, CTYS + "request")
    el.set("console", plan.console.value)
    el.set("phase", phase)
    if plan.bootmode is not None:
        el.set("bootmode", plan.bootmode.value)
    if req.boot_path and phase == "boot":
        el.set("bootpath", meta_text(req.boot_path))
    if req.instmode is not None:
        el.set("instmode", meta_text(req.instmode.text))
    if req.kernel is not None:
        el.set("kernel", meta_text(req.kernel.text))
    if plan.vnc_display is not None:
        el.set("vncdisplay", str(plan.vnc_display))
    for word in req.argsadd:
        SubElement(el, CTYS + "argsadd").text = meta_text(word)


def add_keys(inst: etree._Element, keys) -> None:
    """``<ctys:keys>``: one ``<ctys:key name=...>`` per conf ``#@#`` key, in file order."""
    el = SubElement(inst, CTYS + "keys")
    tag = CTYS + "key"
    # a conf has dozens of keys and almost never a character XML cannot carry: check
    # them all at once (this loop is a third of the document's build time).  Every such
    # character is non-printable (Cc, Cs, Cn), and isprintable() scans faster than the
    # regex: the regex only decides when something non-printable is there
    text = "".join(chain.from_iterable(keys))
    if not text.isprintable() and XML_BAD.search(text):
        keys = [(meta_text(name), meta_text(value)) for name, value in keys]
    for name, value in keys:
        key = SubElement(el, tag)
        key.set("name", name)
        key.text = value
