"""resolve_plan: boot media per BOOTMODE, KERNEL, INSTMODE defaults and slots, data disks,
NIC, ARGSADD, UUID, CPU/arch."""
import dataclasses
import uuid as uuidlib

import pytest
from support.translate import QCOW2_HEADER, make_vm, touch

from ctys_libvirt.errors import ConfError, NotFoundError, UsageError
from ctys_libvirt.model import BootMode, ConsoleType
from ctys_libvirt.host.facts import host_facts
from ctys_libvirt.translate.plan import final_request, resolve_plan
from ctys_libvirt.translate.request import make_request


def layout(plan):
    """{role: (path basename, device, bus, target, boot order, purpose)}"""
    return {d.role: (d.path.rsplit("/", 1)[-1], d.device, d.bus, d.target, d.boot_order, d.purpose)
            for d in plan.disks}


@pytest.fixture
def vm(tmp_path):
    return make_vm(tmp_path)


# --- BOOTMODE ---------------------------------------------------------------------------

def test_default_boot_is_conf_defaultbootmode_hdd(vm):
    p = resolve_plan(vm, make_request(), host_facts())
    assert p.bootmode is BootMode.HDD
    assert layout(p) == {"hda": ("hda.img", "disk", "ide", "hda", 1, "boot")}
    assert p.boot_order == ("hd",)
    assert p.machine == "pc" and p.install is None and p.create_target is None


@pytest.mark.parametrize("mode", ["HDD", "VHDD"])
def test_hdd_path_overrides_hddbootimage(vm, tmp_path, mode):
    other = touch(tmp_path / "other.img", QCOW2_HEADER)
    p = resolve_plan(vm, make_request(bootmode=f"{mode}%{other}"), host_facts())
    assert layout(p) == {"hda": ("other.img", "disk", "ide", "hda", 1, "boot")}
    assert p.disk("hda").format == "qcow2"


def test_relative_boot_path_resolves_against_conf_dir(vm):
    touch(vm.conf_dir / "rel.img")
    p = resolve_plan(vm, make_request(bootmode="HDD%rel.img"), host_facts())
    assert p.disk("hda").path == str(vm.conf_dir / "rel.img")


@pytest.mark.parametrize("mode,var", [("CD", "cd_image"), ("DVD", "dvd_image")])
def test_cd_dvd_attach_cdrom_hdc_boot_first_hdd_kept(tmp_path, mode, var):
    iso = touch(tmp_path / "m.iso", b"\x00" * 4096)
    vm = make_vm(tmp_path, **{var: iso})
    p = resolve_plan(vm, make_request(bootmode=mode), host_facts())
    assert layout(p) == {"hda": ("hda.img", "disk", "ide", "hda", 2, "hdd"),
                         "hdc": ("m.iso", "cdrom", "ide", "hdc", 1, "boot")}
    assert p.disk("hdc").readonly and not p.disk("hda").readonly
    assert p.boot_order == ("cdrom", "hd")


def test_cd_path_from_request(vm, tmp_path):
    iso = touch(tmp_path / "dir with space" / "x%y.iso")
    p = resolve_plan(vm, make_request(bootmode=f"cd%{iso}"), host_facts())
    assert p.disk("hdc").path == str(iso)


def test_fdd_boot(tmp_path):
    vm = make_vm(tmp_path, fdd_image=touch(tmp_path / "fd.img"))
    p = resolve_plan(vm, make_request(bootmode="FDD"), host_facts())
    assert layout(p) == {"hda": ("hda.img", "disk", "ide", "hda", 2, "hdd"),
                         "fda": ("fd.img", "floppy", "fdc", "fda", 1, "boot")}
    assert p.boot_order == ("fd", "hd")


def test_usb_boot(tmp_path):
    vm = make_vm(tmp_path, usb_image=touch(tmp_path / "u.img"))
    p = resolve_plan(vm, make_request(bootmode="USB"), host_facts())
    assert layout(p) == {"hda": ("hda.img", "disk", "ide", "hda", 2, "hdd"),
                         "usb": ("u.img", "disk", "usb", "sda", 1, "boot")}
    assert p.boot_order == ("hd", "hd")


def test_pxe_network_first_hdd_attached(vm):
    p = resolve_plan(vm, make_request(bootmode="PXE"), host_facts())
    assert p.nic.boot_order == 1 and p.network_boot
    assert layout(p) == {"hda": ("hda.img", "disk", "ide", "hda", 2, "hdd")}
    assert p.boot_order == ("network", "hd")


