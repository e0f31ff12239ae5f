"""ARGSADD through libvirt: linted against the emulator libvirt runs; --strict refuses
before anything is defined; a QEMU that rejects an option leaves nothing behind; good
passthrough args reach QEMU; --bridge/--network shape the NIC of the live domain."""
from __future__ import annotations

import libvirt
from support.cli import assert_one_line_error, run_cli
from support.confs import write_conf
from support.domains import unique_label


def _defined(conn, name):
    try:
        conn.lookupByName(name)
        return True
    except libvirt.libvirtError:
        return False


def test_strict_lint_refuses_before_define(vmroot, media, janitor, libvirt_conn):
    n = janitor.add(unique_label("lint"))
    conf = write_conf(vmroot, n, image=media["hello"])
    r = run_cli("create", str(conf), "--console", "NONE", "--argsadd", "-soundhw gus", "--strict")
    assert_one_line_error(r, 1, "ARGSADD -soundhw: removed in QEMU 7.1.0")
    assert not _defined(libvirt_conn, n)


def test_rejected_option_warns_then_qemu_error_changes_nothing(vmroot, media, janitor, libvirt_conn):
    n = janitor.add(unique_label("lint"))
    conf = write_conf(vmroot, n, image=media["hello"])
    r = run_cli("create", str(conf), "--console", "NONE", "--argsadd", "-soundhw gus")
    # QEMU's own complaint, with the lint finding as the hint, in one line
    line = assert_one_line_error(r, 4, "-soundhw: invalid option", "ARGSADD -soundhw: removed in QEMU 7.1.0")
    assert line.index("invalid option") < line.index("ARGSADD -soundhw")
    assert not _defined(libvirt_conn, n)                     # nothing of ours left behind


def test_bridge_option_reaches_xml_and_create_validates_it(vmroot, media, janitor, libvirt_conn):
    n = janitor.add(unique_label("br"))
    conf = write_conf(vmroot, n, image=media["hello"], extra="NIC=rtl8139\n")
    r = run_cli("xml", str(conf), "--bridge", "ctysbr-none")
    assert r.returncode == 0 and "<source bridge=\"ctysbr-none\"/>" in r.stdout, r.stderr
    # the bridge does not exist: QEMU/libvirt refuse at start, one line, nothing defined
    r = run_cli("create", str(conf), "--console", "NONE", "--bridge", "ctysbr-none")
    assert r.returncode == 4, r.stderr
    assert "Traceback" not in r.stderr
    assert not _defined(libvirt_conn, n)
