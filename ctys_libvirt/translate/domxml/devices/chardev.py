"""Character devices: ``<serial>`` (port 0 is the console, optionally logged to a file;
more from ARGSADD -serial), ``<parallel>`` (ARGSADD -parallel) and ``<console>`` on
serial port 0."""
from __future__ import annotations

from typing import Optional

from lxml import etree

from ctys_libvirt.translate.domxml.text import clean

SubElement = etree.SubElement


def add_serial(devices: etree._Element, port: int, kind: str = "pty", log: Optional[str] = None) -> None:
    """``<serial type=kind>`` on ``port``; ``log``: file libvirt appends the output to."""
    el = SubElement(devices, "serial")
    el.set("type", kind)
    if log:
        SubElement(el, "log", file=clean(log, "serial log path"), append="on")
    SubElement(el, "target").set("port", str(port))


def add_parallel(devices: etree._Element, port: int, kind: str) -> None:
    el = SubElement(devices, "parallel", type=kind)
    SubElement(el, "target", port=str(port))


def add_console(devices: etree._Element) -> None:
    """``<console>`` on serial port 0 (what ``virsh console`` and CLI consoles attach to)."""
    el = SubElement(devices, "console")
    el.set("type", "pty")
    target = SubElement(el, "target")
    target.set("type", "serial")
    target.set("port", "0")
