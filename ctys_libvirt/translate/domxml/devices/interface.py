"""``<interface>``: the conf's NIC and any ARGSADD ``-net nic``/``-device <nic>``, wired
to a host bridge, a libvirt network or user-mode networking."""
from __future__ import annotations

from typing import Optional

from lxml import etree

from ctys_libvirt.model import HostCaps
from ctys_libvirt.translate.domxml.text import clean
from ctys_libvirt.translate.plan import MachinePlan

SubElement = etree.SubElement


def add_interfaces(devices: etree._Element, plan: MachinePlan, caps: HostCaps, opts) -> None:
    """One ``<interface>`` per NIC.  The link: ``--bridge`` > ``--network`` > ARGSADD
    ``-net user|bridge`` > the host's active 'default' network > user-mode."""
    native = plan.native
    nics = ([plan.nic] if plan.nic is not None else []) + (list(native.nics) if native else [])
    # ARGSADD -net user|bridge chooses the link unless the command line did (--bridge/--network)
    arg_kind = native.net_kind if native is not None and not (opts.bridge or opts.network) else None
    bridge = opts.bridge or (native.net_bridge if arg_kind == "bridge" else None)
    if bridge:
        kind = "bridge"
    elif arg_kind == "user":
        kind = "user"
    elif opts.network or (caps.default_network_active and not opts.user_network):
        kind = "network"
    else:
        kind = "user"
    for nic in nics:
        add_interface(devices, kind, nic.mac, nic.model, getattr(nic, "boot_order", None),
                      bridge=bridge, network=opts.network)


def add_interface(devices: etree._Element, kind: str, mac: Optional[str], model: str,
                  boot_order: Optional[int], *, bridge: Optional[str], network: Optional[str]) -> None:
    """``<interface type=kind>`` (bridge | network | user)."""
    el = SubElement(devices, "interface")
    el.set("type", kind)
    if mac:
        SubElement(el, "mac").set("address", mac)
    if bridge:
        SubElement(el, "source").set("bridge", clean(bridge, "bridge name"))
    elif kind == "network":
        SubElement(el, "source").set("network", clean(network or "default", "network name"))
    SubElement(el, "model").set("type", model)
    if boot_order is not None:
        SubElement(el, "boot").set("order", str(boot_order))
