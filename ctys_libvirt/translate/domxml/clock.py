"""``<features>`` (ACPI, APIC) and ``<clock>`` with its ``<timer>``s: the legacy
ARGSADD options -no-acpi, -rtc and -no-hpet in libvirt terms (translate.legacy_args)."""
from __future__ import annotations

from lxml import etree

from ctys_libvirt.translate.plan import MachinePlan

SubElement = etree.SubElement


def add_features(domain: etree._Element, plan: MachinePlan) -> None:
    """``<features>``: ACPI (unless ARGSADD -no-acpi) and APIC."""
    el = SubElement(domain, "features")
    if plan.native is None or plan.native.acpi is not False:
        SubElement(el, "acpi")
    SubElement(el, "apic")


def add_clock(domain: etree._Element, plan: MachinePlan) -> None:
    """``<clock>``: localtime/utc (conf), or absolute from ``-rtc base=<date>``; an rtc
    timer for ``-rtc clock/driftfix``, an hpet timer switched off for ``-no-hpet``."""
    native = plan.native
    if native is not None and native.clock_start is not None:
        el = SubElement(domain, "clock", offset="absolute", start=native.clock_start)
    else:
        el = SubElement(domain, "clock")
        el.set("offset", "localtime" if plan.localtime else "utc")
    if native is None:
        return
    if native.rtc_track or native.rtc_tickpolicy:
        rtc = SubElement(el, "timer", name="rtc")
        if native.rtc_track:
            rtc.set("track", native.rtc_track)
        if native.rtc_tickpolicy:
            rtc.set("tickpolicy", native.rtc_tickpolicy)
    if native.hpet is False:
        SubElement(el, "timer", name="hpet", present="no")
