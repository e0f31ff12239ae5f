"""Helpers for the translator tests: VmConfig objects over real (tiny) files, the libvirt
RelaxNG schema compiled once per session, XML queries."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from lxml import etree

from ctys_libvirt.host.facts import host_facts
from ctys_libvirt.model import HostCaps, VmConfig

SCHEMA = "/usr/share/libvirt/schemas/domain.rng"
QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"
FIXED_CAPS = HostCaps(kvm=False, emulator="/usr/bin/qemu-system-x86_64", default_network_active=False)
UUID = "3f2a6c1e9b7d4e0a8c5b1d2e3f4a5b6c"
QCOW2_HEADER = b"QFI\xfb\x00\x00\x00\x03" + b"\x00" * 504

_RNG: Optional[etree.RelaxNG] = None


def relaxng() -> etree.RelaxNG:
    global _RNG
    if _RNG is None:
        _RNG = etree.RelaxNG(etree.parse(SCHEMA))
    return _RNG


def assert_valid(xml: str) -> etree._Element:
    """Parse ``xml`` and fail the test unless it validates against libvirt's schema."""
    root = etree.fromstring(xml.encode())
    rng = relaxng()
    assert rng.validate(root), f"schema violation: {rng.error_log}\n{xml}"
    return root


def touch(path: Path, data: bytes = b"\x00" * 512) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def make_vm(root: Path, label: str = "vm1", **kw) -> VmConfig:
    """A VmConfig for ``root/label`` with an existing raw hda.img (unless overridden)."""
    d = root / label
    d.mkdir(parents=True, exist_ok=True)
    conf = d / f"{label}.ctys"
    if not conf.exists():
        conf.write_text("#@#MAGICID-QEMU\n")
    defaults = dict(
        label=label, source_path=conf, conf_dir=d, sha256="ab" * 32, uuid=UUID,
        mac="00:50:56:13:11:40", memory_mib=16, smp=1, arch="x86_64",
        hdd_boot_image=touch(d / "hda.img"), default_insttarget=str(d / "hda.img"),
        nic_model="rtl8139", keyboard="de",
    )
    defaults.update(kw)
    return VmConfig(**defaults)


def disks(root: etree._Element):
    """[(target dev, device, source path, driver type, boot order or None, readonly)]"""
    out = []
    for d in root.iterfind("devices/disk"):
        src = d.find("source")
        boot = d.find("boot")
        out.append((
            d.find("target").get("dev"), d.get("device"),
            src.get("file") or src.get("dev"), d.find("driver").get("type"),
            int(boot.get("order")) if boot is not None else None,
            d.find("readonly") is not None,
        ))
    return out


def qemu_args(root: etree._Element):
    return [a.get("value") for a in root.iterfind(f"{{{QEMU_NS}}}commandline/{{{QEMU_NS}}}arg")]


# --- the example confs in a fake tree (golden tests, integration, benchmark) -------------

EXAMPLE_LABELS = ("debian5", "centos55", "kvmkern")
GOLDEN_CAPS = HostCaps(kvm=True, emulator="/usr/bin/qemu-system-x86_64", default_network_active=False)


def example_tree(shared: Path, root: Path) -> dict:
    """Copy the three example confs under ``root`` with /vm and /mntn rewritten into it and
    every image/kernel/ISO they name created (tiny files).  Returns {label: conf path}."""
    confs = {}
    for label in EXAMPLE_LABELS:
        text = (shared / "examples" / "confs" / label / f"{label}.ctys").read_text()
        text = text.replace("/vm/qemu/", f"{root}/vm/qemu/").replace("/mntn/", f"{root}/mntn/")
        d = root / "vm" / "qemu" / label
        d.mkdir(parents=True, exist_ok=True)
        conf = d / f"{label}.ctys"
        conf.write_text(text)
        for name in ("hda.img", "hdb.img", "boot/vmlinuz-2.6.32-5-amd64",
                     "boot/initrd.img-2.6.32-5-amd64", "cd.iso", "fd.img", "usb.img"):
            touch(d / name)
        confs[label] = conf
    for iso in ("UNIXDist/debian/5.0.8/raw/amd64/iso-dvd/debian-508-amd64-DVD-1.iso",
                "UNIXDist/centOS/5.5/inst/isos/i386/CentOS-5.5-i386-bin-DVD.iso"):
        touch(root / "mntn" / "swpool" / iso, b"\x00" * 2048)
    return confs


