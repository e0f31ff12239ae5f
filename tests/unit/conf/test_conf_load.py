"""load_conf / read_keys / locate_conf: MAGICID rules, variants, mapping to VmConfig."""
from __future__ import annotations

from pathlib import Path

import pytest

from support.confs import CENTOS_CTX, small_conf
from ctys_libvirt.conf import load_conf, locate_conf, read_keys
from ctys_libvirt.conf.context import context_variables, mydist_from_os_release
from ctys_libvirt.errors import AmbiguousAddressError, ConfError, NotFoundError


def load(path, **kw):
    return load_conf(path, CENTOS_CTX, **kw)


# --- #@# keys ----------------------------------------------------------------------------------

def test_read_keys_syntax(tmp_path):
    p = tmp_path / "k.ctys"
    p.write_text(
        "#@#MAGICID-QEMU\n"
        "#@#LABEL = \"first\"\n"
        "#@#LABEL = \"second\"\n"           # first match wins
        "  #@#IP0\t\t=\t'10.0.0.1%255.0.0.0'\n"  # tabs deleted, ' -> "
        "#_@#VNCACCESSDISPLAY = 5\n"        # disabled
        "#@#INST_EDITOR               =  acue\n"
        "#@#EMPTY = \n"
        "#@#QUOTED = \"a b\" trailing\n"
        "#@#UNQ = value   # comment\n"
        "#@#MAGICID-do-not-IGNORE =>ACTIVATED\n"
        "# #@#NOT_A_KEY = x\n")
    info = read_keys(p)
    assert info.keys == {"LABEL": "first", "IP0": "10.0.0.1%255.0.0.0", "INST_EDITOR": "acue",
                         "EMPTY": "", "QUOTED": "a b", "UNQ": "value"}
    assert info.magic_qemu and not info.magic_ignore and not info.magic_noenum
    assert info.active
    assert any("QUOTED" in w for w in info.warnings)


@pytest.mark.parametrize("lines,active,ignore,noenum", [
    ("#@#MAGICID-QEMU\n", True, False, False),
    ("#@#MAGICID-QEMU\n#@#MAGICID-IGNORE\n", False, True, False),
    ("#@#MAGICID-IGNORE\n", False, True, False),
    ("#@#MAGICID-QEMU\n# disabled: #@#MAGICID-NOENUM by admin\n", False, False, True),
    ("#@#MAGICID-QEMU\n#_@#MAGICID-IGNORE\n", True, False, False),
    ("#@#MAGICID-QEMU\n#@#MAGICID-do-not-IGNORE =>ACTIVATED\n", True, False, False),
    ("# no magic\n", False, False, False),
])
def test_magic_flags(tmp_path, lines, active, ignore, noenum):
    p = tmp_path / "m.ctys"
    p.write_text(lines)
    info = read_keys(p)
    assert (info.active, info.magic_ignore, info.magic_noenum) == (active, ignore, noenum)


def test_ignored_conf_needs_force(tmp_path):
    conf = small_conf(tmp_path, "#@#MAGICID-IGNORE\n")
    with pytest.raises(ConfError) as ei:
        load(conf)
    assert ei.value.construct == "MAGICID-IGNORE"
    assert "--force" in str(ei.value)
    assert load(conf, force=True).label == "vm1"


def test_noenum_conf_needs_force(tmp_path):
    conf = small_conf(tmp_path, "# #@#MAGICID-NOENUM\n")
    with pytest.raises(ConfError, match="MAGICID-NOENUM"):
        load(conf)
    assert load(conf, force=True).label == "vm1"


def test_conf_without_magic_rejected(tmp_path):
    conf = small_conf(tmp_path, header="LABEL=vm1\nMEMSIZE=64\n")
    with pytest.raises(ConfError, match="MAGICID-QEMU"):
        load(conf)
    assert load(conf, force=True).label == "vm1"


# --- locate ----------------------------------------------------------------------------------------

