"""Legacy ARGSADD converted to libvirt elements, proven by real starts (TCG, the tiny hello
guest): the live XML holds the elements, QEMU's own view (HMP info usb/pci, its argv) holds
the devices, nothing converted is left on qemu:commandline, and the guest boots.  Several
conversions share one domain start to keep the suite fast."""
from __future__ import annotations

import json
import re
import subprocess

import pytest
from lxml import etree

from support.cli import run_cli
from support.confs import write_conf
from support.domains import unique_label
from support.guests import wait_marker

pytestmark = [pytest.mark.libvirt, pytest.mark.qemu]
Q = "{http://libvirt.org/schemas/domain/qemu/1.0}"


def start(vmroot, media, label, argsadd, *extra, nic="rtl8139"):
    conf = write_conf(vmroot, label, image=media["hello"],
                      extra=f"NIC={nic}\nARGSADD=\"{argsadd}\"\n")
    log = vmroot / f"{label}.log"
    r = run_cli("create", str(conf), "--serial-log", str(log), "--format", "json", *extra)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    res = json.loads(r.stdout)
    wait_marker(log, "CTYS-GUEST-OK", timeout=60)          # the machine really runs the guest
    # warnings (the ARGSADD-vs-conf notes among them) go to stderr, once each
    return res, "\n".join(res["messages"]) + "\n" + r.stderr


def live(conn, name):
    return etree.fromstring(conn.lookupByName(name).XMLDesc(0).encode())


