"""Real Debian guests, booted through the CLI under TCG (ACCELERATOR=QEMU; nested KVM hangs
real kernels on these hosts): the Debian installer's own kernel + initrd by KERNEL with APPEND
(libvirt and direct), a grub CD of them by BOOTMODE CD and by INSTMODE CD%iso%HDD%target%INIT,
each read on serial up to a line the installer's own init prints; a minbase systemd guest
that powers itself off on ACPI POWEROFF through both backends.  The media come from Debian
packages only (tests/support/realguests/debian.py, cached per machine).  PXE stays checked at the
boot-order level elsewhere: a real PXE boot needs DHCP/TFTP on a non-loopback bridge."""
from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import libvirt
import pytest
from lxml import etree

from support.cli import run_cli
from support.confs import write_conf
from support.domains import unique_label
from support.guests import wait_marker
from support.realguests import debian

pytestmark = [pytest.mark.realguest, pytest.mark.libvirt, pytest.mark.qemu, pytest.mark.slow]

BOOT_TIMEOUT = 240.0      # TCG on 2 shared cores: the installer's init ~20 s idle, systemd ~25 s


@pytest.fixture
def direct_env(tmp_path, vmroot):
    """The direct backend's runtime dirs private to the test, under directories QEMU's
    unprivileged user can traverse (the direct backend runs it as libvirt-qemu as root)."""
    rt = vmroot / "run"
    rt.mkdir()
    return {"CTYS_RUNTIME_DIR": str(rt), "XDG_CACHE_HOME": str(tmp_path / "cache")}


def create(conf: Path, log: Path, *extra: str, env=None) -> dict:
    p = run_cli("create", str(conf), "--console", "NONE", "--serial-log", str(log),
                "--format", "json", "--timeout", "120", *extra, env=env)
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    return json.loads(p.stdout)


def cancel(label: str, *extra: str, env=None):
    return run_cli("cancel", label, *extra, env=env, timeout=300)


def assert_installer_booted(log: Path) -> str:
    """The kernel's banner, the kernel starting the initrd's /init, then a line of the
    installer's own init scripts (rcS starting its syslog) - in that order."""
    text = wait_marker(log, debian.INSTALLER_SYSLOG, timeout=BOOT_TIMEOUT)
    banner = text.find(debian.KERNEL_BANNER)
    init = text.find(debian.INSTALLER_INIT)
    assert 0 <= banner < init < text.find(debian.INSTALLER_SYSLOG), text[-2000:]
    assert "Kernel panic" not in text
    return text


def installer_conf(vmroot: Path, label: str, extra: str = "") -> Path:
    return write_conf(vmroot, label, memsize=512, extra=extra)   # the installer needs >256 MiB


# --- the installer's kernel and initrd ----------------------------------------------------

@pytest.mark.parametrize("backend", ["libvirt", "direct"])
def test_installer_kernel_by_KERNEL_with_APPEND(vmroot, janitor, libvirt_conn, direct_env, backend):
    boot = debian.installer()
    label = janitor.add(unique_label(f"di-{backend[0]}"))
    conf = installer_conf(vmroot, label, extra=(
        "DEFAULTBOOTMODE=KERNEL\n"
        f'KERNELIMAGE="{boot.kernel}"\n'
        f'INITRDIMAGE="{boot.initrd}"\n'
        'APPEND="console=ttyS0 priority=critical ctys=kernel-append-seen"\n'))
    log = vmroot / "serial.log"
    env = direct_env if backend == "direct" else None
    res = create(conf, log, "--backend", backend, env=env)
    assert res["backend"] == backend and res["state"] == "running"
    try:
        text = assert_installer_booted(log)
        # the kernel got the conf's APPEND verbatim
        cmdline = next(l for l in text.splitlines() if "Command line:" in l)
        assert "console=ttyS0 priority=critical ctys=kernel-append-seen" in cmdline
        if backend == "libvirt":
            root = etree.fromstring(libvirt_conn.lookupByName(label).XMLDesc(0).encode())
            assert root.get("type") == "qemu"
            assert root.findtext("os/kernel") == str(boot.kernel)
            assert root.findtext("os/initrd") == str(boot.initrd)
        else:
            argv = json.loads((Path(direct_env["CTYS_RUNTIME_DIR"]) / label / "argv.json").read_text())
            assert argv[argv.index("-kernel") + 1] == str(boot.kernel)
            assert argv[argv.index("-initrd") + 1] == str(boot.initrd)
            assert "-enable-kvm" not in argv
    finally:
        p = cancel(label, "--mode", "FORCE", "--backend", backend, env=env)
        assert p.returncode == 0, p.stderr