def test_pxe_without_nic_is_conf_error(tmp_path):
    vm = make_vm(tmp_path, nic_model=None)
    with pytest.raises(ConfError, match="NIC"):
        resolve_plan(vm, make_request(bootmode="PXE"), host_facts())


def test_cd_boot_with_missing_hdd_warns(tmp_path):
    vm = make_vm(tmp_path, cd_image=touch(tmp_path / "m.iso"))
    vm.hdd_boot_image.unlink()
    p = resolve_plan(vm, make_request(bootmode="CD"), host_facts())
    assert list(layout(p)) == ["hdc"]
    assert any("HDDBOOTIMAGE" in w and "does not exist" in w for w in p.warnings)


@pytest.mark.parametrize("mode,var", [("CD", "CDIMAGE"), ("DVD", "DVDIMAGE"), ("FDD", "FDDIMAGE"),
                                      ("USB", "USBBOOTIMAGE")])
def test_missing_boot_image_names_mode_variable_and_fix(vm, mode, var):
    with pytest.raises(NotFoundError) as ei:
        resolve_plan(vm, make_request(bootmode=mode), host_facts())
    msg = str(ei.value)
    assert f"BOOTMODE {mode} needs an image: set {var} in {vm.source_path}" in msg
    assert f"BOOTMODE:{mode}%/path" in msg
    assert ei.value.exit_code == 2


def test_missing_hdd_image(vm):
    vm.hdd_boot_image.unlink()
    with pytest.raises(NotFoundError, match=r"BOOTMODE HDD.*hda.img does not exist \(HDDBOOTIMAGE\)"):
        resolve_plan(vm, make_request(), host_facts())


def test_missing_path_from_request(vm, tmp_path):
    with pytest.raises(NotFoundError, match="nope.iso does not exist"):
        resolve_plan(vm, make_request(bootmode=f"CD%{tmp_path}/nope.iso"), host_facts())


def test_bad_defaultbootmode_is_conf_error(tmp_path):
    vm = make_vm(tmp_path, default_bootmode="FLOPPY")
    with pytest.raises(ConfError, match="DEFAULTBOOTMODE"):
        resolve_plan(vm, make_request(), host_facts())


# --- KERNEL -----------------------------------------------------------------------------

@pytest.fixture
def kvm_(tmp_path):
    return make_vm(tmp_path, kernel=touch(tmp_path / "vmlinuz"), initrd=touch(tmp_path / "initrd"),
                   append="root=/dev/sda1 ro console=ttyS0")


def test_conf_kernel_applies_to_hdd_boot_with_append(kvm_, tmp_path):
    p = resolve_plan(kvm_, make_request(), host_facts())
    assert (str(p.kernel.kernel), str(p.kernel.initrd), p.kernel.append) == (
        str(tmp_path / "vmlinuz"), str(tmp_path / "initrd"), "root=/dev/sda1 ro console=ttyS0")
    assert p.disk("hda").boot_order == 1


def test_kernel_suboption_overrides_fields(kvm_, tmp_path):
    k2 = touch(tmp_path / "k2")
    p = resolve_plan(kvm_, make_request(kernel=f"{k2}%%init=/bin/sh 100%"), host_facts())
    assert (str(p.kernel.kernel), str(p.kernel.initrd), p.kernel.append) == (
        str(k2), str(tmp_path / "initrd"), "init=/bin/sh 100%")


def test_bootmode_kernel_uses_kernelimage_hdd_not_booted(kvm_):
    p = resolve_plan(kvm_, make_request(bootmode="KERNEL"), host_facts())
    assert p.kernel is not None and p.bootmode is BootMode.KERNEL
    assert layout(p) == {"hda": ("hda.img", "disk", "ide", "hda", None, "hdd")}
    assert p.boot_order == ()


def test_bootmode_kernel_without_kernelimage(vm):
    with pytest.raises(NotFoundError, match="BOOTMODE KERNEL needs a kernel: set KERNELIMAGE"):
        resolve_plan(vm, make_request(bootmode="KERNEL"), host_facts())


def test_kernel_file_missing(vm, tmp_path):
    with pytest.raises(NotFoundError, match="kernel .*nokernel is not a file"):
        resolve_plan(vm, make_request(kernel=f"{tmp_path}/nokernel"), host_facts())
    k = touch(tmp_path / "k")
    with pytest.raises(NotFoundError, match="initrd .*noinitrd is not a file"):
        resolve_plan(vm, make_request(kernel=f"{k}%{tmp_path}/noinitrd"), host_facts())


