"""LibvirtBackend against the real libvirtd with hand-written TCG domains: cancel modes,
event-driven waits, console stream, LIST records, connection errors."""
from __future__ import annotations

import os
import threading
import time
import uuid as uuidlib

import libvirt
import pytest

from ctys_libvirt.backends.libvirt import LibvirtBackend, label_lock
from ctys_libvirt.errors import AlreadyRunning, BackendError, LibvirtUnavailable, NotFoundError, NotRunning
from ctys_libvirt.model import CancelMode, CreateOptions
from ctys_libvirt.ctys.records import TITLES, list_record
from lifecycle_helpers import (  # noqa: F401
    BOGUS_URI, domain_xml, janitor, read_until_marker, unique_label, wait_marker)

pytestmark = [pytest.mark.libvirt, pytest.mark.qemu]


@pytest.fixture
def backend(libvirt_uri):
    b = LibvirtBackend(libvirt_uri)
    yield b
    b.close()


def start(backend, janitor, vmroot, image, *, guest="hello", transient=False, graphics=False, **kw):
    name = janitor.add(unique_label(guest))
    u = str(uuidlib.uuid4())
    log = vmroot / f"{name}.serial.log"
    xml = domain_xml(name, u, image, log, graphics=graphics, **kw)
    res = backend.create_from_build(name=name, uuid=u, xml=xml, final_xml=None, warnings=[],
                                    options=CreateOptions(transient=transient, timeout=30),
                                    console="CLI")
    return name, u, log, res


def test_create_defines_and_runs_then_already_running(backend, janitor, vmroot, media, libvirt_conn):
    name, u, log, res = start(backend, janitor, vmroot, media["hello"])
    assert res.state == "running" and res.defined and res.uuid == u
    assert res.pid and f"guest={name}" in open(f"/proc/{res.pid}/cmdline", "rb").read().decode(errors="replace")
    assert res.serial and res.serial.startswith("/dev/pts/")
    wait_marker(log, "CTYS-GUEST-OK")
    dom = libvirt_conn.lookupByName(name)
    assert dom.isPersistent() and dom.isActive()
    xml = domain_xml(name, u, media["hello"], log)
    with pytest.raises(AlreadyRunning) as ei:
        backend.create_from_build(name=name, uuid=u, xml=xml, final_xml=None, warnings=[],
                                  options=CreateOptions(), console="CLI")
    assert ei.value.one_line().startswith(f"{name} is already running (UUID {u})")
    assert "--reuse" in ei.value.hint
    reused = backend.create_from_build(name=name, uuid=u, xml=xml, final_xml=None, warnings=[],
                                       options=CreateOptions(reuse=True), console="CLI")
    assert reused.pid == res.pid and not reused.defined


def test_unchanged_xml_is_not_redefined(backend, janitor, vmroot, media, libvirt_conn):
    name, u, log, res = start(backend, janitor, vmroot, media["hello"])
    backend.cancel(name, CancelMode.FORCE)
    xml = domain_xml(name, u, media["hello"], log)
    again = backend.create_from_build(name=name, uuid=u, xml=xml, final_xml=None, warnings=[],
                                      options=CreateOptions(), console="CLI")
    assert again.defined is False and again.state == "running"
    backend.cancel(name, CancelMode.FORCE)
    changed = xml.replace("<vcpu>1</vcpu>", "<vcpu>2</vcpu>")
    third = backend.create_from_build(name=name, uuid=u, xml=changed, final_xml=None, warnings=[],
                                      options=CreateOptions(), console="CLI")
    assert third.defined is True
    assert libvirt_conn.lookupByName(name).maxVcpus() == 2


def test_foreign_domain_with_same_name_is_never_touched(backend, janitor, vmroot, media, libvirt_conn):
    name = janitor.add(unique_label("foreign"))
    u = str(uuidlib.uuid4())
    log = vmroot / "f.log"
    foreign = domain_xml(name, u, media["hello"], log, metadata=False)
    libvirt_conn.defineXML(foreign)
    before = libvirt_conn.lookupByName(name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    with pytest.raises(BackendError, match="not defined by ctys-libvirt"):
        backend.create_from_build(name=name, uuid=u, xml=domain_xml(name, u, media["hello"], log),
                                  final_xml=None, warnings=[], options=CreateOptions(), console="CLI")
    other = str(uuidlib.uuid4())
    with pytest.raises(BackendError, match=f"already exists with UUID {u}"):
        backend.create_from_build(name=name, uuid=other, xml=domain_xml(name, other, media["hello"], log),
                                  final_xml=None, warnings=[], options=CreateOptions(), console="CLI")
    dom = libvirt_conn.lookupByName(name)
    assert not dom.isActive()
    assert dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE) == before