def test_installer_cd_by_BOOTMODE_CD(vmroot, janitor, libvirt_conn):
    iso = debian.installer_cd()
    label = janitor.add(unique_label("di-cd"))
    conf = installer_conf(vmroot, label)
    log = vmroot / "serial.log"
    create(conf, log, "--bootmode", f"CD%{iso}", "--backend", "libvirt")
    try:
        text = assert_installer_booted(log)
        assert "console=ttyS0" in next(l for l in text.splitlines() if "Command line:" in l)
        root = etree.fromstring(libvirt_conn.lookupByName(label).XMLDesc(0).encode())
        cds = [d for d in root.iterfind("devices/disk") if d.get("device") == "cdrom"]
        assert [d.find("source").get("file") for d in cds] == [str(iso)]
        assert cds[0].find("boot").get("order") == "1"
        assert root.find("os/kernel") is None           # grub on the CD loaded the kernel
    finally:
        cancel(label, "--mode", "FORCE")


def test_installer_cd_by_INSTMODE_creates_target(vmroot, janitor, libvirt_conn):
    iso = debian.installer_cd()
    label = janitor.add(unique_label("di-inst"))
    conf = installer_conf(vmroot, label, extra=(
        "QEMU_IMG=raw\nHDDBOOTIMAGE_INST_SIZE=8M\n"
        'HDDBOOTIMAGE="${CTYSWRAPPERPATH}/target.img"\n'))
    target = conf.parent / "target.img"
    assert not target.exists()
    log = vmroot / "serial.log"
    res = create(conf, log, "--instmode", f"CD%{iso}%HDD%{target}%INIT", "--backend", "libvirt")
    assert res["install"] is True and res["created_target"] == str(target)
    try:
        assert_installer_booted(log)
        assert target.stat().st_size == 8 * 1024 * 1024
        dom = libvirt_conn.lookupByName(label)
        running = etree.fromstring(dom.XMLDesc(0).encode())
        assert running.findtext("on_reboot") == "destroy"    # the install run ends on reboot
        disks = {d.get("device"): d.find("source").get("file") for d in running.iterfind("devices/disk")}
        assert disks == {"cdrom": str(iso), "disk": str(target)}
        final = etree.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE).encode())
        assert final.findtext("on_reboot") != "destroy"     # the definition boots the target
        assert final.find("devices/disk/source").get("file") == str(target)
    finally:
        cancel(label, "--mode", "FORCE")


# --- a real systemd guest, ACPI poweroff ---------------------------------------------------

@pytest.fixture(scope="module")
def systemd_guest():
    """Built once per machine (mmdebstrap, ~1-3 min), then reused from the cache."""
    return debian.systemd_guest()


def systemd_conf(vmroot: Path, label: str, guest) -> Path:
    """The cached image copied next to the conf as its HDD (the guest writes to it); booted by
    its own kernel + initrd.  The conf's HDD is IDE hda: /dev/sda in the guest."""
    d = vmroot / label
    d.mkdir(mode=0o755)
    disk = d / "root.img"
    # a sparse copy: the image is mostly empty ext4
    subprocess.run(["cp", "--sparse=always", str(guest.disk), str(disk)], check=True)
    assert disk.stat().st_size == guest.disk.stat().st_size
    os.chmod(disk, 0o644)
    conf = write_conf(vmroot, label, memsize=512, extra=(
        'HDDBOOTIMAGE="${CTYSWRAPPERPATH}/root.img"\n'
        "DEFAULTBOOTMODE=KERNEL\n"
        f'KERNELIMAGE="{guest.kernel}"\n'
        f'INITRDIMAGE="{guest.initrd}"\n'
        'APPEND="root=/dev/sda console=ttyS0 rw"\n'))
    return conf


@pytest.mark.parametrize("backend", ["libvirt", "direct"])
def test_systemd_guest_powers_off_on_acpi(vmroot, janitor, libvirt_conn, direct_env, systemd_guest,
                                          backend):
    label = janitor.add(unique_label(f"sysd-{backend[0]}"))
    conf = systemd_conf(vmroot, label, systemd_guest)
    log = vmroot / "serial.log"
    env = direct_env if backend == "direct" else None
    res = create(conf, log, "--backend", backend, env=env)
    assert res["state"] == "running"
    text = wait_marker(log, debian.GETTY_ISSUE, timeout=BOOT_TIMEOUT)   # getty is up
    assert debian.SYSTEMD_BANNER in text or "Welcome to" in text
    assert "Kernel panic" not in text and "emergency mode" not in text.lower()
    # ACPI power button only; a generous escalation timeout that must not be reached
    p = cancel(label, "--mode", "POWEROFF", "--timeout", "200", "--backend", backend,
               "--format", "json", env=env)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert len(out) == 1, out
    rec = out[0]
    assert rec["action"] == "shutdown", rec           # powered itself off: no destroy / quit
    assert rec["state"] == "shutoff", rec
    if backend == "libvirt":
        assert rec["reason"] == "shutdown", rec
    text = wait_marker(log, "reboot: Power down", timeout=30)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)          # systemd colours its status lines
    assert "Reached target poweroff.target - System Power Off." in plain, plain[-1500:]
    if backend == "libvirt":
        dom = libvirt_conn.lookupByName(label)
        assert not dom.isActive()
        assert dom.state()[1] == libvirt.VIR_DOMAIN_SHUTOFF_SHUTDOWN   # guest shut down, not destroyed
