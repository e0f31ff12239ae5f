"""Legacy ARGSADD -> libvirt elements (translate.legacy_args): each conversion, the merge
with the conf (one USB controller, one NIC, ARGSADD wins conflicts with a warning), what
stays for qemu:commandline, and that the direct backend still gets ARGSADD verbatim."""
from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from support.translate import FIXED_CAPS, assert_valid, disks, example_tree, make_vm, qemu_args, touch

from ctys_libvirt.qemu.probe import synthetic_probe
from ctys_libvirt.translate import legacy_args
from ctys_libvirt.translate.argv import build_argv
from ctys_libvirt.host.facts import host_facts
from ctys_libvirt.translate.plan import resolve_plan
from ctys_libvirt.translate.request import make_request
from ctys_libvirt.translate.xml import XmlOptions, build_domain


EXE = Path(sys.executable).with_name("ctys-libvirt")


def conv(text: str) -> legacy_args.LegacyArgs:
    return legacy_args.convert(shlex.split(text))


def build(vm, options=None, **req):
    b = build_domain(vm, make_request(**req), host_facts(FIXED_CAPS), options)
    return b, assert_valid(b.xml)


def devices(root, tag):
    return [dict(e.attrib) for e in root.iterfind(f"devices/{tag}")]


# --- the converter on its own ----------------------------------------------------------

@pytest.mark.parametrize("text,field,value", [
    ("-m 64", "memory_mib", 64), ("-m 1G", "memory_mib", 1024), ("-m size=96M", "memory_mib", 96),
    ("-smp 2", "smp", 2), ("-smp cpus=3", "smp", 3),
    ("-cpu qemu64,+ssse3", "cpu", "qemu64,+ssse3"), ("-vga std", "vga", "std"), ("-std-vga", "vga", "std"),
    ("-vga vmware", "vga", "vmware"), ("-k fr", "keymap", "fr"), ("-localtime", "localtime", True),
    ("-rtc base=utc", "localtime", False), ("-rtc base=localtime", "localtime", True),
    ("-rtc base=2006-06-17T16:01:21", "clock_start", "1150560081"),
    ("-rtc clock=vm", "rtc_track", "guest"), ("-rtc clock=host", "rtc_track", "wall"),
    ("-rtc driftfix=slew", "rtc_tickpolicy", "catchup"),
    ("-no-acpi", "acpi", False), ("-no-hpet", "hpet", False),
    ("-enable-kvm", "accelerator", "KVM"), ("-no-kvm", "accelerator", "QEMU"),
    ("-accel tcg", "accelerator", "QEMU"), ("-boot d", "boot", "d"), ("-boot order=nc", "boot", "nc"),
    ("-boot menu=on", "boot_menu", True), ("-nographic", "graphics", False),
    ("-balloon virtio", "balloon", "virtio"), ("-device virtio-balloon-pci", "balloon", "virtio"),
    ("-watchdog i6300esb", "watchdog", "i6300esb"), ("-device ib700", "watchdog", "ib700"),
    ("-watchdog-action poweroff", "watchdog_action", "poweroff"),
    ("-usb", "usb", True), ("-usbdevice tablet", "inputs", ("tablet",)),
    ("-usbdevice mouse", "inputs", ("mouse",)), ("-usbdevice keyboard", "inputs", ("keyboard",)),
    ("-device usb-tablet", "inputs", ("tablet",)), ("-device usb-kbd,id=k", "inputs", ("keyboard",)),
    ("-device nec-usb-xhci", "usb_model", "nec-xhci"),
    ("-net user", "net_kind", "user"), ("-net bridge,br=br7", "net_bridge", "br7"),
    ("-net tap", "net_kind", "default"), ("-net none", "net_none", True),
    ("-net nic,model=e1000,macaddr=52:54:00:AA:BB:CC", "nics",
     (legacy_args.NativeNic("e1000", "52:54:00:aa:bb:cc"),)),
    ("-serial null", "extra_serials", ("null",)), ("-parallel null", "parallels", ("null",)),
    ("-rtc-td-hack", "rtc_tickpolicy", "catchup"), ("-no-kqemu", "leftover", ()),
    ("-daemonize", "leftover", ()), ("-uuid 12345678-1234-1234-1234-123456789abc", "leftover", ()),
    ("-serial vc:1000x300", "extra_serials", ()),
])
def test_each_conversion(text, field, value):
    c = conv(text)
    assert getattr(c, field) == value
    assert c.leftover == ()
    assert [w for x in c.converted for w in x.words] == shlex.split(text)


