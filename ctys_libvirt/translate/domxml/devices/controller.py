"""``<controller type='usb'>``: the USB controller ARGSADD -usb or -device <usb host
controller> asked for (translate.legacy_args)."""
from __future__ import annotations

from typing import Optional

from lxml import etree

SubElement = etree.SubElement


def add_usb_controller(devices: etree._Element, model: Optional[str]) -> None:
    # libvirt's controller 0 is the one QEMU's -usb made; a second on the same slot fails
    el = SubElement(devices, "controller")
    el.set("type", "usb")
    el.set("index", "0")
    el.set("model", model or "piix3-uhci")
