"""``<disk>``: one attached medium of the plan (hard disk, CD-ROM, floppy, USB stick),
a file or a block device, with its boot order."""
from __future__ import annotations

from lxml import etree

from ctys_libvirt.translate.domxml.text import clean
from ctys_libvirt.translate.plan import PlanDisk

SubElement = etree.SubElement


def add_disk(devices: etree._Element, d: PlanDisk) -> None:
    el = SubElement(devices, "disk")
    el.set("type", "block" if d.block else "file")
    el.set("device", d.device)
    driver = SubElement(el, "driver")
    driver.set("name", "qemu")
    driver.set("type", d.format)
    SubElement(el, "source").set("dev" if d.block else "file", clean(d.path, f"{d.role} path"))
    target = SubElement(el, "target")
    target.set("dev", d.target)
    target.set("bus", d.bus)
    if d.boot_order is not None:
        SubElement(el, "boot").set("order", str(d.boot_order))
    if d.readonly:
        SubElement(el, "readonly")