# --- INSTMODE ---------------------------------------------------------------------------

@pytest.fixture
def ivm(tmp_path):
    src = tmp_path / "src"
    return make_vm(
        tmp_path, default_instmode="CD", default_instsource=str(touch(src / "default.iso")),
        inst_sources={"CD": str(touch(src / "instsrc-cd.iso")), "FDD": str(touch(src / "instsrc.fd")),
                      "USB": str(touch(src / "instsrc.usb")), "HDD": "srchdd.img"},
        inst_size="8G", qemu_img_format="qcow2", inst_blocksize="256M", inst_blockcount="32",
    )


def test_bare_instmode_uses_all_defaults(ivm):
    p = resolve_plan(ivm, make_request(instmode=""), host_facts())
    spec = p.install
    assert (spec.src_mode, spec.src_path.rsplit("/", 1)[-1], spec.tgt_mode, spec.tgt_path, spec.stage) == (
        "CD", "default.iso", "HDD", str(ivm.conf_dir / "hda.img"), None)
    assert layout(p) == {"hda": ("hda.img", "disk", "ide", "hda", 2, "install-target"),
                         "hdc": ("default.iso", "cdrom", "ide", "hdc", 1, "install-source")}
    assert p.install_phase and p.bootmode is None and p.create_target is None


def test_default_keyword_equals_bare(ivm):
    assert resolve_plan(ivm, make_request(instmode="DEFAULT"), host_facts()).install == \
        resolve_plan(ivm, make_request(instmode=""), host_facts()).install


def test_srcpath_default_is_defaultinstsource_when_mode_is_default(ivm):
    p = resolve_plan(ivm, make_request(instmode="CD%%HDD"), host_facts())
    assert p.install.src_path.endswith("default.iso")       # defect fixed: not INSTSRCCDROM


@pytest.mark.parametrize("src,path,role,device,bus", [
    ("DVD", "instsrc-cd.iso", "hdc", "cdrom", "ide"),
    ("FDD", "instsrc.fd", "fda", "floppy", "fdc"),
    ("USB", "instsrc.usb", "usb", "disk", "usb"),
])
def test_srcpath_default_per_mode_instsrc(ivm, src, path, role, device, bus):
    p = resolve_plan(ivm, make_request(instmode=src), host_facts())
    d = p.disk(role)
    assert (d.path.rsplit("/", 1)[-1], d.device, d.bus, d.boot_order, d.purpose) == (
        path, device, bus, 1, "install-source")


def test_hdd_source_relative_instsrc_and_target_moves_to_hdb(ivm):
    touch(ivm.conf_dir / "srchdd.img", QCOW2_HEADER)
    p = resolve_plan(ivm, make_request(instmode="HDD"), host_facts())
    assert layout(p) == {"hda": ("srchdd.img", "disk", "ide", "hda", 1, "install-source"),
                         "hdb": ("hda.img", "disk", "ide", "hdb", 2, "install-target")}
    assert p.disk("hda").format == "qcow2" and p.disk("hdb").format == "raw"


def test_hdddos_target_with_hdd_source_goes_to_hdb(ivm, tmp_path):
    touch(ivm.conf_dir / "srchdd.img")
    p = resolve_plan(ivm, make_request(instmode=f"HDD%%HDDDOS%{tmp_path}/dos.img%INIT"), host_facts())
    assert p.disk("hdb").path == f"{tmp_path}/dos.img"     # defect fixed: no hda clash
    c = p.create_target
    assert (c.path, c.format, c.size, c.mode, c.blocksize, c.blockcount) == (
        f"{tmp_path}/dos.img", "raw", "8G", "HDDDOS", "256M", "32")


def test_fdd_to_fdd_uses_fdb(ivm, tmp_path):
    t = touch(tmp_path / "t.fd")
    p = resolve_plan(ivm, make_request(instmode=f"FDD%%FDD%{t}"), host_facts())
    assert layout(p)["fdb"] == ("t.fd", "floppy", "fdc", "fdb", 2, "install-target")