def test_sound_cards():
    assert [s.model for s in conv("-soundhw ac97,es1370").sounds] == ["ac97", "es1370"]
    c = conv("-soundhw all")
    assert [s.model for s in c.sounds] == ["sb16", "es1370", "ac97", "ich6"]
    assert any("pcspk" in w for w in c.warnings)
    c = conv("-device ich9-intel-hda -device hda-output -device AC97")
    assert c.sounds == (legacy_args.NativeSound("ich9", "output"), legacy_args.NativeSound("ac97"))
    # a card libvirt has no model for, or a codec without its controller: left for QEMU
    assert conv("-soundhw gus").leftover == ("-soundhw", "gus")
    assert conv("-device hda-duplex").leftover == ("-device", "hda-duplex")


def test_netdev_device_pair_is_one_nic():
    c = conv("-netdev user,id=n0 -device e1000,netdev=n0,mac=52:54:00:01:02:03")
    assert c.nics == (legacy_args.NativeNic("e1000", "52:54:00:01:02:03"),) and c.net_kind == "user"
    assert c.leftover == ()
    # a -device that is not converted keeps its -netdev with it
    c = conv("-netdev user,id=n0 -device e1000,netdev=n0,romfile=x")
    assert set(c.leftover) == {"-netdev", "user,id=n0", "-device", "e1000,netdev=n0,romfile=x"}


@pytest.mark.parametrize("text", [
    # host-reaching forms stay words: the trust policy and QEMU judge them, never an element
    "-serial file:/tmp/x", "-serial tcp:127.0.0.1:4444,server,nowait", "-serial /dev/ttyS0",
    "-parallel /dev/parport0", "-net tap,script=/bin/sh", "-net tap,ifname=tap3",
    "-net user,hostfwd=tcp::2222-:22", "-net bridge,br=br0,helper=/x", "-netdev tap,id=t,fd=3",
    "-usbdevice host:1234:5678", "-usbdevice disk:/x.img", "-usbdevice serial:stdio",
    "-device usb-host,hostbus=1", "-device e1000,netdev=nope",
    # forms libvirt cannot say
    "-smp 2,cores=2", "-m 64,maxmem=1G", "-cpu qemu64,vendor=x", "-vga xyz", "-rtc base=yesterday",
    "-boot once=d", "-balloon virtio,addr=0x5", "-watchdog diag288", "-watchdog-action debug",
    "-device usb-tablet,bus=usb-bus.0", "-smbios type=1", "-no-reboot",
])
def test_unconverted_forms_stay_verbatim(text):
    c = conv(text)
    assert c.leftover == tuple(shlex.split(text)) and c.converted == ()


def test_leftover_keeps_order_around_conversions():
    c = conv("-smbios type=1 -usb -no-reboot -m 32 -snapshot -usbdevice tablet -S")
    assert c.leftover == ("-smbios", "type=1", "-no-reboot", "-snapshot", "-S")
    assert c.memory_mib == 32 and c.usb and c.inputs == ("tablet",)


def test_first_console_like_serial_is_the_console_port():
    c = conv("-serial pty -serial null -serial none")
    assert c.extra_serials == ("null",) and c.leftover == ()
    assert any("-serial none" in w for w in c.warnings)


# --- merged into the domain ---------------------------------------------------------------

def test_usb_tablet_gives_one_controller_and_a_usb_input(tmp_path):
    b, root = build(make_vm(tmp_path, argsadd="-usb -usbdevice tablet"), console="VNC")
    assert devices(root, "controller") == [{"type": "usb", "index": "0", "model": "piix3-uhci"}]
    assert devices(root, "input") == [{"type": "tablet", "bus": "usb"}]
    assert qemu_args(root) == []


