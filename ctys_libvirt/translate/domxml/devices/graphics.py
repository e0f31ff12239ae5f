"""``<graphics>`` (VNC or SDL) and ``<video>``: the window a CONSOLE asks for.

VNC listens on loopback only; a fixed VNC display becomes port 5900+display.  The serial
consoles (CLI, XTERM, ...) also get VNC with an automatic port, "for later attachment"
(the ctys manual).  No graphics means ``<video model='none'>``."""
from __future__ import annotations

from lxml import etree

from ctys_libvirt.model import VGA_MODELS, VNC_BASEPORT
from ctys_libvirt.translate.domxml.text import VNC_LISTEN, clean
from ctys_libvirt.translate.plan import MachinePlan

SubElement = etree.SubElement

# serial consoles that also get VNC (autoport) and a video device for later attachment
VNC_PREPARED = frozenset({"CLI", "XTERM", "GTERM", "EMACS", "EMACSM", "EMACSA", "EMACSAM"})


def add_graphics(devices: etree._Element, plan: MachinePlan, opts) -> bool:
    """The ``<graphics>`` of the plan's console, if it has one; True if it was added."""
    console = plan.console.value
    if plan.native is not None and plan.native.graphics is False:
        return False                        # ARGSADD -nographic: no window, no VNC
    if console == "VNC" or console in VNC_PREPARED:
        add_vnc(devices, plan.vnc_display if console == "VNC" else None, plan.keymap)
        return True
    if console == "SDL":
        add_sdl(devices, opts.sdl_display, opts.sdl_xauth)
        return True
    return False


def add_vnc(devices: etree._Element, display, keymap) -> None:
    """``<graphics type='vnc'>`` on loopback, at 5900+``display`` or an automatic port."""
    el = SubElement(devices, "graphics")
    el.set("type", "vnc")
    if display is not None:
        el.set("port", str(VNC_BASEPORT + display))
        el.set("autoport", "no")
    else:
        el.set("autoport", "yes")
    el.set("listen", VNC_LISTEN)
    if keymap:
        el.set("keymap", clean(keymap, "KBD_LAYOUT"))
    listen = SubElement(el, "listen")
    listen.set("type", "address")
    listen.set("address", VNC_LISTEN)


def add_sdl(devices: etree._Element, display, xauth) -> None:
    """``<graphics type='sdl'>``.  qemu:///system runs QEMU without the caller's
    environment: name the X display (and its Xauthority) the window goes to."""
    el = SubElement(devices, "graphics", type="sdl")
    if display:
        el.set("display", clean(display, "DISPLAY"))
    if xauth:
        el.set("xauth", clean(xauth, "XAUTHORITY"))


def add_video(devices: etree._Element, plan: MachinePlan, graphics: bool) -> None:
    """``<video>``: the conf's VGA model, libvirt's default (no element) when VGA is
    unset, ``none`` without graphics."""
    model = "none" if not graphics else (VGA_MODELS[plan.vga] if plan.vga else None)
    if model is not None:
        SubElement(SubElement(devices, "video"), "model").set("type", model)