# (label, variant, request kwargs, XmlOptions kwargs); paths may use {d} = the VM dir.
GOLDEN_VARIANTS = [
    ("debian5", "default", {"console": "VNC:1"}, {}),
    ("debian5", "console-sdl", {"console": "SDL"}, {}),
    ("debian5", "console-cli", {"console": "CLI"}, {}),
    ("debian5", "console-cli0", {"console": "CLI0"}, {}),
    ("debian5", "console-none", {"console": "NONE", "argsadd": ["-no-hpet"]}, {}),
    ("debian5", "bootmode-cd", {"console": "VNC", "bootmode": "CD%{d}/cd.iso"}, {}),
    ("debian5", "bootmode-fdd", {"console": "VNC:2", "bootmode": "fdd%{d}/fd.img"}, {}),
    ("debian5", "bootmode-usb", {"console": "VNC:2", "bootmode": "USB%{d}/usb.img"}, {}),
    ("debian5", "bootmode-pxe", {"console": "CLI", "bootmode": "PXE"}, {"network": "default"}),
    ("debian5", "instmode", {"console": "VNC:1", "instmode": ""}, {}),
    ("centos55", "default", {"console": "VNC:1"}, {}),
    ("centos55", "instmode", {"console": "VNC:2", "instmode": "DEFAULT"}, {}),
    ("centos55", "instmode-init", {"console": "VNC:2", "instmode": "CD%%HDD%{d}/new.img%INIT"},
     {"bridge": "br0"}),
    ("kvmkern", "default", {"console": "CLI"}, {}),
    ("kvmkern", "console-vnc", {"console": "VNC:4", "argsadd": ["-device 'usb-kbd,id=k 1'"]}, {}),
    ("kvmkern", "bootmode-kernel", {"console": "CLI", "bootmode": "KERNEL",
                                    "kernel": "%%root=/dev/hda1 single"}, {"serial_log": "{d}/serial.log"}),
]


def golden_documents(shared: Path, root: Path, mydist: str = "CentOS"):
    """[(file stem, xml, warnings)] for every GOLDEN_VARIANTS entry (install runs give two
    documents: -install and -final)."""
    from ctys_libvirt.conf import load_conf
    from ctys_libvirt.model import HostContext
    from ctys_libvirt.translate.request import make_request
    from ctys_libvirt.translate.xml import XmlOptions, build_domain

    confs = example_tree(shared, root)
    out = []
    for label, variant, req_kw, opt_kw in GOLDEN_VARIANTS:
        d = str(confs[label].parent)
        fill = (lambda v: v.replace("{d}", d) if isinstance(v, str) else v)
        req_kw = {k: fill(v) for k, v in req_kw.items()}
        vm = load_conf(confs[label], context=HostContext(mydist=mydist, user="acue"))
        b = build_domain(vm, make_request(**req_kw), host_facts(GOLDEN_CAPS), XmlOptions(**{k: fill(v) for k, v in opt_kw.items()}))
        stem = f"{label}-{variant}"
        if b.final_xml:
            out.append((stem + "-install", b.xml, b.warnings))
            out.append((stem + "-final", b.final_xml, []))
        else:
            out.append((stem, b.xml, b.warnings))
    return out


def normalise(xml: str, root: Path) -> str:
    """Replace the conf-path-dependent bits: the temporary root and the conf digests."""
    import re

    text = xml.replace(str(root), "/FAKEROOT")
    return re.sub(r'sha256="[0-9a-f]{64}"', 'sha256="@SHA256@"', text)