def test_conflicts_take_argsadd_and_warn(tmp_path):
    vm = make_vm(tmp_path, memory_mib=16, smp=1, cpu="qemu32", argsadd="-m 48 -smp 2 -cpu qemu64 -k fr")
    b, root = build(vm, console="VNC")
    assert root.findtext("memory") == "48" and root.findtext("vcpu") == "2"
    assert root.findtext("cpu/model") == "qemu64"
    assert root.find("devices/graphics").get("keymap") == "fr"
    text = "\n".join(b.warnings)
    for name, ours, conf in (("MEMSIZE", "48", "16"), ("SMP", "2", "1"), ("CPU", "qemu64", "qemu32"),
                             ("KBD_LAYOUT", "fr", "de")):
        assert f"ARGSADD sets {name} to {ours}, the conf to {conf}" in text


def test_same_value_as_conf_is_no_conflict(tmp_path):
    b, root = build(make_vm(tmp_path, memory_mib=16, argsadd="-m 16"))
    assert root.findtext("memory") == "16" and not any("MEMSIZE" in w for w in b.warnings)


def test_net_nic_merges_with_conf_nic(tmp_path):
    vm = make_vm(tmp_path, argsadd="-net nic,model=e1000 -net user")
    b, root = build(vm, options=XmlOptions(network="default"))
    ifaces = root.findall("devices/interface")
    # one card: the conf's MAC with ARGSADD's model; the command line's --network wins over -net user
    assert len(ifaces) == 1
    assert ifaces[0].find("mac").get("address") == "00:50:56:13:11:40"
    assert ifaces[0].find("model").get("type") == "e1000" and ifaces[0].get("type") == "network"
    assert any("NIC model to e1000" in w for w in b.warnings)
    _, root = build(vm)
    assert root.find("devices/interface").get("type") == "user"


def test_second_mac_is_a_second_nic(tmp_path):
    vm = make_vm(tmp_path, argsadd="-net nic,macaddr=52:54:00:00:00:09 -net bridge,br=br9")
    _, root = build(vm, allow_argsadd=["-net"])     # a host bridge reaches the host: allowed here
    ifaces = root.findall("devices/interface")
    assert [i.find("mac").get("address") for i in ifaces] == ["00:50:56:13:11:40", "52:54:00:00:00:09"]
    assert [i.find("model").get("type") for i in ifaces] == ["rtl8139", "rtl8139"]
    assert all(i.get("type") == "bridge" and i.find("source").get("bridge") == "br9" for i in ifaces)


def test_net_none_drops_the_nic(tmp_path):
    b, root = build(make_vm(tmp_path, argsadd="-net none"))
    assert root.find("devices/interface") is None and any("-net none" in w for w in b.warnings)


def test_clock_features_and_devices(tmp_path):
    vm = make_vm(tmp_path, localtime=False, argsadd=(
        "-no-acpi -no-hpet -rtc base=2006-06-17T16:01:21,clock=vm,driftfix=slew "
        "-watchdog i6300esb -watchdog-action poweroff -balloon virtio -soundhw ac97 "
        "-device intel-hda -device hda-duplex -serial null -parallel null"))
    _, root = build(vm)
    assert root.find("features/acpi") is None and root.find("features/apic") is not None
    assert root.find("clock").attrib == {"offset": "absolute", "start": "1150560081"}
    assert [dict(t.attrib) for t in root.iterfind("clock/timer")] == [
        {"name": "rtc", "track": "guest", "tickpolicy": "catchup"}, {"name": "hpet", "present": "no"}]
    assert devices(root, "watchdog") == [{"model": "i6300esb", "action": "poweroff"}]
    assert devices(root, "memballoon") == [{"model": "virtio"}]
    assert [(s.get("model"), s.find("codec").get("type") if s.find("codec") is not None else None)
            for s in root.iterfind("devices/sound")] == [("ac97", None), ("ich6", "duplex")]
    assert [(s.get("type"), s.find("target").get("port")) for s in root.iterfind("devices/serial")] == [
        ("pty", "0"), ("null", "1")]
    assert [p.get("type") for p in root.iterfind("devices/parallel")] == ["null"]
    assert qemu_args(root) == []


def test_localtime_and_rtc_from_timeopt(tmp_path):
    _, root = build(make_vm(tmp_path, localtime=False, timeopt="-rtc base=localtime"))
    assert root.find("clock").get("offset") == "localtime" and qemu_args(root) == []