def test_cd_to_fdd_uses_fda_and_usb_to_usb_second_unit(ivm, tmp_path):
    t = touch(tmp_path / "t.fd")
    assert resolve_plan(ivm, make_request(instmode=f"CD%%FDD%{t}"), host_facts()).disk("fda").purpose == "install-target"
    u = touch(tmp_path / "t.usb")
    p = resolve_plan(ivm, make_request(instmode=f"USB%%USB%{u}"), host_facts())
    assert layout(p)["usb1"] == ("t.usb", "disk", "usb", "sdb", 2, "install-target")


def test_tgtpath_default_when_modes_differ_for_disk_types(ivm):
    # DEFAULTBOOTMODE is HDD; legacy attached no target for VHDD (defect fixed)
    p = resolve_plan(ivm, make_request(instmode="CD%%VHDD"), host_facts())
    assert p.install.tgt_path == str(ivm.conf_dir / "hda.img")
    assert p.disk("hda").purpose == "install-target"


def test_fdd_target_without_path_is_usage_error(ivm):
    with pytest.raises(UsageError, match="INSTMODE target FDD needs a TGTPATH"):
        resolve_plan(ivm, make_request(instmode="CD%%FDD"), host_facts())


def test_pxe_source_network_first(ivm):
    p = resolve_plan(ivm, make_request(instmode="PXE"), host_facts())
    assert p.install.src_path is None
    assert p.nic.boot_order == 1 and p.disk("hda").boot_order == 2
    assert p.boot_order == ("network", "hd")


def test_stage_init_missing_target_is_created_by_backend(ivm, tmp_path):
    p = resolve_plan(ivm, make_request(instmode=f"CD%%HDD%{tmp_path}/new.img%init"), host_facts())
    c = p.create_target
    assert (c.path, c.format, c.size, c.mode) == (f"{tmp_path}/new.img", "qcow2", "8G", "HDD")
    d = p.disk("hda")
    assert (d.exists, d.format) == (False, "qcow2")
    assert not (tmp_path / "new.img").exists()          # the plan never creates anything


def test_stage_init_existing_target_is_reused(ivm):
    p = resolve_plan(ivm, make_request(instmode="CD%%HDD%%INIT"), host_facts())
    assert p.create_target is None and p.disk("hda").exists


def test_missing_target_without_init(ivm, tmp_path):
    with pytest.raises(NotFoundError, match="add STAGE INIT"):
        resolve_plan(ivm, make_request(instmode=f"CD%%HDD%{tmp_path}/new.img"), host_facts())


def test_missing_inst_size_for_creation(tmp_path):
    vm = make_vm(tmp_path, cd_image=None, default_instsource=str(touch(tmp_path / "i.iso")))
    with pytest.raises(ConfError, match="HDDBOOTIMAGE_INST_SIZE"):
        resolve_plan(vm, make_request(instmode=f"CD%%HDD%{tmp_path}/n.img%INIT"), host_facts())


def test_missing_install_source(ivm, tmp_path):
    with pytest.raises(NotFoundError, match="INSTMODE source CD: .*nosuch.iso does not exist"):
        resolve_plan(ivm, make_request(instmode=f"CD%{tmp_path}/nosuch.iso"), host_facts())


def test_device_install_source_allowed(ivm):
    p = resolve_plan(ivm, make_request(instmode="CD%/dev/null", allow_devices=["/dev/null"]), host_facts())
    d = p.disk("hdc")
    assert (d.path, d.block, d.format) == ("/dev/null", True, "raw")


def test_same_source_and_target(ivm):
    with pytest.raises(UsageError, match="same file"):
        resolve_plan(ivm, make_request(instmode=f"HDD%{ivm.hdd_boot_image}%HDD%{ivm.hdd_boot_image}"), host_facts())


def test_bootmode_ignored_during_install_with_warning(ivm):
    p = resolve_plan(ivm, make_request(instmode="", bootmode="PXE"), host_facts())
    assert p.nic.boot_order is None and any("BOOTMODE PXE ignored" in w for w in p.warnings)


def test_final_request_and_plan_boot_the_target(ivm, tmp_path):
    req = make_request(instmode=f"CD%%HDD%{tmp_path}/new.img%INIT", kernel=None, console="CLI")
    f = final_request(ivm, req)
    assert (f.bootmode, f.boot_path, f.instmode, f.install_phase, f.console) == (
        BootMode.HDD, f"{tmp_path}/new.img", None, False, ConsoleType.CLI)
    p = resolve_plan(ivm, make_request(instmode=f"CD%%HDD%{tmp_path}/new.img%INIT", install_phase=False), host_facts())
    assert layout(p) == {"hda": ("new.img", "disk", "ide", "hda", 1, "boot")}
    assert p.disk("hda").format == "qcow2" and not p.install_phase and p.install is not None


