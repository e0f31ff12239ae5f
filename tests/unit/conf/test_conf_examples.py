"""The three example confs of conf-format.md §7 -> exactly the expected VmConfig values,
also after typical hand edits (tabs, CRLF, BOM, quotes, reordering, comments)."""
from __future__ import annotations

import codecs
import hashlib
from pathlib import Path

import pytest

from support.confs import CENTOS_CTX, DEBIAN_CTX, EXAMPLES, copy_example
from ctys_libvirt.conf import load_conf


def _expected(label: str, vmdir: Path, vga_centos: bool = True) -> dict:
    """conf-format.md §7 values for a copy whose /vm/qemu/<label> became vmdir."""
    common = dict(
        label=label, conf_dir=vmdir, qemubios=None, hdd_boot_image=vmdir / "hda.img",
        qemu_img_format="raw", default_bootmode="HDD", default_instmode="CD",
        default_insttarget=str(vmdir / "hda.img"), localtime=True, timeopt="",
        wrappercall="/opt/vde/bin/vdeq", fdd_image=None, cd_image=None, dvd_image=None,
        usb_image=None, inst_blocksize="256M",
    )
    if label == "debian5":
        iso = "/mntn/swpool/UNIXDist/debian/5.0.8/raw/amd64/iso-dvd/debian-508-amd64-DVD-1.iso"
        common.update(
            uuid="3f2a6c1e9b7d4e0a8c5b1d2e3f4a5b6c", mac="00:50:56:13:11:40", ip="172.20.6.40",
            memory_mib=1024, smp=2, arch="x86_64", cpu="qemu64", accelerator="KVM",
            startercall="/usr/libexec/qemu-kvm", extra_disks={}, inst_size="8G",
            inst_blockcount="32", default_instsource=iso,
            inst_sources={"CD": iso, "FDD": "/dev/fd0", "USB": "/dev/usb",
                          "HDD": str(vmdir / "hda.img")},
            kernel=None, initrd=None, append=None, nic_model="rtl8139",
            vga="cirrus" if vga_centos else None, keyboard="de", argsadd="",
            vnc_display=None, default_console="VNC")
    elif label == "centos55":
        iso = "/mntn/swpool/UNIXDist/centOS/5.5/inst/isos/i386/CentOS-5.5-i386-bin-DVD.iso"
        common.update(
            uuid="9c1e5a2b7f3d48e6a0b4c2d1e8f7a6b5", mac="00:50:56:13:11:41", ip="172.20.6.41",
            memory_mib=512, smp=1, arch="i686", cpu="qemu32", accelerator="QEMU",
            startercall="/usr/bin/qemu-system-x86_64", extra_disks={}, inst_size="12G",
            inst_blockcount="48", default_instsource=iso,
            inst_sources={"CD": iso, "FDD": "/dev/fd0", "USB": "/dev/usb",
                          "HDD": str(vmdir / "hda.img")},
            kernel=None, initrd=None, append=None, nic_model="rtl8139",
            vga="cirrus" if vga_centos else None, keyboard="en-us", argsadd="",
            vnc_display=None, default_console="VNC")
    else:
        common.update(
            uuid="5d4c3b2a19f8e7d6c5b4a39281706f5e", mac="00:50:56:13:11:42", ip="172.20.6.42",
            memory_mib=2048, smp=4, arch="x86_64", cpu="qemu64", accelerator="KVM",
            startercall="/usr/libexec/qemu-kvm", extra_disks={"hdb": vmdir / "hdb.img"},
            inst_size="8G", inst_blockcount="32", default_instsource="/dev/cdrom",
            inst_sources={"CD": "/dev/cdrom", "FDD": "/dev/fd0", "USB": "/dev/usb",
                          "HDD": str(vmdir / "hda.img")},
            kernel=vmdir / "boot/vmlinuz-2.6.32-5-amd64",
            initrd=vmdir / "boot/initrd.img-2.6.32-5-amd64",
            append="root=/dev/sda1 ro console=ttyS0", nic_model="virtio",
            vga="std" if vga_centos else None, keyboard="en-us",
            argsadd="-usb -usbdevice tablet", vnc_display=None, default_console="CLI")
    return common


def _fields(vm, names) -> dict:
    return {n: getattr(vm, n) for n in names}


@pytest.mark.parametrize("label", ["debian5", "centos55", "kvmkern"])
def test_example_conf_centos_host(label, tmp_path):
    conf = copy_example(label, tmp_path)
    vm = load_conf(conf, CENTOS_CTX)
    exp = _expected(label, conf.parent)
    assert _fields(vm, exp) == exp
    assert vm.source_path == conf
    assert vm.sha256 == hashlib.sha256(conf.read_bytes()).hexdigest()
    assert vm.warnings == []


