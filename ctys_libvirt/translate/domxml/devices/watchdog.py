"""``<watchdog>``: the watchdog device of ARGSADD -watchdog/-watchdog-action."""
from __future__ import annotations

from typing import Optional

from lxml import etree

SubElement = etree.SubElement


def add_watchdog(devices: etree._Element, model: str, action: Optional[str]) -> None:
    SubElement(devices, "watchdog", model=model, action=action or "reset")