def test_locate_forms(tmp_path):
    conf = small_conf(tmp_path)
    assert locate_conf(conf) == conf
    assert locate_conf(conf.parent) == conf
    sh = conf.with_suffix(".sh")
    sh.write_text("#!/bin/bash\n#@#MAGICID-IGNORE\n")
    assert locate_conf(sh) == conf
    assert load(sh).label == "vm1"


def test_locate_dir_single_active_conf(tmp_path):
    d = tmp_path / "dir"
    d.mkdir()
    (d / "a.ctys").write_text("#@#MAGICID-QEMU\nLABEL=a\nMEMSIZE=1\n")
    (d / "b.ctys").write_text("# not a conf\n")
    assert locate_conf(d) == d / "a.ctys"


def test_locate_dir_ambiguous(tmp_path):
    d = tmp_path / "dir"
    d.mkdir()
    for n in ("a", "b"):
        (d / f"{n}.ctys").write_text("#@#MAGICID-QEMU\n")
    with pytest.raises(AmbiguousAddressError) as ei:        # exit 2, as for any ambiguous address
        locate_conf(d)
    assert "a.ctys, b.ctys" in str(ei.value) and ei.value.exit_code == 2
    (d / "b.ctys").write_text("#@#MAGICID-QEMU\n#@#MAGICID-IGNORE\n")   # what the hint says
    assert locate_conf(d) == d / "a.ctys"


def test_locate_dir_0107_layout(tmp_path):
    """<dir>/<dir>.ctys is a bash wrapper and <dir>.conf carries its own MAGICID: the .conf
    is the conf, for the loader as for address resolution (one rule)."""
    from ctys_libvirt.inventory.address import resolve_conf_path

    d = tmp_path / "vm"
    d.mkdir()
    (d / "vm.ctys").write_text("#!/bin/bash\n#@#MAGICID-QEMU\nexec ctys \"$@\"\n")
    (d / "vm.conf").write_text("#@#MAGICID-QEMU\nLABEL=vm\nMEMSIZE=1\n")
    assert locate_conf(d) == d / "vm.conf"
    assert resolve_conf_path(str(d), use_db=False) == d / "vm.conf"


def test_locate_missing(tmp_path):
    with pytest.raises(NotFoundError):
        locate_conf(tmp_path / "nope.ctys")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotFoundError, match="empty.ctys"):
        locate_conf(tmp_path / "empty")
    (tmp_path / "x.sh").write_text("#!/bin/sh\n")
    with pytest.raises(NotFoundError, match="x.ctys"):
        locate_conf(tmp_path / "x.sh")


def test_large_file_rejected(tmp_path):
    conf = small_conf(tmp_path, "# " + "x" * (1024 * 1024) + "\n")
    with pytest.raises(ConfError, match="larger than"):
        load(conf)


def test_nul_bytes_rejected(tmp_path):
    conf = small_conf(tmp_path, "X=a\x00b\n")
    with pytest.raises(ConfError, match="NUL"):
        load(conf)


# --- legacy ctys-conf variant ------------------------------------------------------------------------

LEGACY_WRAPPER = """#!/bin/bash
#@#MAGICID-QEMU
#@#LABEL = "oldvm"
#@#UUID = "12345678-9abc-def0-1234-56789ABCDEF0"
MAC=$(cat /etc/mac)
vdeq qemu -net nic,macaddr=${MAC0} -net vde,sock=/tmp/x -name oldvm -localtime -m 256 &
"""

LEGACY_CONF = """#@#LABEL = "oldvm"
#@#MAC0 = "00:50:56:AA:BB:01"
#@#IP0 = "10.1.1.1"
LABEL="oldvm"
MAC0="00:50:56:AA:BB:01"
VNCACCESSDISPLAY=3
"""


