"""The translator's XML against the real libvirtd (qemu:///system): every golden document is
accepted by defineXML (with libvirt's own schema validation), and the tiny guests boot from
generated XML (CD, floppy, direct kernel, install run + final definition)."""
import uuid as uuidlib
from pathlib import Path

import pytest
from lxml import etree
from support.domains import purge_domain
from support.guests import wait_marker
from support.translate import golden_documents, make_vm

from ctys_libvirt.model import HostCaps
from ctys_libvirt.translate.request import make_request
from ctys_libvirt.host.facts import host_facts
from ctys_libvirt.translate.xml import XmlOptions, build_domain

pytestmark = pytest.mark.libvirt
TCG = HostCaps(kvm=False, emulator="/usr/bin/qemu-system-x86_64")


@pytest.fixture
def cleanup(libvirt_conn):
    """Collects domain names; destroys and undefines them afterwards, even on failure."""
    names = []
    yield names
    for name in names:
        purge_domain(libvirt_conn, name)


def _rename(xml: str, name: str) -> str:
    root = etree.fromstring(xml.encode())
    root.find("name").text = name
    root.find("uuid").text = str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, name))
    return etree.tostring(root, encoding="unicode")


def test_golden_documents_define(libvirt_conn, cleanup, shared_dir, vmroot):
    import libvirt

    docs = golden_documents(shared_dir, vmroot)
    assert len(docs) >= 19
    tag = uuidlib.uuid4().hex[:8]
    for stem, xml, _ in docs:
        name = f"ctystest-{tag}-{stem}"
        cleanup.append(name)
        dom = libvirt_conn.defineXMLFlags(_rename(xml, name), libvirt.VIR_DOMAIN_DEFINE_VALIDATE)
        live = etree.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE).encode())
        # the passthrough and our metadata survive the round trip through libvirt
        src = etree.fromstring(xml.encode())
        q = "{http://libvirt.org/schemas/domain/qemu/1.0}"
        assert [a.get("value") for a in live.iter(q + "arg")] == [a.get("value") for a in src.iter(q + "arg")]
        assert live.find("metadata/{https://ctys-libvirt.invalid/xmlns/domain/1}instance") is not None
        assert len(live.findall("devices/disk")) == len(src.findall("devices/disk"))
        dom.undefine()


def _vm(vmroot: Path, media: dict, **kw):
    label = f"ctystest-{uuidlib.uuid4().hex[:10]}"
    args = dict(uuid=uuidlib.uuid4().hex, memory_mib=16, accelerator="QEMU",
                hdd_boot_image=media["hello"], mac=None, nic_model=None)
    args.update(kw)
    return make_vm(vmroot, label=label, **args)


@pytest.mark.qemu
@pytest.mark.parametrize("bootmode,medium", [("CD", "acpi-iso"), ("FDD", "acpi-floppy"), ("HDD", "acpi"),
                                             ("USB", "acpi-disk")])
def test_guest_boots_from_generated_xml(libvirt_conn, cleanup, vmroot, media, bootmode, medium):
    vm = _vm(vmroot, media, hdd_boot_image=media["hello"] if bootmode != "HDD" else media[medium])
    log = vmroot / f"{bootmode}.serial.log"
    req = make_request(bootmode=f"{bootmode}%{media[medium]}", console="CLI")
    b = build_domain(vm, req, host_facts(TCG), XmlOptions(serial_log=str(log)))
    cleanup.append(b.name)
    libvirt_conn.createXML(b.xml, 0)
    # the acpi guest prints "ACPI" in its marker; the kept hello HDD would print the bare one
    assert "CTYS-GUEST-OK ACPI" in wait_marker(log, "CTYS-GUEST-OK")


