"""Image format from the header, never from the name."""
import shutil
import subprocess

import pytest

from ctys_libvirt.host.imageformat import sniff_bytes, sniff_format

QEMU_IMG = shutil.which("qemu-img")


@pytest.mark.skipif(QEMU_IMG is None, reason="qemu-img not installed (scripts/setup.sh installs it)")
@pytest.mark.parametrize("fmt,opts,expected", [
    ("qcow2", [], "qcow2"), ("vmdk", [], "vmdk"), ("vmdk", ["-o", "subformat=monolithicFlat"], "vmdk"),
    ("vdi", [], "vdi"), ("vpc", [], "vpc"), ("vhdx", [], "vhdx"), ("qed", [], "qed"), ("raw", [], "raw"),
])
def test_real_images_named_misleadingly(tmp_path, fmt, opts, expected):
    path = tmp_path / "disk.iso"          # the name says ISO; only the header counts
    subprocess.run([QEMU_IMG, "create", "-q", "-f", fmt, *opts, str(path), "1M"], check=True)
    assert sniff_format(path) == expected


@pytest.mark.parametrize("head,expected", [
    (b"QFI\xfb\x00\x00\x00\x01" + b"\x00" * 64, "qcow"),
    (b"QFI\xfb\x00\x00\x00\x03" + b"\x00" * 64, "qcow2"),
    (b"KDMV" + b"\x00" * 64, "vmdk"),
    (b"# Disk DescriptorFile\nversion=1\n", "vmdk"),
    (b"conectix" + b"\x00" * 64, "vpc"),
    (b"#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0\n", "cloop"),
    (b"\x00" * 64 + b"\x7f\x10\xda\xbe" + b"\x00" * 8, "vdi"),
    (b"\x00" * 512, "raw"),
    (b"", "raw"),
    (b"\xeb\x3c\x90MSDOS5.0" + b"\x00" * 500, "raw"),
])
def test_sniff_bytes(head, expected):
    assert sniff_bytes(head) == expected


def test_raw_file_named_qcow2(tmp_path):
    p = tmp_path / "x.qcow2"
    p.write_bytes(b"\x00" * 4096)
    assert sniff_format(p) == "raw"


def test_device_is_raw_without_reading():
    assert sniff_format("/dev/null") == "raw"


def test_missing_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        sniff_format(tmp_path / "nope.img")
