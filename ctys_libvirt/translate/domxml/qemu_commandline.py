"""``<qemu:commandline>``: QEMU options libvirt has no element for: ``-L`` (QEMUBIOS),
TIMEOPT and the ARGSADD words legacy_args left over, as ``<qemu:arg>``; for SDL one
``<qemu:env>``.  Omitted when there is nothing to pass."""
from __future__ import annotations

from typing import List

from lxml import etree

from ctys_libvirt.translate.domxml.text import NSMAP_QEMU, QEMU, clean
from ctys_libvirt.translate.plan import MachinePlan

SubElement = etree.SubElement


def qemu_args(plan: MachinePlan) -> List[str]:
    args: List[str] = []
    if plan.qemubios:
        args += ["-L", plan.qemubios]
    return args + list(plan.timeopt_args) + list(plan.argsadd)


def add_qemu_commandline(domain: etree._Element, plan: MachinePlan) -> None:
    args = qemu_args(plan)
    sdl = plan.console.value == "SDL"
    if not args and not sdl:
        return
    el = SubElement(domain, QEMU + "commandline", nsmap=NSMAP_QEMU)
    for a in args:
        SubElement(el, QEMU + "arg", value=clean(a, "ARGSADD word"))
    if sdl:
        # SDL asks D-Bus to autolaunch a session bus, which forks: libvirt's seccomp sandbox
        # (spawn=deny) kills QEMU for that.  No session bus is needed for the window.
        SubElement(el, QEMU + "env", name="DBUS_SESSION_BUS_ADDRESS", value="disabled:")
