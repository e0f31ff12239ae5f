"""``<devices>``: every device of the domain, in this order (golden files depend on it):
emulator, disks, interfaces, serial ports, parallel ports, console, graphics, video, the
devices ARGSADD asked for (USB controller, inputs, sound cards, watchdog), memballoon.

One module per device element; to add a device, add its module and one call here."""
from __future__ import annotations

from lxml import etree

from ctys_libvirt.model import HostCaps
from ctys_libvirt.translate.domxml.devices.chardev import add_console, add_parallel, add_serial
from ctys_libvirt.translate.domxml.devices.controller import add_usb_controller
from ctys_libvirt.translate.domxml.devices.disk import add_disk
from ctys_libvirt.translate.domxml.devices.graphics import add_graphics, add_video
from ctys_libvirt.translate.domxml.devices.input import add_input
from ctys_libvirt.translate.domxml.devices.interface import add_interfaces
from ctys_libvirt.translate.domxml.devices.memballoon import add_memballoon
from ctys_libvirt.translate.domxml.devices.sound import add_sound
from ctys_libvirt.translate.domxml.devices.watchdog import add_watchdog
from ctys_libvirt.translate.domxml.text import clean
from ctys_libvirt.translate.plan import MachinePlan

SubElement = etree.SubElement


def add_devices(domain: etree._Element, plan: MachinePlan, caps: HostCaps, opts) -> None:
    devices = SubElement(domain, "devices")
    if caps.emulator:
        SubElement(devices, "emulator").text = clean(caps.emulator, "emulator path")
    for disk in plan.disks:
        add_disk(devices, disk)
    add_interfaces(devices, plan, caps, opts)
    native = plan.native
    add_serial(devices, 0, log=opts.serial_log)
    for port, kind in enumerate(native.extra_serials if native else (), start=1):
        add_serial(devices, port, kind)
    for port, kind in enumerate(native.parallels if native else ()):
        add_parallel(devices, port, kind)
    add_console(devices)
    graphics = add_graphics(devices, plan, opts)
    add_video(devices, plan, graphics)
    if native is not None:
        if native.usb:
            add_usb_controller(devices, native.usb_model)
        for kind in native.inputs:
            add_input(devices, kind)
        for snd in native.sounds:
            add_sound(devices, snd.model, snd.codec)
        if native.watchdog:
            add_watchdog(devices, native.watchdog, native.watchdog_action)
    add_memballoon(devices, native.balloon if native is not None else None)