def test_install_only_kernel_suboption_dropped_in_final(ivm, tmp_path):
    k = touch(tmp_path / "instk")
    req = make_request(instmode="", kernel=str(k))
    assert resolve_plan(ivm, req, host_facts()).kernel is not None
    assert resolve_plan(ivm, make_request(instmode="", kernel=str(k), install_phase=False), host_facts()).kernel is None


def test_missing_inst_source_variable_named(tmp_path):
    vm = make_vm(tmp_path, default_instmode="CD", default_instsource=None, inst_sources={})
    with pytest.raises(NotFoundError, match="set INSTSRCCDROM"):
        resolve_plan(vm, make_request(instmode=""), host_facts())


# --- data disks, NIC, ARGSADD, identity ------------------------------------------------

def test_data_disks_hdb_hdd_fdb_and_missing_skipped(tmp_path):
    d = tmp_path / "vm1"
    vm = make_vm(tmp_path, extra_disks={"hdb": touch(d / "hdb.img", QCOW2_HEADER), "hdd": touch(d / "hdd.img"),
                                        "fdb": touch(d / "fdb.img"), "hdc": d / "missing.img"})
    p = resolve_plan(vm, make_request(), host_facts())
    assert layout(p) == {"hda": ("hda.img", "disk", "ide", "hda", 1, "boot"),
                         "hdb": ("hdb.img", "disk", "ide", "hdb", None, "data"),
                         "hdd": ("hdd.img", "disk", "ide", "hdd", None, "data"),
                         "fdb": ("fdb.img", "floppy", "fdc", "fdb", None, "data")}
    assert p.disk("hdb").format == "qcow2"
    assert any("HDC" in w and "missing.img does not exist" in w for w in p.warnings)


def test_hdc_clashes_with_cdrom_cdrom_wins(tmp_path):
    d = tmp_path / "vm1"
    vm = make_vm(tmp_path, cd_image=touch(tmp_path / "c.iso"), extra_disks={"hdc": touch(d / "hdc.img")})
    p = resolve_plan(vm, make_request(bootmode="CD"), host_facts())
    assert p.disk("hdc").device == "cdrom"
    assert any("HDC" in w and "slot hdc holds the boot" in w for w in p.warnings)


def test_hdb_clashes_with_install_target(tmp_path):
    d = tmp_path / "vm1"
    vm = make_vm(tmp_path, default_instmode="HDD", inst_sources={"HDD": str(touch(d / "s.img"))},
                 extra_disks={"hdb": touch(d / "hdb.img")})
    p = resolve_plan(vm, make_request(instmode=""), host_facts())
    assert p.disk("hdb").purpose == "install-target"
    assert any("HDB" in w and "install-target" in w for w in p.warnings)


def test_nic_mac_model_and_none(tmp_path):
    # VmConfig.mac is lower case (conf.mapping lower-cases MAC0: test_conf_load.test_mac_rules)
    p = resolve_plan(make_vm(tmp_path, mac="00:50:56:ab:11:40", nic_model="virtio"), make_request(), host_facts())
    assert (p.nic.mac, p.nic.model, p.nic.boot_order) == ("00:50:56:ab:11:40", "virtio", None)
    assert resolve_plan(make_vm(tmp_path, nic_model=None), make_request(), host_facts()).nic is None
    # no MAC0: derived from the UUID (stable across re-defines), reported like the UUID
    from ctys_libvirt.translate.plan import mac_from_uuid

    p = resolve_plan(make_vm(tmp_path, mac=None), make_request(), host_facts())
    assert p.nic.mac == mac_from_uuid(p.uuid) and p.nic.mac.startswith("52:54:00:")
    assert any("derived from the UUID" in w and p.nic.mac in w for w in p.warnings)
    assert resolve_plan(make_vm(tmp_path, mac=None), make_request(), host_facts()).nic.mac == p.nic.mac
    other = resolve_plan(make_vm(tmp_path, mac=None, uuid="ab" * 16), make_request(), host_facts())
    assert other.nic.mac != p.nic.mac


