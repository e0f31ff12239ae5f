"""LIST record format (ctys/records.py) and install-target creation (host/images.py); no VMs."""
from __future__ import annotations

import os

import pytest

from ctys_libvirt.errors import NotFoundError, UsageError
from ctys_libvirt.host.images import ensure_install_target
from ctys_libvirt.model import DomainInfo
from ctys_libvirt.ctys.records import TITLES, ListRecord, format_records, list_record


def info(**kw) -> DomainInfo:
    base = dict(name="debian5", uuid="3f2a6c1e-9b7d-4e0a-8c5b-1d2e3f4a5b6c", state="running",
                backend="libvirt", host="app2", ours=True, label="debian5",
                mac="00:50:56:13:11:40", ip="172.20.6.40", vnc_display=3, vnc_port=5903,
                pid=4711, conf_path="/vm/debian5/debian5.ctys", user="libvirt-qemu",
                accelerator="KVM", arch="x86_64",
                extra={"sport": "/dev/pts/7", "group": "kvm", "ifname": "vnet0",
                       "emulator": "/usr/bin/qemu-system-x86_64", "hyperrelrun": "qemu-7.2.22"})
    base.update(kw)
    return DomainInfo(**base)


def test_canonical_record_exact():
    assert list_record(info()).canonical() == (
        "app2;QEMU;debian5;/vm/debian5/debian5.ctys;3f2a6c1e9b7d4e0a8c5b1d2e3f4a5b6c;"
        "00:50:56:13:11:40;172.20.6.40;3;5903;/dev/pts/7;4711;libvirt-qemu;kvm;SERVER;;vnet0;;;"
        "/usr/bin/qemu-system-x86_64;qemu-7.2.22;KVM;x86_64")


def test_plugin_order_exact():
    assert list_record(info()).plugin_order() == (
        "app2;debian5;/vm/debian5/debian5.ctys;3f2a6c1e9b7d4e0a8c5b1d2e3f4a5b6c;00:50:56:13:11:40;"
        "3;5903;/dev/pts/7;4711;libvirt-qemu;kvm;QEMU;SERVER;172.20.6.40;;vnet0;;;"
        "/usr/bin/qemu-system-x86_64;qemu-7.2.22;KVM;x86_64")


def test_foreign_and_stopped_domains_leave_ctys_fields_empty():
    rec = list_record(info(ours=False, conf_path="/x.ctys", ip="1.2.3.4", state="shutoff",
                           pid=None, vnc_display=None, vnc_port=None, extra={})).values()
    assert len(rec) == 22
    assert rec[3] == "" and rec[6] == ""          # id and tcp need our metadata
    assert rec[7:11] == ["", "", "", ""]          # display, cport, sport, pid


def test_separator_in_values_never_breaks_the_record():
    rec = list_record(info(label="a;b", conf_path="/x;y/z.ctys")).canonical()
    assert rec.count(";") - rec.count("\\;") == 21     # escaped as in ENUMERATE records
    assert rec.split(";")[2] == "a\\" and "a\\;b;/x\\;y/z.ctys;" in rec


def test_titles_and_multiple_records():
    assert len(TITLES) == len(ListRecord().values()) == 22
    out = format_records([info(), info(name="x", label="x")])
    assert [l.split(";")[2] for l in out.splitlines()] == ["debian5", "x"]


def test_install_target_created_once(tmp_path):
    t = tmp_path / "hda.img"
    assert ensure_install_target(t, "raw", "2M") is True
    assert t.stat().st_size == 2 * 1024 * 1024
    t.write_bytes(b"precious")
    assert ensure_install_target(t, "raw", "2M") is False
    assert t.read_bytes() == b"precious"
    assert [p.name for p in tmp_path.iterdir()] == ["hda.img"]   # no temp file left


def test_install_target_qcow2_and_preallocated(tmp_path):
    q = tmp_path / "q.qcow2"
    assert ensure_install_target(q, "qcow2", "1M")
    assert q.read_bytes()[:4] == b"QFI\xfb"
    r = tmp_path / "dos.img"
    assert ensure_install_target(r, "raw", "1M", preallocate=True)
    assert r.stat().st_blocks * 512 >= 1024 * 1024


def test_install_target_never_touches_links_or_devices(tmp_path):
    link = tmp_path / "dangling.img"
    os.symlink(tmp_path / "nowhere", link)
    assert ensure_install_target(link, "raw", "1M") is False
    assert not (tmp_path / "nowhere").exists()
    assert ensure_install_target(__import__("pathlib").Path("/dev/null"), "raw", "1M") is False


def test_install_target_bad_input(tmp_path):
    with pytest.raises(UsageError, match="HDDBOOTIMAGE_INST_SIZE"):
        ensure_install_target(tmp_path / "a.img", "raw", None)
    with pytest.raises(UsageError, match="QEMU_IMG"):
        ensure_install_target(tmp_path / "a.img", "floppyfmt", "1M")
    with pytest.raises(NotFoundError):
        ensure_install_target(tmp_path / "nodir" / "a.img", "raw", "1M")
    assert list(tmp_path.iterdir()) == []
