"""HostCaps: what the target host offers (KVM, emulator, default network), read either
from the local machine without libvirt or from a libvirt connection."""
from __future__ import annotations

import grp
import os
import pwd
import stat
from typing import Optional

from ctys_libvirt.model import HostCaps

KVM_DEVICE = "/dev/kvm"
EMULATORS = ("/usr/bin/qemu-system-x86_64", "/usr/libexec/qemu-kvm", "/usr/local/bin/qemu-system-x86_64")
QEMU_USER = "libvirt-qemu"


def _kvm_usable_by(user: str, device: str = KVM_DEVICE) -> bool:
    """Can ``user`` (libvirt runs QEMU as it) open ``device`` read-write?  Checked from the
    mode bits, so it also answers for another user than ourselves."""
    try:
        st = os.stat(device)
    except OSError:
        return False
    if not stat.S_ISCHR(st.st_mode):
        return False
    mode = st.st_mode
    if mode & 0o006 == 0o006:
        return True
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        # No libvirt-qemu user: QEMU would run as ourselves.
        return os.access(device, os.R_OK | os.W_OK)
    if pw.pw_uid == 0 or (pw.pw_uid == st.st_uid and mode & 0o600 == 0o600):
        return True
    groups = {pw.pw_gid} | {g.gr_gid for g in grp.getgrall() if user in g.gr_mem}
    return st.st_gid in groups and mode & 0o060 == 0o060


def local_host_caps(kvm_device: str = KVM_DEVICE, qemu_user: str = QEMU_USER) -> HostCaps:
    """Caps of this machine without asking libvirt: KVM iff the QEMU user can open
    /dev/kvm, the first installed emulator, default network unknown (False)."""
    emulator: Optional[str] = next((p for p in EMULATORS if os.access(p, os.X_OK)), None)
    return HostCaps(kvm=_kvm_usable_by(qemu_user, kvm_device), emulator=emulator,
                    default_network_active=False)


def libvirt_host_caps(conn, arch: str = "x86_64") -> HostCaps:
    """Caps as the libvirt connection reports them (one getCapabilities call): a 'kvm'
    domain type offered for ``arch`` (libvirt offers it only when QEMU can open /dev/kvm),
    the emulator, and whether network 'default' is active."""
    import libvirt
    from lxml import etree

    kvm = False
    emulator = None
    arches = []
    try:
        caps = etree.fromstring(conn.getCapabilities().encode())
        for guest in caps.iterfind("guest"):
            if guest.findtext("os_type") != "hvm":
                continue
            a = guest.find("arch")
            if a is None:
                continue
            arches.append(a.get("name"))
            if a.get("name") == arch:
                emulator = a.findtext("emulator") or emulator
                kvm = kvm or any(d.get("type") == "kvm" for d in a.iterfind("domain"))
    except libvirt.libvirtError:
        pass
    active = False
    try:
        active = bool(conn.networkLookupByName("default").isActive())
    except libvirt.libvirtError:
        active = False
    return HostCaps(kvm=kvm, emulator=emulator, default_network_active=active,
                    arches=tuple(dict.fromkeys(arches)) or HostCaps().arches,
                    max_vcpus=_max_vcpus(conn, arch, "kvm" if kvm else "qemu"))


def _max_vcpus(conn, arch: str, virttype: str, machine: str = "pc") -> Optional[int]:
    """``<vcpu max=.../>`` of the domain capabilities for the machine type the plan uses;
    None when libvirt does not say (read-only connections may not ask)."""
    import libvirt
    from lxml import etree

    try:
        doc = etree.fromstring(conn.getDomainCapabilities(None, arch, machine, virttype, 0).encode())
        return int(doc.find("vcpu").get("max"))
    except (libvirt.libvirtError, AttributeError, TypeError, ValueError, etree.XMLSyntaxError):
        return None