def test_missing_image_defines_nothing(backend, janitor, vmroot, libvirt_conn):
    name = janitor.add(unique_label("noimg"))
    u = str(uuidlib.uuid4())
    xml = domain_xml(name, u, vmroot / "absent.img", vmroot / "x.log")
    with pytest.raises(NotFoundError, match=r"disk image .*absent.img does not exist"):
        backend.create_from_build(name=name, uuid=u, xml=xml, final_xml=None, warnings=[],
                                  options=CreateOptions(), console="CLI")
    with pytest.raises(libvirt.libvirtError):
        libvirt_conn.lookupByName(name)


def test_failed_start_leaves_no_definition(backend, janitor, vmroot, media, libvirt_conn):
    name = janitor.add(unique_label("badstart"))
    u = str(uuidlib.uuid4())
    xml = domain_xml(name, u, media["hello"], vmroot / "x.log").replace(
        "<devices>", "<devices><emulator>/nonexistent/qemu-system-x86_64</emulator>")
    with pytest.raises(BackendError):
        backend.create_from_build(name=name, uuid=u, xml=xml, final_xml=None, warnings=[],
                                  options=CreateOptions(), console="CLI")
    with pytest.raises(libvirt.libvirtError):
        libvirt_conn.lookupByName(name)


def test_poweroff_acpi_guest_shuts_down_by_itself(backend, janitor, vmroot, media, libvirt_conn):
    name, u, log, _ = start(backend, janitor, vmroot, media["acpi"], guest="acpi")
    wait_marker(log, "CTYS-GUEST-OK ACPI")
    r = backend.cancel(name, CancelMode.POWEROFF, timeout=15)
    assert r.action == "shutdown"
    assert r.state == "shutoff (shutdown)"
    assert r.seconds < 10
    assert tuple(libvirt_conn.lookupByName(name).state()) == (
        libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_SHUTDOWN)
    assert "CTYS-ACPI-POWEROFF" in log.read_text()


def test_poweroff_plain_guest_is_destroyed_after_timeout(backend, janitor, vmroot, media, libvirt_conn):
    name, u, log, _ = start(backend, janitor, vmroot, media["hello"])
    wait_marker(log, "CTYS-GUEST-OK")
    r = backend.cancel(name, CancelMode.POWEROFF, timeout=1.0)
    assert r.action == "destroyed"
    assert r.state == "shutoff (destroyed)"
    assert 1.0 <= r.seconds < 10
    assert any("did not shut down within 1s" in m for m in r.messages)


def test_force_and_cancel_of_stopped_vm(backend, janitor, vmroot, media):
    name, u, log, _ = start(backend, janitor, vmroot, media["hello"])
    r = backend.cancel(name, CancelMode.FORCE)
    assert (r.action, r.state) == ("destroyed", "shutoff (destroyed)")
    for mode in (CancelMode.POWEROFF, CancelMode.FORCE, CancelMode.RESET, CancelMode.PAUSE,
                 CancelMode.SUSPEND, CancelMode.RESUME):
        with pytest.raises(NotRunning) as ei:
            backend.cancel(name, mode)
        assert ei.value.exit_code == 4 and name in ei.value.one_line()


def test_reset_prints_marker_twice(backend, janitor, vmroot, media):
    name, u, log, _ = start(backend, janitor, vmroot, media["hello"])
    wait_marker(log, "CTYS-GUEST-OK")
    r = backend.cancel(name, CancelMode.RESET)
    assert (r.action, r.state) == ("reset", "running")
    text = wait_marker(log, "CTYS-GUEST-OK", count=2)
    assert text.count("CTYS-GUEST-OK") == 2


def test_pause_and_resume(backend, janitor, vmroot, media, libvirt_conn):
    name, u, log, _ = start(backend, janitor, vmroot, media["hello"])
    r = backend.cancel(name, CancelMode.PAUSE)
    assert (r.action, r.state) == ("paused", "paused")
    assert libvirt_conn.lookupByName(name).state()[0] == libvirt.VIR_DOMAIN_PAUSED
    r = backend.cancel(name, CancelMode.RESUME)
    assert (r.action, r.state) == ("resumed", "running")