# MAC0, MEMSIZE, SMP and VGADRIVER are checked once, where the conf enters (conf.mapping:
# tests/unit/test_conf_load.py has their bad values); the plan trusts a VmConfig's values.
@pytest.mark.parametrize("kw,match", [({"nic_model": "e1000,vlan=0"}, "NIC"),
                                      ({"uuid": "xyz"}, "UUID"), ({"label": "a/b"}, "LABEL")])
def test_bad_conf_values(tmp_path, kw, match):
    vm = dataclasses.replace(make_vm(tmp_path), **kw)
    with pytest.raises(ConfError, match=match):
        resolve_plan(vm, make_request(), host_facts())


def test_argsadd_shell_words_conf_then_request(tmp_path):
    vm = make_vm(tmp_path, argsadd="-usb -usbdevice tablet -device 'e1000,netdev=x' -name \"a b\"")
    p = resolve_plan(vm, make_request(argsadd=["-no-hpet", "-append 'x y'"]), host_facts())
    assert p.argsadd == ("-usb", "-usbdevice", "tablet", "-device", "e1000,netdev=x", "-name", "a b",
                         "-no-hpet", "-append", "x y")


def test_argsadd_split_errors(tmp_path):
    with pytest.raises(ConfError, match="ARGSADD"):
        resolve_plan(make_vm(tmp_path, argsadd="-a 'open"), make_request(), host_facts())
    with pytest.raises(UsageError, match="ARGSADD"):
        resolve_plan(make_vm(tmp_path), make_request(argsadd=['-a "open']), host_facts())


def test_timeopt_words_kept_localtime_flag(tmp_path):
    p = resolve_plan(make_vm(tmp_path, localtime=True, timeopt="-rtc-td-hack"), make_request(), host_facts())
    assert p.localtime and p.timeopt_args == ("-rtc-td-hack",)


def test_generated_uuid_is_deterministic_uuid5_and_reported(tmp_path):
    vm = make_vm(tmp_path, uuid=None)
    p1 = resolve_plan(vm, make_request(), host_facts())
    p2 = resolve_plan(make_vm(tmp_path, uuid=None), make_request(), host_facts())
    expect = uuidlib.uuid5(uuidlib.NAMESPACE_URL, "file://" + str(vm.source_path)).hex
    assert p1.uuid == p2.uuid == expect and p1.uuid_generated
    assert any(expect in w and str(vm.source_path) in w for w in p1.warnings)
    other = make_vm(tmp_path, label="vm2", uuid=None)
    assert resolve_plan(other, make_request(), host_facts()).uuid != expect


def test_conf_uuid_with_dashes(tmp_path):
    p = resolve_plan(make_vm(tmp_path, uuid="3F2A6C1E-9B7D-4E0A-8C5B-1D2E3F4A5B6C"), make_request(), host_facts())
    assert p.uuid == "3f2a6c1e9b7d4e0a8c5b1d2e3f4a5b6c" and not p.uuid_generated
    assert p.uuid_dashed == "3f2a6c1e-9b7d-4e0a-8c5b-1d2e3f4a5b6c"


@pytest.mark.parametrize("arch,cpu,exp_arch,exp_cpu", [
    ("x86_64", None, "x86_64", "qemu64"), ("amd64", None, "x86_64", "qemu64"),
    ("i686", None, "i686", "qemu32"), ("i386", None, "i686", "qemu32"),
    ("x86_64", "core2duo", "x86_64", "core2duo"),
])
def test_arch_cpu(tmp_path, arch, cpu, exp_arch, exp_cpu):
    p = resolve_plan(make_vm(tmp_path, arch=arch, cpu=cpu), make_request(), host_facts())
    assert (p.arch, p.cpu) == (exp_arch, exp_cpu)


def test_vga_from_conf(tmp_path):
    # names, aliases and unknown names: tests/unit/test_conf_load.py (conf.mapping checks them)
    assert resolve_plan(make_vm(tmp_path, vga="vmware"), make_request(), host_facts()).vga == "vmware"


def test_vnc_display_request_wins_over_conf(tmp_path):
    vm = make_vm(tmp_path, vnc_display=4)
    assert resolve_plan(vm, make_request(), host_facts()).vnc_display == 4
    assert resolve_plan(vm, make_request(console="VNC:9"), host_facts()).vnc_display == 9


def test_boot_medium_that_is_the_hdd_image_is_refused(tmp_path):
    vm = make_vm(tmp_path, "twice")
    with pytest.raises(UsageError, match="attached twice"):
        resolve_plan(vm, make_request(bootmode=f"CD%{vm.hdd_boot_image}"), host_facts())