@pytest.mark.parametrize("label", ["debian5", "centos55", "kvmkern"])
def test_example_conf_debian_host_drops_vga(label, tmp_path):
    conf = copy_example(label, tmp_path)
    vm = load_conf(conf, DEBIAN_CTX)
    exp = _expected(label, conf.parent, vga_centos=False)
    assert _fields(vm, exp) == exp
    assert vm.variables["VGADRIVER"] == ""


def test_example_variables_match_spec(tmp_path):
    """The 'Expected vars' lists of §7 (on the original /vm/qemu paths)."""
    d5 = load_conf(EXAMPLES / "debian5" / "debian5.ctys", CENTOS_CTX).variables
    assert {k: d5[k] for k in ("STARTERCALL", "CPU", "SMP", "MEMSIZE", "VGADRIVER",
                               "WRAPPERCALL", "DEFAULTINSTTARGET")} == {
        "STARTERCALL": "/usr/libexec/qemu-kvm", "CPU": "qemu64", "SMP": "2", "MEMSIZE": "1024",
        "VGADRIVER": "-vga cirrus ", "WRAPPERCALL": "/opt/vde/bin/vdeq",
        "DEFAULTINSTTARGET": "/vm/qemu/debian5/hda.img"}
    c5 = load_conf(EXAMPLES / "centos55", CENTOS_CTX).variables
    iso = "/mntn/swpool/UNIXDist/centOS/5.5/inst/isos/i386/CentOS-5.5-i386-bin-DVD.iso"
    assert {k: c5[k] for k in ("ACCELERATOR", "CPU", "SMP", "MEMSIZE", "KBD_LAYOUT",
                               "DEFAULTINSTMODE", "DEFAULTINSTSOURCE", "INSTSRCCDROM",
                               "DEFAULTINSTTARGET", "HDDBOOTIMAGE_INST_SIZE", "STARTERCALL")} == {
        "ACCELERATOR": "QEMU", "CPU": "qemu32", "SMP": "1", "MEMSIZE": "512",
        "KBD_LAYOUT": "en-us", "DEFAULTINSTMODE": "CD", "DEFAULTINSTSOURCE": iso,
        "INSTSRCCDROM": iso, "DEFAULTINSTTARGET": "/vm/qemu/centos55/hda.img",
        "HDDBOOTIMAGE_INST_SIZE": "12G", "STARTERCALL": "/usr/bin/qemu-system-x86_64"}
    kk = load_conf(EXAMPLES / "kvmkern", CENTOS_CTX).variables
    assert {k: kk[k] for k in ("KERNELIMAGE", "INITRDIMAGE", "APPEND", "NIC", "VGADRIVER",
                               "ARGSADD", "CPU", "SMP", "MEMSIZE", "TIMEOPT")} == {
        "KERNELIMAGE": "/vm/qemu/kvmkern/boot/vmlinuz-2.6.32-5-amd64",
        "INITRDIMAGE": "/vm/qemu/kvmkern/boot/initrd.img-2.6.32-5-amd64",
        "APPEND": "root=/dev/sda1 ro console=ttyS0", "NIC": "virtio", "VGADRIVER": "-vga std ",
        "ARGSADD": "-usb -usbdevice tablet", "CPU": "qemu64", "SMP": "4", "MEMSIZE": "2048",
        "TIMEOPT": "-localtime "}
    # HDB resolves through CTYSWRAPPERPATH = the conf's own directory
    assert kk["HDB"] == str(EXAMPLES / "kvmkern" / "hdb.img")


def test_example_keys():
    vm = load_conf(EXAMPLES / "debian5", CENTOS_CTX)
    assert {k: vm.keys[k] for k in ("LABEL", "UUID", "MAC0", "IP0", "DIST", "DEFAULTCONSOLE",
                                    "INST_EDITOR", "INST_HOST_OS")} == {
        "LABEL": "debian5", "UUID": "3f2a6c1e9b7d4e0a8c5b1d2e3f4a5b6c",
        "MAC0": "00:50:56:13:11:40", "IP0": "172.20.6.40", "DIST": "debian",
        "DEFAULTCONSOLE": "VNC", "INST_EDITOR": "acue", "INST_HOST_OS": "Linux_"}
    assert "VNCACCESSDISPLAY" not in vm.keys        # #_@# disabled
    assert not any(k.startswith("MAGICID") for k in vm.keys)