def test_legacy_ctys_conf_variant(tmp_path):
    d = tmp_path / "oldvm"
    d.mkdir()
    (d / "oldvm.ctys").write_text(LEGACY_WRAPPER)
    (d / "oldvm.conf").write_text(LEGACY_CONF)
    vm = load(d)
    assert vm.label == "oldvm"
    assert vm.mac == "00:50:56:aa:bb:01"
    assert vm.vnc_display == 3
    assert vm.ip == "10.1.1.1"
    assert vm.uuid == "123456789abcdef0123456789abcdef0"
    assert vm.source_path == d / "oldvm.conf"
    assert any("cannot be reconstructed" in w for w in vm.warnings)
    # defaults for everything the script would have decided
    assert (vm.memory_mib, vm.smp, vm.startercall, vm.hdd_boot_image) == (512, 1, None, None)
    # pointing at the .conf or a .sh gives the same
    assert load(d / "oldvm.conf").label == "oldvm"


def test_legacy_wrapper_without_conf(tmp_path):
    d = tmp_path / "oldvm"
    d.mkdir()
    (d / "oldvm.ctys").write_text(LEGACY_WRAPPER)
    vm = load(d / "oldvm.ctys")
    assert vm.label == "oldvm"
    assert any("no sibling oldvm.conf" in w for w in vm.warnings)


def test_legacy_wrapper_ignored(tmp_path):
    d = tmp_path / "oldvm"
    d.mkdir()
    (d / "oldvm.ctys").write_text(LEGACY_WRAPPER + "#@#MAGICID-IGNORE\n")
    (d / "oldvm.conf").write_text(LEGACY_CONF)
    with pytest.raises(ConfError, match="--force"):
        load(d)


# --- mapping rules --------------------------------------------------------------------------------------

def test_label_mismatch(tmp_path):
    conf = small_conf(tmp_path, header='#@#MAGICID-QEMU\n#@#LABEL = "a"\nLABEL=b\nMEMSIZE=1\n')
    with pytest.raises(ConfError, match="differs from #@#LABEL"):
        load(conf)


def test_label_missing(tmp_path):
    conf = small_conf(tmp_path, header="#@#MAGICID-QEMU\nMEMSIZE=1\n")
    with pytest.raises(ConfError, match="no LABEL"):
        load(conf)


def test_label_from_key_only(tmp_path):
    conf = small_conf(tmp_path, header='#@#MAGICID-QEMU\n#@#LABEL = "k1"\nMEMSIZE=1\n')
    vm = load(conf)
    assert vm.label == "k1"
    assert any("LABEL" in w for w in vm.warnings)


@pytest.mark.parametrize("label", ["a b", "-x", "a/b", "a;b", "x" * 65, "ä"])
def test_label_invalid(tmp_path, label):
    conf = small_conf(tmp_path, header=f"#@#MAGICID-QEMU\nLABEL='{label}'\nMEMSIZE=1\n")
    with pytest.raises(ConfError, match="not usable"):
        load(conf)


@pytest.mark.parametrize("label", ["a", "vm_1.test+x-y", "9" * 64])
def test_label_valid(tmp_path, label):
    conf = small_conf(tmp_path, header=f"#@#MAGICID-QEMU\nLABEL='{label}'\nMEMSIZE=1\n")
    assert load(conf).label == label


@pytest.mark.parametrize("raw,expected", [
    ("3F2A6C1E9B7D4E0A8C5B1D2E3F4A5B6C", "3f2a6c1e9b7d4e0a8c5b1d2e3f4a5b6c"),
    ("3f2a6c1e-9b7d-4e0a-8c5b-1d2e3f4a5b6c", "3f2a6c1e9b7d4e0a8c5b1d2e3f4a5b6c"),
    ("", None),
])
def test_uuid(tmp_path, raw, expected):
    conf = small_conf(tmp_path, f'#@#UUID = "{raw}"\n')
    assert load(conf).uuid == expected


@pytest.mark.parametrize("raw", ["xyz", "3f2a6c1e9b7d4e0a8c5b1d2e3f4a5b6", "3f2a6c1e9b7d4e0a8c5b1d2e3f4a5b6cd"])
def test_uuid_invalid(tmp_path, raw):
    with pytest.raises(ConfError, match="UUID"):
        load(small_conf(tmp_path, f'#@#UUID = "{raw}"\n'))


