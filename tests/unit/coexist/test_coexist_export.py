"""export: conf -> XML -> conf -> XML is a fixed point on the conf-owned fields, over every
conf in the repo's fixtures and generated ones (media made at test time)."""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from ctys_libvirt.backends.libvirt import normal_request
from ctys_libvirt.coexist import fields as F
from ctys_libvirt.coexist.export import conf_from_xml, write_conf
from ctys_libvirt.coexist.merge import complete
from ctys_libvirt.conf import load_conf
from ctys_libvirt.errors import UsageError
from ctys_libvirt.host.facts import host_facts
from ctys_libvirt.translate.xml import build_domain
from support.translate import FIXED_CAPS
from support.paths import EXAMPLE_CONFS, REPO

FIXTURES = sorted(EXAMPLE_CONFS.glob("*/*.ctys")) + \
    [REPO / "examples" / "hello" / "hello.ctys"]

GENERATED = {
    "cdboot": 'DEFAULTBOOTMODE=CD\nCDIMAGE="${CTYSWRAPPERPATH}/cd.iso"\nHDB="${CTYSWRAPPERPATH}/hdb.img"\n',
    "kernel": 'DEFAULTBOOTMODE=KERNEL\nKERNELIMAGE="${CTYSWRAPPERPATH}/vmlinuz"\n'
              'INITRDIMAGE="${CTYSWRAPPERPATH}/initrd"\nAPPEND="console=ttyS0 root=/dev/sda quiet"\n',
    "vnc": '#@#DEFAULTCONSOLE = "VNC"\nVNCACCESSDISPLAY=17\nKBD_LAYOUT=de\nVGADRIVER="-vga std"\n'
           'SMP=4\nCPU="qemu64,+ssse3,-sse4.2"\nTIMEOPT=""\n',
    "argsadd": '#@#DEFAULTCONSOLE = "NONE"\nARGSADD="-usb -device \'usb-tablet,id=t 1\'"\nNIC=e1000\n'
               'ACCELERATOR=KVM\nQEMUBIOS=/usr/share/seabios\n',
    "pxe": 'DEFAULTBOOTMODE=PXE\nNIC=virtio\nMAC0="52:54:00:01:02:03"\n',
    "nonic": "NIC=\nMEMSIZE=1G\n",
    "fdd": 'DEFAULTBOOTMODE=FDD\nFDDIMAGE="${CTYSWRAPPERPATH}/fd.img"\n',
}


def _copy_fixture(src: Path, dst_root: Path) -> Path:
    d = dst_root / src.parent.name
    shutil.copytree(src.parent, d)
    for img in ("hda.img", "cd.iso", "hdb.img", "fd.img", "vmlinuz", "initrd"):
        (d / img).write_bytes(b"\0" * 512)
    return d / src.name


def _generated(root: Path, name: str, extra: str) -> Path:
    d = root / name
    d.mkdir()
    for img in ("hda.img", "cd.iso", "hdb.img", "fd.img", "vmlinuz", "initrd"):
        (d / img).write_bytes(b"\0" * 512)
    conf = d / f"{name}.ctys"
    conf.write_text(f'#@#MAGICID-QEMU\n#@#LABEL = "{name}"\nLABEL="{name}"\n'
                    'HDDBOOTIMAGE="${CTYSWRAPPERPATH}/hda.img"\nMEMSIZE=64\n' + extra)
    return conf


def _xml(conf: Path) -> str:
    vm = load_conf(conf)
    # media the fixture names at absolute paths of its old host: stand-ins next to the conf
    fix = {}
    for attr in ("kernel", "initrd", "cd_image", "dvd_image", "fdd_image", "usb_image"):
        p = getattr(vm, attr)
        if p is not None and not Path(p).is_absolute():
            p = conf.parent / p
        if p is not None and not Path(p).exists():
            stand_in = conf.parent / f"standin-{attr}"
            stand_in.write_bytes(b"\0" * 512)
            fix[attr] = stand_in
    vm = dataclasses.replace(vm, **fix)
    return build_domain(vm, normal_request(vm), host_facts(FIXED_CAPS)).xml


def _values(xml: str):
    root = complete(F.parse(xml))
    return F.values(root, F.Context(F.targets_of(root), F.macs_of(root)))


CASES = [("fixture", p.parent.name, p) for p in FIXTURES] + [("generated", k, v) for k, v in GENERATED.items()]


@pytest.mark.parametrize("kind,name,src", CASES, ids=[c[1] for c in CASES])
def test_conf_xml_conf_xml_is_a_fixed_point(tmp_path, kind, name, src):
    conf = _copy_fixture(src, tmp_path / "in") if kind == "fixture" else _generated(tmp_path, name, src)
    xml1 = _xml(conf)
    label, text, _notes = conf_from_xml(xml1)
    conf2 = write_conf(tmp_path / "out", label, text)
    xml2 = _xml(conf2)
    v1, v2 = _values(xml1), _values(xml2)
    assert v1 == v2
    # and once more: the exported conf exports to the same text
    assert conf_from_xml(xml2)[1] == text
    assert F.parse(xml2).findtext("uuid") == F.parse(xml1).findtext("uuid")


def test_every_fixture_is_covered():
    assert len(FIXTURES) >= 4


def test_export_never_overwrites(tmp_path):
    write_conf(tmp_path, "vm1", "#@#MAGICID-QEMU\n")
    with pytest.raises(UsageError, match="already exists"):
        write_conf(tmp_path, "vm1", "other")
    assert (tmp_path / "vm1" / "vm1.ctys").read_text() == "#@#MAGICID-QEMU\n"


def test_a_domain_name_ctys_cannot_use_is_refused():
    with pytest.raises(UsageError, match="LABEL"):
        conf_from_xml("<domain type='qemu'><name>a b</name><memory>1024</memory></domain>")


def test_exported_values_are_read_back_literally(tmp_path):
    xml = """<domain type='kvm'><name>odd</name><uuid>11111111-2222-3333-4444-555555555555</uuid>
      <memory unit='KiB'>65536</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type>
      <kernel>/boot/k $HOME `id`</kernel><cmdline>a "b" 'c' $(touch /tmp/x)</cmdline></os>
      <devices/></domain>"""
    label, text, _ = conf_from_xml(xml)
    conf = write_conf(tmp_path, label, text)
    vm = load_conf(conf)
    assert str(vm.kernel) == "/boot/k $HOME `id`"
    assert vm.append == "a \"b\" 'c' $(touch /tmp/x)"
    assert vm.accelerator == "KVM" and vm.memory_mib == 64 and vm.default_bootmode == "KERNEL"
