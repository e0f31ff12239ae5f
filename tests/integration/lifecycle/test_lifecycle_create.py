"""`ctys-libvirt create` from ctys confs, booting the tiny guests for real (TCG, 16 MiB):
HDD, CD, FDD, KERNEL, PXE boot order, INSTMODE, ARGSADD, concurrency."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import libvirt
import pytest
from lxml import etree

from support.cli import run_cli, popen
from support.confs import write_conf
from support.domains import unique_label
from support.guests import wait_marker

pytestmark = [pytest.mark.libvirt, pytest.mark.qemu]


def create(conf: Path, log: Path, *extra: str, ok: bool = True):
    p = run_cli("create", str(conf), "--console", "NONE", "--serial-log", str(log),
                "--format", "json", *extra)
    if ok:
        assert p.returncode == 0, p.stderr
        assert "Traceback" not in p.stderr
        return json.loads(p.stdout)
    return p


def live(conn, name) -> etree._Element:
    return etree.fromstring(conn.lookupByName(name).XMLDesc(0).encode())


def boot_orders(root) -> dict:
    """device (disk target dev / 'network') -> boot order, from per-device <boot order>."""
    out = {}
    for d in root.iterfind("devices/disk"):
        b = d.find("boot")
        if b is not None:
            out[d.find("target").get("dev")] = int(b.get("order"))
    for i in root.iterfind("devices/interface"):
        b = i.find("boot")
        if b is not None:
            out["network"] = int(b.get("order"))
    return out


def test_hdd_boot_runs_persistent_domain(vmroot, media, janitor, libvirt_conn):
    label = janitor.add(unique_label("hdd"))
    conf = write_conf(vmroot, label, image=media["hello"], uuid="3f2a6c1e9b7d4e0a8c5b1d2e3f4a5b6c")
    log = vmroot / "hdd.log"
    res = create(conf, log)
    assert res["name"] == label and res["state"] == "running" and res["backend"] == "libvirt"
    assert res["uuid"] == "3f2a6c1e-9b7d-4e0a-8c5b-1d2e3f4a5b6c"
    assert res["defined"] is True and res["pid"] > 0
    wait_marker(log, "CTYS-GUEST-OK")
    dom = libvirt_conn.lookupByName(label)
    assert dom.isPersistent() and dom.isActive()
    root = live(libvirt_conn, label)
    assert root.get("type") == "qemu"
    src = root.find("devices/disk/source").get("file")
    assert src == str(conf.parent / "hda.img")
    # second create of the running VM: one-line "already running", exit 4
    p = create(conf, vmroot / "again.log", ok=False)
    assert p.returncode == 4
    assert p.stderr.strip() == (f"ctys-libvirt: error: {label} is already running "
                                f"(UUID 3f2a6c1e-9b7d-4e0a-8c5b-1d2e3f4a5b6c) "
                                f"(use --reuse to attach its console, or cancel it first)")
    # --reuse succeeds without a second domain
    p = run_cli("create", str(conf), "--console", "NONE", "--reuse", "--format", "json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["pid"] == res["pid"]


def test_cd_boot_from_iso_keeps_hdd(vmroot, media, janitor, libvirt_conn):
    label = janitor.add(unique_label("cd"))
    conf = write_conf(vmroot, label, image=media["acpi"])   # HDD holds the *other* guest
    log = vmroot / "cd.log"
    create(conf, log, "--bootmode", f"CD%{media['hello-iso']}")
    text = wait_marker(log, "CTYS-GUEST-OK")
    assert "ACPI" not in text          # booted the ISO, not the disk
    root = live(libvirt_conn, label)
    devs = {d.find("target").get("dev"): d.get("device") for d in root.iterfind("devices/disk")}
    assert devs.get("hdc") == "cdrom" and devs.get("hda") == "disk"
    orders = boot_orders(root)
    assert orders["hdc"] == 1 and orders.get("hda") == 2


def test_fdd_boot_from_floppy(vmroot, media, janitor, libvirt_conn):
    label = janitor.add(unique_label("fdd"))
    conf = write_conf(vmroot, label, image=media["acpi"])
    log = vmroot / "fdd.log"
    create(conf, log, "--bootmode", f"FDD%{media['hello-floppy']}")
    text = wait_marker(log, "CTYS-GUEST-OK")
    assert "ACPI" not in text
    root = live(libvirt_conn, label)
    fd = [d for d in root.iterfind("devices/disk") if d.get("device") == "floppy"]
    assert fd and fd[0].find("target").get("dev") == "fda"
    assert boot_orders(root)["fda"] == 1


def test_kernel_boot_with_initrd_and_cmdline(vmroot, media, janitor, libvirt_conn):
    label = janitor.add(unique_label("kern"))
    conf = write_conf(vmroot, label)
    log = vmroot / "kern.log"
    cmdline = "console=ttyS0 ctys=hello world"
    res = create(conf, log, "--bootmode", "KERNEL",
                 "--kernel", f"{media['mbkernel']}%{media['mbkernel-mod']}%{cmdline}")
    text = wait_marker(log, "CTYS-KERNEL-OK")
    line = next(l for l in text.splitlines() if l.startswith("CTYS-KERNEL-OK"))
    assert line.rstrip("\r").endswith(f" {cmdline} mods=1 mod0=hello module")
    root = live(libvirt_conn, label)
    assert root.findtext("os/kernel") == str(media["mbkernel"])
    assert root.findtext("os/initrd") == str(media["mbkernel-mod"])
    assert root.findtext("os/cmdline") == cmdline
    argv = open(f"/proc/{res['pid']}/cmdline", "rb").read().split(b"\0")
    assert argv[argv.index(b"-append") + 1].decode() == cmdline


def test_pxe_boot_order_in_live_xml(vmroot, media, janitor, libvirt_conn):
    label = janitor.add(unique_label("pxe"))
    conf = write_conf(vmroot, label, image=media["hello"],
                      extra="NIC=rtl8139\n", mac="52:54:00:12:34:56")
    create(conf, vmroot / "pxe.log", "--bootmode", "PXE")
    root = live(libvirt_conn, label)
    orders = boot_orders(root)
    assert orders["network"] == 1
    assert orders.get("hda") == 2
    assert root.find("devices/interface/mac").get("address") == "52:54:00:12:34:56"
    assert libvirt_conn.lookupByName(label).isActive()


def test_argsadd_reaches_qemu_command_line(vmroot, media, janitor):
    label = janitor.add(unique_label("args"))
    conf = write_conf(vmroot, label, image=media["hello"])
    res = create(conf, vmroot / "a.log", "--argsadd", "-smbios type=1,serial=ctys-argsadd-ok")
    argv = open(f"/proc/{res['pid']}/cmdline", "rb").read().split(b"\0")
    i = argv.index(b"-smbios")
    assert argv[i + 1] == b"type=1,serial=ctys-argsadd-ok"


def install_conf(vmroot, label, media):
    return write_conf(vmroot, label, image=None, extra=(
        "QEMU_IMG=raw\nHDDBOOTIMAGE_INST_SIZE=1M\n"
        f"HDDBOOTIMAGE=\"${{CTYSWRAPPERPATH}}/target.img\"\n"
        f"DEFAULTINSTSOURCE={media['acpi-iso']}\n"
        "DEFAULTINSTMODE=CD\nDEFAULTBOOTMODE=HDD\n"
        "DEFAULTINSTTARGET=\"${CTYSWRAPPERPATH}/target.img\"\n"))


def test_instmode_install_run(vmroot, media, janitor, libvirt_conn):
    label = janitor.add(unique_label("inst"))
    conf = install_conf(vmroot, label, media)
    target = conf.parent / "target.img"
    log = vmroot / "inst.log"
    proc = popen("ctys-libvirt", *["create", str(conf), "--console", "NONE", "--serial-log", str(log),
                                   "--instmode", "CD%%HDD%%INIT", "--wait-install",
                                   "--timeout", "60", "--format", "json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_marker(log, "CTYS-GUEST-OK ACPI")          # the install medium booted
        assert target.stat().st_size == 1024 * 1024     # created by STAGE INIT
        dom = libvirt_conn.lookupByName(label)
        assert dom.isPersistent()                        # final definition alongside
        running = etree.fromstring(dom.XMLDesc(0).encode())
        assert running.findtext("on_reboot") == "destroy"
        dom.shutdown()                                   # the "installer" powers off
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "install run finished" in err
    res = json.loads(out)
    assert res["install"] is True and res["created_target"] == str(target)
    dom = libvirt_conn.lookupByName(label)
    assert not dom.isActive() and dom.isPersistent()
    final = etree.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE).encode())
    assert final.findtext("on_reboot") != "destroy"
    assert final.find("devices/disk/source").get("file") == str(target)
    assert not any(d.get("device") == "cdrom" and boot_orders(final).get(d.find("target").get("dev")) == 1
                   for d in final.iterfind("devices/disk"))
    # second run: the existing target is never overwritten
    target.write_bytes(b"installed-data" + b"\0" * (1024 * 1024 - 14))
    before = target.read_bytes()
    res2 = create(conf, vmroot / "inst2.log", "--instmode", "CD%%HDD%%INIT")
    assert res2["created_target"] is None
    assert target.read_bytes() == before
    libvirt_conn.lookupByName(label).destroy()


def test_concurrent_create_from_ten_processes(vmroot, media, janitor, libvirt_conn):
    label = janitor.add(unique_label("race"))
    conf = write_conf(vmroot, label, image=media["hello"])
    procs = [popen("ctys-libvirt", *["create", str(conf), "--console", "NONE"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(10)]
    results = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in procs]
    codes = sorted(r[0] for r in results)
    assert codes == [0] + [4] * 9, results
    for rc, out, err in results:
        assert "Traceback" not in err
        if rc == 4:
            assert err.strip().startswith(f"ctys-libvirt: error: {label} is already running (UUID ")
            assert len(err.strip().splitlines()) == 1
    running = [d.name() for d in libvirt_conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)
               if d.name() == label]
    assert running == [label]