def test_mac_rules(tmp_path):
    vm = load(small_conf(tmp_path / "a", '#@#MAC0 = "00:50:56:00:00:01"\n'))
    assert vm.mac == "00:50:56:00:00:01"
    vm = load(small_conf(tmp_path / "b", '#@#MAC0 = "00:50:56:00:00:01"\nMAC0=00:50:56:00:00:0A\n'))
    assert vm.mac == "00:50:56:00:00:0a"
    assert any("differs" in w for w in vm.warnings)
    assert load(small_conf(tmp_path / "c")).mac is None
    with pytest.raises(ConfError, match="MAC0"):
        load(small_conf(tmp_path / "d", "MAC0=00:50:56:00:00\n"))


def test_ip_first_field(tmp_path):
    vm = load(small_conf(tmp_path, '#@#IP0 = "10.0.0.5%255.255.255.0%relay%eth0,10.0.0.6"\n'))
    assert vm.ip == "10.0.0.5"


@pytest.mark.parametrize("raw,mib", [("512", 512), ("256M", 256), ("2G", 2048), ("1g", 1024),
                                     ("64MiB", 64)])
def test_memsize(tmp_path, raw, mib):
    assert load(small_conf(tmp_path, header=f"#@#MAGICID-QEMU\nLABEL=v\nMEMSIZE={raw}\n")).memory_mib == mib


@pytest.mark.parametrize("raw", ["", "abc", "0", "1P", "-5", "17T", "99999999999999999999"])
def test_memsize_invalid(tmp_path, raw):
    with pytest.raises(ConfError, match="MEMSIZE"):
        load(small_conf(tmp_path, header=f"#@#MAGICID-QEMU\nLABEL=v\nMEMSIZE='{raw}'\n"))


@pytest.mark.parametrize("raw,mib", [("2T", 2 * 1024 * 1024), ("16T", 16 * 1024 * 1024)])
def test_memsize_terabytes(tmp_path, raw, mib):
    assert load(small_conf(tmp_path, header=f"#@#MAGICID-QEMU\nLABEL=v\nMEMSIZE={raw}\n")).memory_mib == mib


@pytest.mark.parametrize("raw", ["0", "-1", "65536", "100000"])
def test_smp_out_of_range(tmp_path, raw):
    with pytest.raises(ConfError, match="SMP"):
        load(small_conf(tmp_path, header=f"#@#MAGICID-QEMU\nLABEL=v\nSMP={raw}\n"))


@pytest.mark.parametrize("mac", ["01:50:56:ab:cd:ef", "FF:FF:FF:FF:FF:FF", "33:33:00:00:00:01"])
def test_multicast_mac_rejected(tmp_path, mac):
    with pytest.raises(ConfError, match="multicast"):
        load(small_conf(tmp_path, header=f'#@#MAGICID-QEMU\nLABEL=v\nMAC0="{mac}"\n'))


@pytest.mark.parametrize("body,smp", [("", 1), ("SMP=\n", 1), ("SMP=4\n", 4)])
def test_smp(tmp_path, body, smp):
    assert load(small_conf(tmp_path, body)).smp == smp


def test_smp_invalid(tmp_path):
    with pytest.raises(ConfError, match="SMP"):
        load(small_conf(tmp_path, "SMP=two\n"))


@pytest.mark.parametrize("arch,cpu_line,exp_arch,exp_cpu", [
    ("amd64", "", "x86_64", "qemu64"),
    ("x86_64", "", "x86_64", "qemu64"),
    ("i386", "", "i686", "qemu32"),
    ("i586", "", "i686", "qemu32"),
    ("i686", "CPU=pentium3\n", "i686", "pentium3"),
    ("armv5tel", "", "armv5tel", None),
])
def test_arch_and_cpu(tmp_path, arch, cpu_line, exp_arch, exp_cpu):
    vm = load(small_conf(tmp_path, f"ARCH={arch}\n{cpu_line}"))
    assert (vm.arch, vm.cpu) == (exp_arch, exp_cpu)


