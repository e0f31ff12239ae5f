"""Test domains on the shared libvirtd: unique labels, hand-written domain XML for
backend-level tests, and the janitor that removes only the domains a test made."""
from __future__ import annotations

import uuid as uuidlib
from pathlib import Path
from typing import List

import pytest


def unique_label(tag: str = "") -> str:
    return f"ctystest-{tag}{'-' if tag else ''}{uuidlib.uuid4().hex[:6]}"


def domain_xml(name: str, uuid: str, image: Path, serial_log: Path, *, boot: str = "hd",
               device: str = "disk", metadata: bool = True, graphics: bool = False) -> str:
    """Hand-written TCG domain for backend-level tests (pty serial with a log file, so
    both the console stream and the marker file work)."""
    from ctys_libvirt.translate.metadata import METADATA_NS

    target = {"disk": "<target dev='hda' bus='ide'/>",
              "cdrom": "<target dev='hdc' bus='ide'/><readonly/>",
              "floppy": "<target dev='fda' bus='fdc'/>"}[device]
    ns = METADATA_NS
    md = (f"<metadata><c:instance xmlns:c='{ns}'><c:conf path='/nowhere/{name}.ctys' sha256='0'/>"
          f"<c:label>{name}</c:label><c:keys><c:key name='IP0'>10.1.2.3</c:key></c:keys>"
          "</c:instance></metadata>"
          if metadata else "")
    gfx = "<graphics type='vnc' autoport='yes' listen='127.0.0.1'/>" if graphics else ""
    return f"""<domain type='qemu'>
  <name>{name}</name><uuid>{uuid}</uuid>{md}
  <memory unit='MiB'>16</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='{boot}'/></os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <disk type='file' device='{device}'><driver name='qemu' type='raw'/>
      <source file='{image}'/>{target}</disk>
    <interface type='user'><mac address='52:54:00:aa:bb:01'/><model type='rtl8139'/></interface>
    <serial type='pty'><log file='{serial_log}' append='off'/><target port='0'/></serial>
    <console type='pty'/>{gfx}
    <video><model type='none'/></video><memballoon model='none'/>
  </devices>
</domain>"""


def purge_domain(conn, name: str) -> None:
    """Destroy + undefine (with managed save) a test domain; silent if it is gone."""
    import libvirt

    try:
        dom = conn.lookupByName(name)
    except libvirt.libvirtError:
        return
    try:
        if dom.isActive():
            dom.destroy()
    except libvirt.libvirtError:
        pass
    try:
        if dom.isPersistent():
            dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                              | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
    except libvirt.libvirtError:
        try:
            dom.undefine()
        except libvirt.libvirtError:
            pass


class DomainJanitor:
    """Remembers test domain names; ``cleanup`` removes them and any leftover
    ``ctystest-`` domain carrying one of the remembered prefixes."""

    def __init__(self, conn):
        self.conn = conn
        self.names: List[str] = []

    def add(self, *names: str) -> str:
        self.names.extend(names)
        return names[0] if names else ""

    def cleanup(self) -> None:
        for n in self.names:
            purge_domain(self.conn, n)


@pytest.fixture
def janitor(libvirt_conn):
    j = DomainJanitor(libvirt_conn)
    yield j
    j.cleanup()

