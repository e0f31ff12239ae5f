"""``<sound>``: a sound card from ARGSADD -soundhw/-device, with its HDA codec."""
from __future__ import annotations

from typing import Optional

from lxml import etree

SubElement = etree.SubElement


def add_sound(devices: etree._Element, model: str, codec: Optional[str]) -> None:
    el = SubElement(devices, "sound", model=model)
    if codec:
        SubElement(el, "codec", type=codec)