def test_paths_resolve_against_conf_dir(tmp_path):
    body = ("HDDBOOTIMAGE=disk/hda.qcow2\nHDB=hdb.img\nHDC=${CTYSWRAPPERPATH}/\nHDD=/abs/hdd.img\n"
            "FDB=fdb.img\nFDA=fda.img\nCDIMAGE=cd.iso\nDVDIMAGE=/d/dvd.iso\nUSBBOOTIMAGE=usb.img\n"
            "KERNELIMAGE=boot/vmlinuz\nINITRDIMAGE=/b/initrd\nDEFAULTINSTTARGET=t.img\n"
            "INSTSRCHDD=src.img\nINSTSRCCDROM=/dev/cdrom\nQEMU_IMG=qcow2\n")
    conf = small_conf(tmp_path, body)
    d = conf.parent
    vm = load(conf)
    assert vm.hdd_boot_image == d / "disk/hda.qcow2"
    assert vm.extra_disks == {"hdb": d / "hdb.img", "hdd": Path("/abs/hdd.img"), "fdb": d / "fdb.img"}
    assert any("HDC" in w and "directory" in w for w in vm.warnings)
    assert (vm.fdd_image, vm.cd_image, vm.dvd_image, vm.usb_image) == (
        d / "fda.img", d / "cd.iso", Path("/d/dvd.iso"), d / "usb.img")
    assert (vm.kernel, vm.initrd) == (d / "boot/vmlinuz", Path("/b/initrd"))
    assert vm.default_insttarget == str(d / "t.img")
    assert vm.inst_sources == {"HDD": str(d / "src.img"), "CD": "/dev/cdrom"}
    assert vm.qemu_img_format == "qcow2"


def test_hda_alias(tmp_path):
    assert load(small_conf(tmp_path, "HDA=x.img\n")).hdd_boot_image == tmp_path / "vm1" / "x.img"


@pytest.mark.parametrize("line,vga", [
    ('VGADRIVER="-vga cirrus "', "cirrus"), ('VGADRIVER=" -vga std "', "std"),
    ('VGADRIVER="-vga vmware"', "vmware"), ("VGADRIVER=-std-vga", "std"), ("VGADRIVER=", None),
    ("", None),
])
def test_vga(tmp_path, line, vga):
    assert load(small_conf(tmp_path, line + "\n")).vga == vga


def test_vga_unknown_warns(tmp_path):
    vm = load(small_conf(tmp_path, "VGADRIVER=cirrus\n"))
    assert vm.vga is None and any("VGADRIVER" in w for w in vm.warnings)


@pytest.mark.parametrize("line,vga", [('VGADRIVER="-vga std-vga"', "std"), ('VGADRIVER="-vga VGA"', "std"),
                                      ('VGADRIVER="-vga vmvga"', "vmware"), ('VGADRIVER="-vga=qxl"', "qxl"),
                                      ('VGADRIVER="-vga none"', "none")])
def test_vga_aliases(tmp_path, line, vga):
    assert load(small_conf(tmp_path, line + "\n")).vga == vga


def test_vga_name_not_in_table_warns(tmp_path):
    vm = load(small_conf(tmp_path, 'VGADRIVER="-vga cga"\n'))
    assert vm.vga is None
    assert "VGADRIVER 'cga' is not known (cirrus, std, vmware, qxl, virtio, none); using the default " \
           "video device" in vm.warnings


def test_bad_label_with_slash(tmp_path):
    with pytest.raises(ConfError, match="LABEL"):
        load(small_conf(tmp_path, header="#@#MAGICID-QEMU\nLABEL='a/b'\nMEMSIZE=1\n"))