def test_suspend_to_managed_save_and_resume(backend, janitor, vmroot, media, libvirt_conn):
    name, u, log, res = start(backend, janitor, vmroot, media["hello"])
    wait_marker(log, "CTYS-GUEST-OK")
    r = backend.cancel(name, CancelMode.SUSPEND, timeout=30)
    assert (r.action, r.state) == ("saved", "shutoff (saved)")
    dom = libvirt_conn.lookupByName(name)
    assert dom.hasManagedSaveImage(0) == 1
    r = backend.cancel(name, CancelMode.RESUME, timeout=30)
    assert (r.action, r.state) == ("restored", "running")
    assert dom.hasManagedSaveImage(0) == 0
    # restored, not rebooted: the guest did not print its marker again
    time.sleep(0.3)
    assert log.read_text().count("CTYS-GUEST-OK") <= 1


def test_suspend_of_transient_domain_is_refused(backend, janitor, vmroot, media):
    name, u, log, _ = start(backend, janitor, vmroot, media["hello"], transient=True)
    with pytest.raises(BackendError, match="transient"):
        backend.cancel(name, CancelMode.SUSPEND)
    assert backend.cancel(name, CancelMode.FORCE).state == "gone"


def test_console_stream_shows_guest_output_and_ctrl_bracket_detaches(backend, janitor, vmroot, media):
    from ctys_libvirt.backends import console_stream as console

    name, u, log, _ = start(backend, janitor, vmroot, media["hello"])
    dom = backend.domain(name)
    rin, win = os.pipe()
    rout, wout = os.pipe()
    out = {}
    th = threading.Thread(target=lambda: out.setdefault(
        "r", console.attach(backend.conn, dom, rin, wout, timeout=20)))
    th.start()
    assert b"CTYS-GUEST-OK\r\n" in read_until_marker(rout, dom)
    os.write(win, b"\x1d")
    th.join(10)
    assert out["r"] == "detached"
    assert dom.isActive()  # detaching never stops the VM
    for fd in (rin, win, rout, wout):
        os.close(fd)


def test_list_records_exact_for_a_running_domain(backend, janitor, vmroot, media):
    name, u, log, res = start(backend, janitor, vmroot, media["hello"], graphics=True)
    infos = {i.name: i for i in backend.list(include_inactive=True)}
    i = infos[name]
    assert i.state == "running" and i.pid == res.pid and i.ours
    rec = list_record(i).canonical().split(";")
    assert len(rec) == len(TITLES) == 22
    port = res.vnc_port
    assert port and port >= 5900
    st = os.stat(f"/proc/{res.pid}")
    import grp
    import pwd

    expected = [
        backend.hostname(), "QEMU", name, f"/nowhere/{name}.ctys",
        u.replace("-", ""), "52:54:00:aa:bb:01", "10.1.2.3", str(port - 5900), str(port), res.serial,
        str(res.pid), pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name,
        "SERVER", "", "", "", "", "/usr/bin/qemu-system-x86_64", backend.hypervisor_release(),
        "QEMU", "x86_64",
    ]
    assert rec == expected
    # inactive domains appear only with include_inactive
    backend.cancel(name, CancelMode.FORCE)
    assert name not in {i.name for i in backend.list(include_inactive=False)}
    off = {i.name: i for i in backend.list(include_inactive=True)}[name]
    assert off.state == "shutoff" and off.pid is None
    assert list_record(off).canonical().split(";")[7:11] == ["", "", "", ""]


def test_label_lock_serialises(tmp_path):
    order = []

    def worker(tag):
        with label_lock("ctystest-lock"):
            order.append(f"{tag}-in")
            time.sleep(0.1)
            order.append(f"{tag}-out")

    ts = [threading.Thread(target=worker, args=(t,)) for t in "ab"]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert order[0][0] == order[1][0] and order[2][0] == order[3][0]


def test_unreachable_libvirt_is_a_typed_error():
    with pytest.raises(LibvirtUnavailable) as ei:
        LibvirtBackend(BOGUS_URI)
    line = ei.value.one_line()
    assert line.startswith(f"cannot connect to libvirt at {BOGUS_URI}")
    assert "scripts/setup.sh" in line and "--backend direct" in line
    assert ei.value.exit_code == 4
