"""ONE real two-level VM stack: a Debian guest (mmdebstrap, systemd, sshd, libvirtd + QEMU;
tests/support/realguests/stack_image.py, built once into the cache) booted with its own kernel under
TCG on the system libvirtd, ssh forwarded on loopback, running a tiny inner guest (the ACPI
boot sector) under its own libvirtd -- TCG inside TCG.  ``cancel`` of the outer VM must
power the inner VM off first: the inner libvirt reports it shut off (by its ACPI shutdown)
before the outer VM's own CANCEL begins, as the JSON tree records."""
from __future__ import annotations

import json
import os
import subprocess
import time
import uuid as uuidlib

import libvirt
import pytest

from support.cli import run_cli
from support.domains import unique_label
from support.guests import wait_marker
from support.loopback import free_port

BOOT_TIMEOUT = 600          # TCG boot of a systemd Debian on a loaded 2-core host
INNER = "ctys-inner"


@pytest.fixture(scope="session")
def stack_image():
    from support.realguests.stack_image import ensure_image

    return ensure_image()


def ssh_wrapper(d, key) -> str:
    """ssh with the image's key, host keys never recorded (root's ~/.ssh untouched)."""
    cfg = d / "ssh_config"
    cfg.write_text(f"Host *\n  UserKnownHostsFile /dev/null\n  StrictHostKeyChecking no\n"
                   f"  IdentityFile {key}\n  IdentitiesOnly yes\n  BatchMode yes\n"
                   "  ConnectTimeout 10\n  LogLevel ERROR\n")
    w = d / "ssh"
    w.write_text(f'#!/bin/sh\nexec /usr/bin/ssh -F {cfg} "$@"\n')
    os.chmod(w, 0o755)
    return str(w)


def outer_conf(d, img, label: str, port: int):
    disk = d / "disk.qcow2"     # the cached image stays pristine: a throw-away overlay
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(img.image), "-F", "raw",
                    str(disk)], check=True)
    os.chmod(disk, 0o644)
    conf = d / f"{label}.ctys"
    conf.write_text(
        "#@#MAGICID-QEMU\n"
        f'#@#LABEL = "{label}"\nLABEL="{label}"\n'
        f'#@#UUID = "{uuidlib.uuid4().hex}"\n'
        f'#@#IP0 = "127.0.0.1%255.0.0.0%%eth0%{port}"\n'
        "ACCELERATOR=QEMU\nMEMSIZE=1024\nSMP=1\nARCH=x86_64\nNIC=\nQEMU_IMG=qcow2\n"
        'HDDBOOTIMAGE="${CTYSWRAPPERPATH}/disk.qcow2"\n'
        f"KERNELIMAGE={img.kernel}\nINITRDIMAGE={img.initrd}\n"
        f'APPEND="{img.append}"\nDEFAULTBOOTMODE=KERNEL\n'
        f'ARGSADD="-netdev user,id=sn0,hostfwd=tcp:127.0.0.1:{port}-:22 -device virtio-net-pci,netdev=sn0"\n')
    return conf


def inner_xml(img) -> str:
    return f"""<domain type='qemu'>
  <name>{INNER}</name><memory unit='MiB'>16</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <features><acpi/></features>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='raw'/>
      <source file='{img.inner_disk}'/><target dev='hda' bus='ide'/></disk>
    <serial type='pty'><log file='/var/log/libvirt/qemu/{INNER}.serial' append='off'/>
      <target port='0'/></serial>
    <video><model type='none'/></video><memballoon model='none'/>
  </devices>
</domain>"""


def open_until(uri: str, deadline: float):
    """The libvirt inside, once sshd and libvirtd there are up."""
    last = None
    while time.monotonic() < deadline:
        try:
            return libvirt.open(uri)
        except libvirt.libvirtError as exc:
            last = exc
            time.sleep(3)
    raise AssertionError(f"libvirt inside the outer VM not reachable at {uri}: {last}")


def ssh_out(wrapper: str, port: int, cmd: str) -> str:
    p = subprocess.run([wrapper, "-p", str(port), "root@127.0.0.1", cmd], capture_output=True,
                       text=True, timeout=60, stdin=subprocess.DEVNULL)
    return p.stdout


def test_cancel_powers_the_inner_vm_off_before_the_outer(vmroot, stack_image, janitor):
    libvirt.registerErrorHandler(lambda *_: None, None)
    label = janitor.add(unique_label("stack"))
    port = free_port()
    d = vmroot / label
    d.mkdir(mode=0o755)
    conf = outer_conf(d, stack_image, label, port)
    wrapper = ssh_wrapper(vmroot, stack_image.key)
    env = {"CTYS_STACK_SSH_COMMAND": wrapper, "CTYS_STACK_KEYFILE": str(stack_image.key),
           "CTYS_STACK_NO_VERIFY": "1", "CTYS_STACK_CONNECT_TIMEOUT": "60"}
    serial = d / "serial.log"
    # the ssh port forward (hostfwd=) opens a host socket: allowed for this root-owned conf
    p = run_cli("create", str(conf), "--console", "NONE", "--serial-log", str(serial),
                "--allow-argsadd", "-netdev", env=env)
    assert p.returncode == 0, p.stderr
    deadline = time.monotonic() + BOOT_TIMEOUT
    wait_marker(serial, "ctys-stack-outer ttyS0", timeout=BOOT_TIMEOUT)   # the getty banner line
    uri = (f"qemu+ssh://root@127.0.0.1:{port}/system?keyfile={stack_image.key}"
           f"&no_verify=1&no_tty=1&command={wrapper}")
    inner_conn = open_until(uri, deadline)
    try:
        dom = inner_conn.defineXML(inner_xml(stack_image))
        dom.create()
        while "CTYS-GUEST-OK" not in ssh_out(wrapper, port, f"cat /var/log/libvirt/qemu/{INNER}.serial"):
            assert time.monotonic() < deadline, "inner guest printed no marker"
            time.sleep(2)
        # the stack address reaches the inner VM too (LIST names the containing VM)
        p = run_cli("list", "--stack", f"localhost[{label}]", "--format", "records", env=env)
        assert p.returncode == 0, p.stderr
        assert [(r.split(";")[0], r.split(";")[2]) for r in p.stdout.splitlines()] == [(label, INNER)]

        p = run_cli("cancel", label, "--format", "json", "--timeout", "120", env=env, timeout=600)
        assert p.returncode == 0, p.stderr
        r = json.loads(p.stdout)[0]
        assert r["reached"] is True and r["inside"] == f"qemu+ssh://root@127.0.0.1:{port}/system"
        assert [c["name"] for c in r["inner"]] == [INNER]
        c = r["inner"][0]
        # shut off by its own ACPI shutdown, as reported by the inner libvirt, before the
        # outer VM was asked to power off
        assert c["action"] == "shutdown" and c["state"] == "shutoff (shutdown)", c
        assert c["finished"] <= r["finished"] - r["seconds"]
        assert r["action"] in ("shutdown", "destroyed") and r["state"].startswith("shutoff")
        serial_text = serial.read_text(errors="replace")
        assert "reboot: Power down" in serial_text or r["action"] == "destroyed"
    finally:
        try:
            inner_conn.close()
        except libvirt.libvirtError:
            pass