@pytest.mark.parametrize("line,localtime,rest", [
    ('TIMEOPT="${TIMEOPT:--localtime} "', True, ""),
    ('TIMEOPT=" "', False, ""),
    ('TIMEOPT="-localtime -rtc-td-hack"', True, "-rtc-td-hack"),
    ("", True, ""),
])
def test_timeopt(tmp_path, line, localtime, rest):
    vm = load(small_conf(tmp_path, line + "\n"))
    assert (vm.localtime, vm.timeopt) == (localtime, rest)


@pytest.mark.parametrize("line,nic", [("NIC=${NIC:-rtl8139}", "rtl8139"), ("NIC=virtio", "virtio"),
                                      ("NIC=", None), ("", "rtl8139")])
def test_nic(tmp_path, line, nic):
    assert load(small_conf(tmp_path, line + "\n")).nic_model == nic


def test_misc_fields(tmp_path):
    body = ("ACCELERATOR=kvm\nSTARTERCALL=/usr/bin/kvm\nWRAPPERCALL=\nQEMUBIOS=/usr/share/qemu\n"
            "KBD_LAYOUT=de-ch\nARGSADD='-usb -usbdevice \"tablet x\"'\nVNCACCESSDISPLAY=7\n"
            "APPEND='console=ttyS0 quiet'\nDEFAULTBOOTMODE=cd\nDEFAULTINSTMODE=\n"
            "HDDBOOTIMAGE_INST_SIZE=4G\n#@#DEFAULTCONSOLE = \"CLI\"\n")
    vm = load(small_conf(tmp_path, body))
    assert (vm.accelerator, vm.startercall, vm.wrappercall, vm.qemubios) == (
        "KVM", "/usr/bin/kvm", None, "/usr/share/qemu")
    assert (vm.keyboard, vm.argsadd, vm.vnc_display, vm.append) == (
        "de-ch", '-usb -usbdevice "tablet x"', 7, "console=ttyS0 quiet")
    assert (vm.default_bootmode, vm.default_instmode, vm.inst_size, vm.default_console) == (
        "CD", "CD", "4G", "CLI")


def test_vnc_display_not_int_warns(tmp_path):
    vm = load(small_conf(tmp_path, "VNCACCESSDISPLAY=abc\n"))
    assert vm.vnc_display is None and any("VNCACCESSDISPLAY" in w for w in vm.warnings)


def test_parse_error_carries_path_line_col(tmp_path):
    conf = small_conf(tmp_path, "X=1\nY=`id`\n")
    with pytest.raises(ConfError) as ei:
        load(conf)
    assert (ei.value.path, ei.value.line, ei.value.col) == (str(conf), 6, 3)


def test_cache_sees_edits(tmp_path):
    conf = small_conf(tmp_path, "SMP=2\n")
    assert load(conf).smp == 2
    conf.write_text(conf.read_text().replace("SMP=2", "SMP=3"))
    assert load(conf).smp == 3


# --- host context ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,dist", [
    ('ID=debian\nVERSION_ID="12"\n', "debian"), ('NAME="Ubuntu"\nID=ubuntu\n', "Ubuntu"),
    ('ID="centos"\n', "CentOS"), ("ID=fedora\n", "Fedora"), ("ID=weird\n", "weird"), ("", "Linux"),
])
def test_mydist_mapping(text, dist):
    assert mydist_from_os_release(text) == dist


def test_context_variables_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("QEMUBASE", "/from/env")
    v = context_variables(CENTOS_CTX, tmp_path)
    assert v["CTYSWRAPPERPATH"] == str(tmp_path)
    assert (v["MYDIST"], v["USER"]) == ("CentOS", "acue")
    assert v["QEMUBASE"] == "/usr/bin/qemu-system-x86_64"     # HostContext.extra
    assert v["QEMUSOCK"] == "/var/tmp/vde_switch0.acue"
    assert v["QEMUKVM"] == "qemu-kvm"
    assert "ARCH" not in v and "HOME" not in v               # environment not consulted
    assert "VDE_DEQ" not in v
    assert context_variables(CENTOS_CTX, tmp_path, use_env=True)["HOME"]