def test_context_overrides_act_like_environment(tmp_path):
    conf = copy_example("debian5", tmp_path)
    vm = load_conf(conf, CENTOS_CTX, overrides={"MEMSIZE": "256", "LABEL": "other",
                                                "CPU": "host"})
    assert vm.memory_mib == 256         # MEMSIZE=${MEMSIZE:-1024} honours it
    assert vm.label == "debian5"        # plain LABEL="debian5" wins
    assert vm.cpu == "host"


def test_environment_only_with_use_env(tmp_path, monkeypatch):
    conf = copy_example("debian5", tmp_path)
    monkeypatch.setenv("MEMSIZE", "128")
    monkeypatch.setenv("SMP", "3")
    assert load_conf(conf, CENTOS_CTX).memory_mib == 1024
    vm = load_conf(conf, CENTOS_CTX, use_env=True)
    assert (vm.memory_mib, vm.smp) == (128, 3)


# --- hand-edited variants -------------------------------------------------------------------

def _reorder(t: str) -> str:
    lines = t.split("\n")
    keys = [line for line in lines if line.startswith("#@#")]
    rest = [line for line in lines if not line.startswith("#@#")]
    # keys at the end, MAC0 assignment moved to the top
    mac = [line for line in rest if line.startswith("MAC0=")]
    rest = mac + [line for line in rest if not line.startswith("MAC0=")]
    return "\n".join(rest + keys) + "\n"


def _tabs(t: str) -> str:
    out = []
    for line in t.split("\n"):
        if line.startswith("#@#") and "=" in line:
            k, _, v = line.partition("=")
            line = "\t" + k.rstrip() + "\t\t=\t" + v.strip()
        elif "=" in line and not line.startswith("#"):
            line = "\t  " + line
        out.append(line)
    return "\n".join(out)


def _single_quotes(t: str) -> str:
    return (t.replace('LABEL="debian5"', "LABEL='debian5'")
             .replace('= "debian5"', "= 'debian5'")
             .replace('MAC0="00:50:56:13:11:40"', "MAC0='00:50:56:13:11:40'")
             .replace('VGADRIVER="-vga cirrus "', "VGADRIVER='-vga cirrus '"))


def _comments_after(t: str) -> str:
    return (t.replace("MEMSIZE=${MEMSIZE:-1024}", "MEMSIZE=${MEMSIZE:-1024}   # RAM in MiB")
             .replace("QEMU_IMG=raw", "QEMU_IMG=raw # format")
             .replace('LABEL="debian5"', 'LABEL="debian5" # name')
             .replace('= "VNC"', '= "VNC"  # console'))


def _mixed_concat(t: str) -> str:
    return (t.replace("KBD_LAYOUT=${KBD_LAYOUT:-de}", "KBD_LAYOUT=\"d\"'e'")
             .replace("SMP=${SMP:-2}", "SMP=${SMP:-\"\"'2'}")
             .replace('LABEL="debian5"', "LABEL=\"deb\"'ian'5"))


VARIANTS = {
    "reordered": _reorder,
    "tabs": _tabs,
    "crlf": lambda t: t.replace("\n", "\r\n"),
    "single_quotes": _single_quotes,
    "no_trailing_newline": lambda t: t.rstrip("\n"),
    "comments_after_values": _comments_after,
    "mixed_concatenation": _mixed_concat,
    "latin1_comment": lambda t: t.replace("# --- wrapper settings ---", "# caf\xe9 r\xe9glages"),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS) + ["bom"])
def test_hand_edited_debian5(variant, tmp_path):
    base_conf = copy_example("debian5", tmp_path / "base")
    base = load_conf(base_conf, CENTOS_CTX)
    text = base_conf.read_text()
    vmdir = tmp_path / "edit" / "debian5"
    vmdir.mkdir(parents=True)
    conf = vmdir / "debian5.ctys"
    if variant == "bom":
        conf.write_bytes(codecs.BOM_UTF8 + text.encode())
    elif variant == "latin1_comment":
        conf.write_bytes(VARIANTS[variant](text).encode("latin-1"))
    else:
        conf.write_bytes(VARIANTS[variant](text).encode())
    vm = load_conf(conf, CENTOS_CTX)
    names = [n for n in _expected("debian5", base_conf.parent)
             if n not in ("conf_dir", "hdd_boot_image", "inst_sources")]
    assert _fields(vm, names) == _fields(base, names)
    assert vm.hdd_boot_image == vmdir / "hda.img"
    assert vm.keys == base.keys