def hmp(name, cmd):
    r = subprocess.run(["virsh", "-c", "qemu:///system", "qemu-monitor-command", name, "--hmp", cmd],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def argv(pid):
    return open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace").split("\0")


def pci_ids(name):
    """PCI vendor:device ids QEMU reports, in slot order."""
    return re.findall(r"PCI device ([0-9a-f]{4}:[0-9a-f]{4})", hmp(name, "info pci"))


def test_usb_tablet_sound_watchdog_clock_memory(vmroot, media, janitor, libvirt_conn):
    # the classic ctys line that failed to start (a second USB controller on libvirt's slot),
    # plus most scalar and device conversions
    name = janitor.add(unique_label("nat1"))
    res, err = start(vmroot, media, name,
                     "-usb -usbdevice tablet -device usb-kbd -soundhw ac97,es1370 -device intel-hda "
                     "-device hda-duplex -watchdog i6300esb -watchdog-action poweroff -balloon virtio "
                     "-m 24 -smp 2 -cpu qemu64,+ssse3 -no-hpet -no-acpi "
                     "-rtc base=2006-06-17T16:01:21,clock=vm,driftfix=slew -k fr -std-vga "
                     "-serial pty -serial null -parallel null -name legacy -boot order=c,menu=on "
                     "-smbios type=1,serial=ctys-left-over",
                     "--console", "VNC")
    assert "ARGSADD sets MEMSIZE to 24, the conf to 16" in err
    root = live(libvirt_conn, name)
    dev = root.find("devices")
    # exactly one USB controller, the tablet and keyboard on it
    usb = dev.findall("controller[@type='usb']")
    assert len(usb) == 1 and usb[0].get("model") == "piix3-uhci"
    assert sorted((i.get("type"), i.get("bus")) for i in dev.iterfind("input") if i.get("bus") == "usb") == [
        ("keyboard", "usb"), ("tablet", "usb")]
    info_usb = hmp(name, "info usb")
    assert "QEMU USB Tablet" in info_usb and "QEMU USB Keyboard" in info_usb
    ids = pci_ids(name)
    assert ids.count("8086:7020") == 1                      # PIIX3 UHCI: one, libvirt's
    for pci in ("8086:2415", "1274:5000", "8086:2668", "8086:25ab", "1af4:1002"):
        assert pci in ids                                   # AC97, ES1370, intel-hda, i6300esb, balloon
    assert [(s.get("model"), s.find("codec").get("type") if s.find("codec") is not None else None)
            for s in dev.iterfind("sound")] == [("ac97", None), ("es1370", None), ("ich6", "duplex")]
    assert dev.find("watchdog").get("model") == "i6300esb" and dev.find("watchdog").get("action") == "poweroff"
    assert dev.find("memballoon").get("model") == "virtio"
    assert root.find("memory").text == str(24 * 1024) and root.findtext("vcpu") == "2"
    assert root.findtext("cpu/model") == "qemu64"
    assert root.find("cpu/feature[@name='ssse3']").get("policy") == "require"
    assert root.find("features/acpi") is None
    assert root.find("clock").get("offset") == "absolute" and root.find("clock").get("start") == "1150560081"
    assert root.find("clock/timer[@name='hpet']").get("present") == "no"
    rtc = root.find("clock/timer[@name='rtc']")
    assert rtc.get("track") == "guest" and rtc.get("tickpolicy") == "catchup"
    assert dev.find("graphics").get("keymap") == "fr" and dev.find("video/model").get("type") == "vga"
    assert [(s.get("type"), s.find("target").get("port")) for s in dev.iterfind("serial")] == [
        ("pty", "0"), ("null", "1")]
    assert [p.get("type") for p in dev.iterfind("parallel")] == ["null"]
    assert root.find("os/bootmenu").get("enable") == "yes"
    assert root.findtext("name") == name                    # -name: the LABEL stays the name
    # only the word libvirt has no element for reached qemu:commandline
    assert [a.get("value") for a in root.iter(Q + "arg")] == ["-smbios", "type=1,serial=ctys-left-over"]
    a = argv(res["pid"])
    assert "-soundhw" not in a and "-usbdevice" not in a and "-usb" not in a and "-watchdog" not in a
    assert a[a.index("-smp") + 1].startswith("2") and a[a.index("-k") + 1] == "fr"
    assert "base=2006-06-17T16:01:21,clock=vm,driftfix=slew" in a
    assert a.count("-smbios") == 1


def test_netdev_pair_sound_all_xhci_nographic(vmroot, media, janitor, libvirt_conn):
    name = janitor.add(unique_label("nat2"))
    res, err = start(vmroot, media, name,
                     "-net nic,model=e1000 -netdev user,id=n1 "
                     "-device rtl8139,netdev=n1,mac=52:54:00:c7:00:02 -net user "
                     "-device nec-usb-xhci -usbdevice mouse -soundhw all -nographic -no-kvm "
                     "-rtc base=utc -device virtio-balloon",
                     "--console", "VNC")
    root = live(libvirt_conn, name)
    dev = root.find("devices")
    ifaces = dev.findall("interface")
    # the conf's NIC took ARGSADD's model (one card, not two); the -netdev/-device pair is the second
    assert [(i.get("type"), i.find("model").get("type")) for i in ifaces] == [("user", "e1000"), ("user", "rtl8139")]
    assert ifaces[1].find("mac").get("address") == "52:54:00:c7:00:02"
    assert "NIC model to e1000" in err
    usb = dev.findall("controller[@type='usb']")
    assert len(usb) == 1 and usb[0].get("model") == "nec-xhci"
    assert "QEMU USB Mouse" in hmp(name, "info usb")
    ids = pci_ids(name)
    assert "8086:7020" not in ids and "1033:0194" in ids     # the xHCI replaced libvirt's UHCI
    assert ids.count("8086:100e") == 1 and ids.count("10ec:8139") == 1   # e1000, rtl8139
    assert [s.get("model") for s in dev.iterfind("sound")] == ["sb16", "es1370", "ac97", "ich6"]
    assert "pcspk" in err
    assert dev.find("graphics") is None and dev.find("video/model").get("type") == "none"
    assert root.get("type") == "qemu" and root.find("clock").get("offset") == "utc"
    assert dev.find("memballoon").get("model") == "virtio"
    assert root.find(Q + "commandline") is None
    a = argv(res["pid"])
    assert "-soundhw" not in a and "-net" not in a and "-nographic" not in a


def drivers(pid):
    """QEMU -device driver names of the running domain (libvirt passes JSON)."""
    return re.findall(r'"driver":"([^"]+)"', "\n".join(argv(pid)))


def test_localtime_vga_kvm_ich9_isa_cards_ehci(vmroot, media, janitor, libvirt_conn):
    name = janitor.add(unique_label("nat3"))
    res, err = start(vmroot, media, name,
                     "-localtime -vga cirrus -enable-kvm -net tap -device ich9-intel-hda "
                     "-device hda-micro -device sb16 -device ib700 -watchdog-action pause "
                     "-usbdevice keyboard -device usb-tablet -device usb-ehci -parallel pty "
                     "-serial vc:1000x300 -boot menu=off -smp cpus=1 -m 32M -rtc-td-hack -no-kqemu "
                     "-daemonize -uuid 00000000-1111-2222-3333-444444444444",
                     "--console", "VNC",
                     # tap and -daemonize reach the host: allowed for this root-owned conf
                     "--allow-argsadd", "-net", "--allow-argsadd", "-daemonize")
    root = live(libvirt_conn, name)
    dev = root.find("devices")
    assert root.find("clock").get("offset") == "localtime"
    assert dev.find("video/model").get("type") == "cirrus"
    # -enable-kvm asks for KVM; without a usable /dev/kvm the existing rule falls back to TCG
    kvm_usable = any(d.get("type") == "kvm" for d in etree.fromstring(
        libvirt_conn.getCapabilities().encode()).iterfind("guest/arch[@name='x86_64']/domain"))
    assert root.get("type") == ("kvm" if kvm_usable else "qemu")
    assert "ARGSADD sets ACCELERATOR to KVM, the conf to QEMU" in err
    assert [s.get("model") for s in dev.iterfind("sound")] == ["ich9", "sb16"]
    assert dev.find("sound/codec").get("type") == "micro"
    assert dev.find("watchdog").attrib == {"model": "ib700", "action": "pause"}
    assert len(dev.findall("controller[@type='usb']")) == 1
    assert dev.find("controller[@type='usb']").get("model") == "ehci"
    usb = hmp(name, "info usb")
    assert "QEMU USB Keyboard" in usb and "QEMU USB Tablet" in usb
    assert [p.get("type") for p in dev.iterfind("parallel")] == ["pty"]
    assert [s.get("type") for s in dev.iterfind("serial")] == ["pty"]      # -serial vc:WxH: the console port
    assert root.find("clock/timer[@name='rtc']").get("tickpolicy") == "catchup"
    assert root.findtext("uuid") != "00000000-1111-2222-3333-444444444444" and "-uuid" in err
    a = argv(res["pid"])
    assert "-no-kqemu" not in a and "-daemonize" not in a and a.count("-uuid") == 1
    assert root.find("os/bootmenu").get("enable") == "no"
    assert root.findtext("vcpu") == "1" and root.find("memory").text == str(32 * 1024)
    assert len(dev.findall("interface")) == 1                               # -net tap: the conf's NIC, wired as usual
    d = drivers(res["pid"])
    for drv in ("ich9-intel-hda", "hda-micro", "sb16", "ib700", "usb-ehci", "usb-kbd", "usb-tablet", "isa-parallel"):
        assert drv in d, (drv, d)
    assert d.count("usb-ehci") + d.count("piix3-usb-uhci") == 1
    assert root.find(Q + "commandline") is None


def test_net_none_serial_none_accel_pci_cards(vmroot, media, janitor, libvirt_conn):
    name = janitor.add(unique_label("nat4"))
    res, err = start(vmroot, media, name,
                     "-net none -serial none -parallel none -accel tcg -device ES1370 -device AC97 "
                     "-device i6300esb -device usb-mouse -device qemu-xhci -balloon none -boot c "
                     "-soundhw hda -vga std -m size=20 -usb",
                     "--console", "NONE")
    root = live(libvirt_conn, name)
    dev = root.find("devices")
    assert dev.find("interface") is None and "-net none" in err
    assert [s.get("type") for s in dev.iterfind("serial")] == ["pty"] and "-serial none" in err
    assert dev.find("parallel") is None
    assert root.get("type") == "qemu"
    assert [s.get("model") for s in dev.iterfind("sound")] == ["es1370", "ac97", "ich6"]
    assert dev.find("watchdog").attrib == {"model": "i6300esb", "action": "reset"}
    assert dev.find("controller[@type='usb']").get("model") == "qemu-xhci"
    assert len(dev.findall("controller[@type='usb']")) == 1
    assert "QEMU USB Mouse" in hmp(name, "info usb")
    assert dev.find("memballoon").get("model") == "none"
    assert root.find("memory").text == str(20 * 1024)
    ids = pci_ids(name)
    for pci in ("1274:5000", "8086:2415", "8086:2668", "8086:25ab", "1b36:000d"):   # ..., qemu-xhci
        assert pci in ids, (pci, ids)
    assert "8086:7020" not in ids and not any(i.startswith("10ec:") for i in ids)
    assert root.find(Q + "commandline") is None
