"""``<os>``: ``<type arch machine>hvm``, direct kernel boot (``<kernel>``, ``<initrd>``,
``<cmdline>``) and ``<bootmenu>``.  Boot order is per device (``<boot order>`` in the
disk and interface builders), never ``<os><boot dev>``."""
from __future__ import annotations

from typing import List

from lxml import etree

from ctys_libvirt.errors import ConfError
from ctys_libvirt.model import HostCaps
from ctys_libvirt.translate.domxml.text import clean
from ctys_libvirt.translate.plan import MachinePlan

SubElement = etree.SubElement

# libvirt's <os><type arch=...> names (schemas/basictypes.rng "archnames")
LIBVIRT_ARCHES = frozenset(
    "aarch64 alpha armv6l armv7l cris i686 ia64 lm32 m68k microblaze microblazeel mips mipsel "
    "mips64 mips64el openrisc parisc parisc64 ppc ppc64 ppc64le ppcemb riscv32 riscv64 s390 "
    "s390x sh4 sh4eb sparc sparc64 unicore32 x86_64 xtensa xtensaeb".split())


def add_os(domain: etree._Element, plan: MachinePlan, caps: HostCaps, warnings: List[str]) -> None:
    """``<os>`` of ``plan``; a ConfError for an ARCH libvirt does not know, a warning for
    one this host does not offer."""
    os_el = SubElement(domain, "os")
    if plan.arch not in LIBVIRT_ARCHES:
        raise ConfError(f"ARCH {plan.arch!r} is not an architecture libvirt knows",
                        construct="ARCH",
                        hint="use e.g. x86_64 or i686 (amd64/i386/i586 are mapped), or --backend direct")
    type_el = SubElement(os_el, "type")
    type_el.set("arch", plan.arch)
    type_el.set("machine", plan.machine)
    type_el.text = "hvm"
    if plan.arch not in caps.arches:
        warnings.append(f"ARCH {plan.arch} is not offered by this host ({', '.join(caps.arches)})")
    if plan.kernel is not None:
        add_kernel(os_el, plan)
    native = plan.native
    if native is not None and native.boot_menu is not None:
        SubElement(os_el, "bootmenu", enable="yes" if native.boot_menu else "no")


def add_kernel(os_el: etree._Element, plan: MachinePlan) -> None:
    """``<kernel>``, ``<initrd>``, ``<cmdline>`` of a direct kernel (or multiboot) boot."""
    kernel = plan.kernel
    SubElement(os_el, "kernel").text = clean(kernel.kernel, "KERNELIMAGE")
    if kernel.initrd is not None:
        initrd = str(kernel.initrd)
        if plan.kernel_multiboot and (" " in initrd or "," in initrd):
            # libvirt hands -initrd to QEMU as is; QEMU's multiboot loader splits it
            raise ConfError(
                f"{plan.name}: multiboot module {kernel.initrd} has a "
                f"{'blank' if ' ' in initrd else 'comma'} in its path, which QEMU's "
                "multiboot loader splits on (',' separates modules, a blank starts the module's "
                "command line)",
                hint="move or symlink the module to a path without blanks and commas"
                     + ("" if " " in initrd else ", or use --backend direct (it escapes commas)"))
        SubElement(os_el, "initrd").text = clean(kernel.initrd, "INITRDIMAGE")
    if kernel.append:
        SubElement(os_el, "cmdline").text = clean(kernel.append, "APPEND")
