"""``<input bus='usb'>``: USB tablet, mouse or keyboard from ARGSADD -usbdevice/-device."""
from __future__ import annotations

from lxml import etree

SubElement = etree.SubElement


def add_input(devices: etree._Element, kind: str) -> None:
    """``<input type=kind bus='usb'>`` (tablet | mouse | keyboard)."""
    el = SubElement(devices, "input")
    el.set("type", kind)
    el.set("bus", "usb")
