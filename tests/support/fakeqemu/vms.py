"""VmConfig builders mirroring the example confs (debian5, centos55, kvmkern) with
their files created under a test directory, so plans resolve without /vm/qemu."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Dict

from ctys_libvirt.model import VmConfig



def _touch(p: Path, size: int = 512) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    if not p.exists():
        with open(p, "wb") as f:
            f.truncate(size)
    return p


def _vm(d: Path, **kw) -> VmConfig:
    d.mkdir(parents=True, exist_ok=True)
    conf = d / f"{kw['label']}.ctys"
    if not conf.exists():
        conf.write_text(f"#@#MAGICID-QEMU\nLABEL={kw['label']}\n")
    kw.setdefault("sha256", hashlib.sha256(conf.read_bytes()).hexdigest())
    return VmConfig(source_path=conf, conf_dir=d, **kw)


def debian5(root: Path) -> VmConfig:
    d = root / "debian5"
    _touch(d / "hda.img")
    iso = _touch(root / "isos" / "debian-508-amd64-DVD-1.iso", 2048)
    return _vm(d, label="debian5", uuid="3f2a6c1e9b7d4e0a8c5b1d2e3f4a5b6c", mac="00:50:56:13:11:40",
               memory_mib=1024, smp=2, arch="x86_64", cpu="qemu64", accelerator="KVM",
               hdd_boot_image=d / "hda.img", cd_image=iso, default_instsource=str(iso),
               default_insttarget=str(d / "hda.img"), vga="cirrus", keyboard="de",
               nic_model="rtl8139", localtime=True, ip="172.20.6.40",
               keys={"IP0": "172.20.6.40", "LABEL": "debian5"})


def centos55(root: Path) -> VmConfig:
    d = root / "centos55"
    _touch(d / "hda.img")
    iso = _touch(root / "isos" / "CentOS-5.5-i386-bin-DVD.iso", 2048)
    return _vm(d, label="centos55", uuid="5b8e0c2a7d3f4e1b9a6c2d4e6f8a0b1c", mac="00:50:56:13:11:41",
               memory_mib=512, smp=1, arch="i686", cpu="qemu32", accelerator="QEMU",
               hdd_boot_image=d / "hda.img", default_instsource=str(iso),
               default_insttarget=str(d / "hda.img"), inst_size="12G", vga="cirrus",
               keyboard="en-us", nic_model="rtl8139", localtime=True)


def kvmkern(root: Path) -> VmConfig:
    d = root / "kvmkern"
    _touch(d / "hda.img")
    _touch(d / "hdb.img")
    k = _touch(d / "boot" / "vmlinuz-2.6.32-5-amd64")
    i = _touch(d / "boot" / "initrd.img-2.6.32-5-amd64")
    return _vm(d, label="kvmkern", uuid="9c1d2e3f4a5b4c6d8e7f0a1b2c3d4e5f", mac="00:50:56:13:11:42",
               memory_mib=2048, smp=4, arch="x86_64", cpu="qemu64", accelerator="KVM",
               hdd_boot_image=d / "hda.img", extra_disks={"hdb": d / "hdb.img"}, vga="std",
               keyboard="en-us", nic_model="virtio", localtime=True, kernel=k, initrd=i,
               append="root=/dev/sda1 ro console=ttyS0", argsadd="-usb -usbdevice tablet")


def guest(root: Path, media: Dict[str, Path], name: str = "hello", label: str = "ctystest-g",
          **kw) -> VmConfig:
    """A tiny real guest: hda = the 512-byte boot sector (IDE boots it), 16 MiB, TCG."""
    d = root / label
    d.mkdir(parents=True, exist_ok=True)
    hda = d / "hda.img"
    shutil.copyfile(media[name], hda)
    defaults = dict(label=label, uuid=None, mac="52:54:00:12:34:56", memory_mib=16, smp=1,
                    arch="x86_64", accelerator="QEMU", hdd_boot_image=hda, nic_model=None,
                    localtime=False)
    defaults.update(kw)
    return _vm(d, **defaults)