def test_boot_letters_reorder_devices(tmp_path):
    cd = touch(tmp_path / "cd.iso")
    vm = make_vm(tmp_path, cd_image=cd, argsadd="-boot order=c,menu=on")
    _, root = build(vm, bootmode="CD")
    order = {d[0]: d[4] for d in disks(root)}
    assert order == {"hda": 1, "hdc": 2}              # ARGSADD -boot c came last: the disk first
    assert root.find("os/bootmenu").get("enable") == "yes"


def test_boot_letter_without_device_warns(tmp_path):
    b, _ = build(make_vm(tmp_path, argsadd="-boot d"))
    assert any("no cdrom device to boot for 'd'" in w for w in b.warnings)


def test_nographic_and_vga(tmp_path):
    _, root = build(make_vm(tmp_path, argsadd="-nographic"), console="VNC")
    assert root.find("devices/graphics") is None and root.find("devices/video/model").get("type") == "none"
    _, root = build(make_vm(tmp_path, vga="cirrus", argsadd="-std-vga"), console="VNC")
    assert root.find("devices/video/model").get("type") == "vga"


def test_accelerator_from_argsadd(tmp_path):
    b = build_domain(make_vm(tmp_path, accelerator="KVM", argsadd="-no-kvm"), make_request(), host_facts(FIXED_CAPS.__class__(kvm=True, emulator="/usr/bin/qemu-system-x86_64")))
    assert assert_valid(b.xml).get("type") == "qemu"


def test_request_argsadd_converted_too_and_lint_sees_only_the_rest(tmp_path):
    from ctys_libvirt.qemu.lint import lint_passthrough

    b = build_domain(make_vm(tmp_path), make_request(argsadd=["-soundhw ac97 -sdl"], allow_argsadd=["-sdl"]), host_facts(FIXED_CAPS))
    root = assert_valid(b.xml)
    assert devices(root, "sound") == [{"model": "ac97"}] and qemu_args(root) == ["-sdl"]
    msgs = lint_passthrough(b.plan, emulator="/usr/bin/qemu-system-x86_64")
    assert len(msgs) == 1 and msgs[0].startswith("ARGSADD -sdl")


def test_direct_backend_keeps_argsadd_verbatim(tmp_path):
    vm = make_vm(tmp_path, argsadd="-usb -usbdevice tablet -m 48")
    plan = resolve_plan(vm, make_request(console="NONE"), host_facts())
    assert plan.argsadd == ("-usb", "-usbdevice", "tablet", "-m", "48") and plan.native is None
    argv = build_argv(plan, synthetic_probe("7.2.0"))
    i = argv.index("-usb")
    assert argv[i:i + 5] == ["-usb", "-usbdevice", "tablet", "-m", "48"]


# --- reports ------------------------------------------------------------------------------

def test_check_and_xml_report_conversions(shared_dir, tmp_path):
    tree = example_tree(shared_dir, tmp_path)
    r = subprocess.run([str(EXE), "check", str(tree["kvmkern"])], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    section = r.stdout.split("[argsadd]\n", 1)[1].split("[warnings]")[0]
    assert section.splitlines() == [
        "  -usb -> the one USB controller libvirt gives the machine (no second one)",
        "  -usbdevice tablet -> <input type='tablet' bus='usb'/>"]
    r = subprocess.run([str(EXE), "check", str(tree["kvmkern"]), "--format", "json"],
                       capture_output=True, text=True)
    import json

    data = json.loads(r.stdout)["argsadd"]
    assert [c["words"] for c in data["converted"]] == [["-usb"], ["-usbdevice", "tablet"]]
    assert data["passthrough"] == []
    r = subprocess.run([str(EXE), "xml", str(tree["kvmkern"]), "--argsadd", "-smbios type=1"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    notes = [line for line in r.stderr.splitlines() if "ARGSADD converted" in line]
    assert notes == ["ctys-libvirt: note: ARGSADD converted: -usb -> the one USB controller libvirt "
                     "gives the machine (no second one)",
                     "ctys-libvirt: note: ARGSADD converted: -usbdevice tablet -> <input type='tablet' bus='usb'/>"]
