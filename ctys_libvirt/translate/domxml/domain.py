"""``<domain>``: the whole document, assembled from the element builders in libvirt's
element order, and serialized (pretty printed, so golden files diff well).

Every value goes in through the lxml API, so it is escaped structurally; checks and
warnings run in document order."""
from __future__ import annotations

from typing import List

from lxml import etree

from ctys_libvirt.model import HostCaps
from ctys_libvirt.translate.domxml.clock import add_clock, add_features
from ctys_libvirt.translate.domxml.cpu import add_cpu
from ctys_libvirt.translate.domxml.devices import add_devices
from ctys_libvirt.translate.domxml.metadata import add_metadata
from ctys_libvirt.translate.domxml.os import add_os
from ctys_libvirt.translate.domxml.qemu_commandline import add_qemu_commandline
from ctys_libvirt.translate.domxml.text import clean
from ctys_libvirt.translate.plan import MachinePlan

SubElement = etree.SubElement


def domain_type(plan: MachinePlan, caps: HostCaps, warnings: List[str]) -> str:
    """``<domain type>``: kvm when the conf asks for KVM and the host has it, else qemu (TCG)."""
    if plan.accelerator == "KVM":
        if caps.kvm:
            return "kvm"
        warnings.append("ACCELERATOR=KVM but KVM is not usable on this host "
                        "(/dev/kvm missing or not accessible to QEMU); using TCG (domain type qemu)")
    elif plan.accelerator == "KQEMU":
        warnings.append("ACCELERATOR=KQEMU is obsolete (removed from QEMU); using TCG (domain type qemu)")
    elif plan.accelerator not in ("QEMU", "TCG"):
        warnings.append(f"ACCELERATOR={plan.accelerator} is unknown; using TCG (domain type qemu)")
    return "qemu"


def domain_element(plan: MachinePlan, caps: HostCaps, opts, phase: str,
                   warnings: List[str]) -> etree._Element:
    """The ``<domain>`` tree of ``plan``; ``phase``: boot | install (the transient install
    run, which must not reboot into the installer) | final."""
    dtype = domain_type(plan, caps, warnings)
    domain = etree.Element("domain")
    domain.set("type", dtype)
    SubElement(domain, "name").text = clean(plan.name, "LABEL")
    SubElement(domain, "uuid").text = plan.uuid_dashed
    add_metadata(domain, plan, phase)
    memory = SubElement(domain, "memory")
    memory.set("unit", "MiB")
    memory.text = str(plan.memory_mib)
    vcpu = SubElement(domain, "vcpu")
    vcpu.set("placement", "static")
    vcpu.text = str(plan.smp)
    add_os(domain, plan, caps, warnings)
    add_features(domain, plan)
    add_cpu(domain, plan.cpu, dtype, warnings)
    add_clock(domain, plan)
    SubElement(domain, "on_poweroff").text = "destroy"
    SubElement(domain, "on_reboot").text = "destroy" if phase == "install" else "restart"
    SubElement(domain, "on_crash").text = "destroy"
    add_devices(domain, plan, caps, opts)
    add_qemu_commandline(domain, plan)
    return domain


def serialize(domain: etree._Element) -> str:
    """The document text of a ``<domain>`` tree (pretty printed, so golden files diff well)."""
    return etree.tostring(domain, pretty_print=True, encoding="unicode")

