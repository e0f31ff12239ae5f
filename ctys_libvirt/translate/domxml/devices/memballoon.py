"""``<memballoon>``: none unless ARGSADD asked for one (libvirt adds a virtio balloon
when the element is missing)."""
from __future__ import annotations

from typing import Optional

from lxml import etree

SubElement = etree.SubElement


def add_memballoon(devices: etree._Element, model: Optional[str]) -> None:
    SubElement(devices, "memballoon").set("model", model or "none")
