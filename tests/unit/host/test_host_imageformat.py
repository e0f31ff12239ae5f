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


def _multiboot_reference(head: bytes) -> bool:
    """QEMU's scan as written there: every 4-byte boundary below 8192 - 48."""
    if head[0x202:0x206] == b"HdrS":
        return False
    for i in range(0, len(head) - 47, 4):
        if int.from_bytes(head[i:i + 4], "little") == 0x1BADB002:
            flags = int.from_bytes(head[i + 4:i + 8], "little")
            check = int.from_bytes(head[i + 8:i + 12], "little")
            if (0x1BADB002 + flags + check) & 0xFFFFFFFF == 0:
                return True
    return False


_MAGIC = (0x1BADB002).to_bytes(4, "little")
_HEADER = _MAGIC + (3).to_bytes(4, "little") + ((-(0x1BADB002 + 3)) & 0xFFFFFFFF).to_bytes(4, "little")


@pytest.mark.parametrize("head", [
    b"", _HEADER, b"\0" * 4 + _HEADER + b"\0" * 64, b"\0" * 2 + _HEADER + b"\0" * 64,   # unaligned
    _MAGIC + b"\0" * 100,                                             # magic, bad checksum
    _MAGIC * 3 + _HEADER + b"\0" * 40,                                # bad ones first
    b"\0" * (8192 - 48) + _HEADER + b"\0" * 36,                       # the last offset scanned
    b"\0" * (8192 - 44) + _HEADER + b"\0" * 32,                       # the first one not scanned
    b"\0" * 100 + _HEADER,                                           # too near the end of the file
    b"\0" * 8192 + _HEADER,                                           # beyond the 8 KiB read
    b"\0" * 0x202 + b"HdrS" + b"\0" * 0x100 + _HEADER + b"\0" * 64,   # a Linux kernel
    b"\0" * 40 + _HEADER,                                             # file shorter than 48 bytes
    _HEADER + b"\0" * 36,
])
def test_multiboot_kernel_scans_as_qemu_does(tmp_path, head):
    from ctys_libvirt.host.imageformat import multiboot_kernel

    k = tmp_path / "kernel"
    k.write_bytes(head)
    assert multiboot_kernel(k) is _multiboot_reference(head[:8192])


def test_multiboot_kernel_unreadable_is_false(tmp_path):
    from ctys_libvirt.host.imageformat import multiboot_kernel

    assert multiboot_kernel(tmp_path / "missing") is False
    assert multiboot_kernel(tmp_path) is False          # a directory