@pytest.mark.qemu
def test_cpu_host_under_tcg_boots_with_the_maximum_model(libvirt_conn, cleanup, vmroot, media):
    """QEMU refuses -cpu host without KVM; the TCG translation must still start and boot."""
    vm = _vm(vmroot, media, cpu="host")
    log = vmroot / "cpuhost.serial.log"
    b = build_domain(vm, make_request(console="NONE"), host_facts(TCG), XmlOptions(serial_log=str(log)))
    cleanup.append(b.name)
    dom = libvirt_conn.createXML(b.xml, 0)
    wait_marker(log, "CTYS-GUEST-OK")
    assert "<cpu mode='maximum'" in dom.XMLDesc(0)


@pytest.mark.qemu
def test_direct_kernel_boot_with_append_and_initrd(libvirt_conn, cleanup, vmroot, media):
    vm = _vm(vmroot, media, kernel=media["mbkernel"], initrd=media["mbkernel-mod"],
             append="console=ttyS0 ctys=conf append")
    log = vmroot / "kernel.serial.log"
    b = build_domain(vm, make_request(bootmode="KERNEL", console="NONE"), host_facts(TCG), XmlOptions(serial_log=str(log)))
    cleanup.append(b.name)
    libvirt_conn.createXML(b.xml, 0)
    line = wait_marker(log, "CTYS-KERNEL-OK")
    line = line[line.index("CTYS-KERNEL-OK"):].splitlines()[0]
    assert "ctys=conf append mods=1 mod0=hello module" in line


@pytest.mark.qemu
def test_install_run_then_final_definition(libvirt_conn, cleanup, vmroot, media):
    import libvirt

    target = vmroot / "target.img"
    target.write_bytes(media["hello"].read_bytes())
    vm = _vm(vmroot, media, default_instsource=str(media["acpi-iso"]), default_insttarget=str(target))
    log = vmroot / "install.serial.log"
    b = build_domain(vm, make_request(instmode="", console="CLI"), host_facts(TCG), XmlOptions(serial_log=str(log)))
    cleanup.append(b.name)
    dom = libvirt_conn.createXML(b.xml, 0)                 # transient install run
    libvirt_conn.defineXML(b.final_xml)                    # same UUID: becomes persistent
    assert "CTYS-GUEST-OK ACPI" in wait_marker(log, "CTYS-GUEST-OK")   # booted the CD first
    assert dom.isPersistent()
    inactive = etree.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE).encode())
    assert inactive.findtext("on_reboot") == "restart"
    assert [d.get("device") for d in inactive.iterfind("devices/disk")] == ["disk"]
    dom.destroy()
    log2 = vmroot / "final.serial.log"
    b2 = build_domain(vm, make_request(instmode="", console="CLI", install_phase=False), host_facts(TCG), XmlOptions(serial_log=str(log2)))
    libvirt_conn.defineXML(b2.xml)
    dom.create()                                           # the final definition boots the target
    text = wait_marker(log2, "CTYS-GUEST-OK")
    assert "CTYS-GUEST-OK\r\n" in text and "ACPI" not in text


@pytest.mark.qemu
def test_i686_guest_with_qemu32_and_argsadd(libvirt_conn, cleanup, vmroot, media):
    import libvirt

    vm = _vm(vmroot, media, arch="i686", argsadd="-no-hpet", nic_model="rtl8139", mac="52:54:00:12:34:56")
    log = vmroot / "i686.serial.log"
    b = build_domain(vm, make_request(console="VNC", argsadd=["-boot 'menu=off'"]), host_facts(TCG), XmlOptions(serial_log=str(log)))
    cleanup.append(b.name)
    dom = libvirt_conn.createXML(b.xml, 0)
    assert "CTYS-GUEST-OK" in wait_marker(log, "CTYS-GUEST-OK")
    live = etree.fromstring(dom.XMLDesc(0).encode())
    assert live.find("os/type").get("arch") == "i686"
    assert live.findtext("cpu/model") == "qemu32"
    assert live.find("devices/graphics").get("port") not in (None, "-1")    # autoport picked one
    assert live.find("devices/interface/mac").get("address") == "52:54:00:12:34:56"
    assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
