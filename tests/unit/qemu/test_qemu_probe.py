"""Version/MAGIC/option/accelerator probing, the probe cache, discovery, and the
faults: hang, crash, garbage, missing binary."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from ctys_libvirt.errors import QemuProbeError, UsageError
from ctys_libvirt.qemu import discovery
from ctys_libvirt.qemu.probe import magic_for, parse_options, parse_version, probe, synthetic_probe
from support.fakeqemu import VERSIONS, make_fake


@pytest.fixture(autouse=True)
def _env(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("CTYS_KQEMU_DEVICE", str(tmp_path / "kqemu-absent"))
    kvm = tmp_path / "kvm"
    kvm.write_bytes(b"")
    monkeypatch.setenv("CTYS_KVM_DEVICE", str(kvm))


@pytest.mark.parametrize("banner,version,fork", [
    ("QEMU PC emulator version 0.9.0, Copyright (c) 2003-2007 Fabrice Bellard", (0, 9, 0), None),
    ("QEMU PC emulator version 0.9.1, Copyright (c) 2003-2008 Fabrice Bellard", (0, 9, 1), None),
    ("QEMU PC emulator version 0.9.1 (kvm-83), Copyright (c) 2003-2008 Fabrice Bellard", (0, 9, 1), "kvm-83"),
    ("QEMU PC emulator version 0.12.5 (qemu-kvm-0.12.5), Copyright (c) 2003-2008 Fabrice Bellard",
     (0, 12, 5), "qemu-kvm-0.12.5"),
    ("QEMU emulator version 0.14.1 (qemu-kvm-0.14.1), Copyright (c) 2003-2008 Fabrice Bellard",
     (0, 14, 1), "qemu-kvm-0.14.1"),
    ("QEMU emulator version 1.1.2 (qemu-kvm-1.1.2+dfsg-2~bpo60+1, Debian), Copyright (c) 2003-2008 Fabrice Bellard",
     (1, 1, 2), "qemu-kvm-1.1.2+dfsg-2~bpo60+1"),
    ("QEMU emulator version 2.11.1(Debian 1:2.11+dfsg-1ubuntu7)\nCopyright (c) 2003-2017", (2, 11, 1), None),
    ("QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18)\nCopyright (c) 2003-2022", (7, 2, 22), None),
    ("QEMU emulator version 10.1.0\nCopyright (c) 2003-2025", (10, 1, 0), None),
    ("QEMU emulator version 12.0\nCopyright", (12, 0, 0), None),
])
def test_parse_version_every_banner(banner, version, fork):
    v, line, f = parse_version(banner + "\nusage: qemu [options]\n")
    assert v == version and f == fork and line == banner.splitlines()[0]


@pytest.mark.parametrize("version,magic", [
    ((0, 9, 0), "QEMU_090"), ((0, 9, 1), "QEMU_091"), ((0, 9, 2), "QEMU_09x"), ((0, 10, 6), "QEMU_010"),
    ((0, 11, 1), "QEMU_011"), ((0, 12, 5), "QEMU_012"), ((0, 13, 0), "QEMU_GENERIC"),
    ((10, 1, 0), "QEMU_GENERIC"), ((1, 0, 9), "QEMU_GENERIC"),
])
def test_magic(version, magic):
    assert magic_for(version) == magic


def test_parse_version_rejects_non_qemu():
    with pytest.raises(ValueError):
        parse_version("usage: foo [options]\n")


def test_options_are_exact_tokens():
    opts, with_arg = parse_options("-std-vga        simulate a standard VGA\n-fda/-fdb file  use\n"
                                   "-h or -help     display\n-no-kvm-pit\t    disable\n"
                                   "                use -vga to pick\n-m megs         set\n")
    assert "-vga" not in opts                       # legacy substring match found it in -std-vga
    assert {"-std-vga", "-fda", "-fdb", "-h", "-help", "-no-kvm-pit", "-m"} <= opts
    assert "-m" in with_arg and "-fda" in with_arg and "-std-vga" not in with_arg


EXPECT = {  # key: (version, magic, kvm fork, kqemu options, qmp listed, -vga, -std-vga)
    "0.9.0": ("0.9.0", "QEMU_090", False, False, False, False, True),
    "0.9.1": ("0.9.1", "QEMU_091", False, False, False, False, True),
    "0.9.1-kqemu": ("0.9.1", "QEMU_091", False, True, False, False, True),
    "0.9.1-kvm-83": ("0.9.1", "QEMU_091", True, False, False, False, True),
    "0.10.6": ("0.10.6", "QEMU_010", False, True, False, True, False),
    "0.11.1": ("0.11.1", "QEMU_011", False, True, False, True, False),
    "0.12.5": ("0.12.5", "QEMU_012", False, False, True, True, False),
    "0.12.5-qemu-kvm": ("0.12.5", "QEMU_012", True, False, True, True, False),
    "0.14.1-qemu-kvm": ("0.14.1", "QEMU_GENERIC", True, False, True, True, False),
    "1.7.0": ("1.7.0", "QEMU_GENERIC", False, False, True, True, False),
    "2.11.1": ("2.11.1", "QEMU_GENERIC", False, False, True, True, False),
    "0.10.50-kvm-88": ("0.10.50", "QEMU_010", True, False, False, True, False),
    "0.12.3-qemu-kvm": ("0.12.3", "QEMU_012", True, False, True, True, False),
    "0.13.0": ("0.13.0", "QEMU_GENERIC", False, False, True, True, False),
    "0.15.1": ("0.15.1", "QEMU_GENERIC", False, False, True, True, False),
    "1.0": ("1.0.0", "QEMU_GENERIC", False, False, True, True, False),
    "1.2.0": ("1.2.0", "QEMU_GENERIC", False, False, True, True, False),
    "1.2.0-qemu-kvm": ("1.2.0", "QEMU_GENERIC", True, False, True, True, False),
    "1.5.3-rhel7": ("1.5.3", "QEMU_GENERIC", False, False, True, True, False),
    "2.0.0-ubuntu": ("2.0.0", "QEMU_GENERIC", False, False, True, True, False),
    "3.1.0-debian": ("3.1.0", "QEMU_GENERIC", False, False, True, True, False),
    "4.1.1": ("4.1.1", "QEMU_GENERIC", False, False, True, True, False),
    "5.2.0-debian": ("5.2.0", "QEMU_GENERIC", False, False, True, True, False),
    "6.2.0-ubuntu": ("6.2.0", "QEMU_GENERIC", False, False, True, True, False),
    "7.2.22-debian12": ("7.2.22", "QEMU_GENERIC", False, False, True, True, False),
    "8.2.2-ubuntu": ("8.2.2", "QEMU_GENERIC", False, False, True, True, False),
    "9.2.4-fedora": ("9.2.4", "QEMU_GENERIC", False, False, True, True, False),
    "10.2.0": ("10.2.0", "QEMU_GENERIC", False, False, True, True, False),
}


def test_every_fake_release_is_covered():
    assert sorted(EXPECT) == VERSIONS


@pytest.mark.parametrize("key", sorted(EXPECT))
def test_probe_fake_release(key, tmp_path):
    ver, magic, fork, kq, qmp, vga, stdvga = EXPECT[key]
    pr = probe(str(make_fake(tmp_path, key)))
    assert (pr.version_text, pr.magic, pr.is_kvm_fork, pr.kqemu_capable, pr.has("-qmp"),
            pr.has("-vga"), pr.has("-std-vga")) == (ver, magic, fork, kq, qmp, vga, stdvga)
    assert pr.accelerator == ("KVM" if fork else "QEMU")
    assert pr.hyperrel == (f"qemu-{ver}-{pr.kvm_release}" if fork else f"qemu-{ver}")
    assert "KQEMU" not in pr.accelerators          # /dev/kqemu absent
    assert pr.accelerators[-1] == "TCG"


def test_kqemu_needs_device(tmp_path, monkeypatch):
    fake = make_fake(tmp_path, "0.9.1-kqemu")
    assert "KQEMU" not in probe(str(fake)).accelerators
    dev = tmp_path / "kqemu"
    dev.write_bytes(b"")
    monkeypatch.setenv("CTYS_KQEMU_DEVICE", str(dev))
    assert probe(str(fake)).accelerators == ("KQEMU", "TCG")    # host state is not cached
    assert "KQEMU" not in probe(str(make_fake(tmp_path, "0.9.1"))).accelerators


def test_modern_kvm_needs_usable_dev_kvm(tmp_path, monkeypatch):
    fake = make_fake(tmp_path, "2.11.1")
    assert probe(str(fake)).accelerators == ("KVM", "TCG")
    monkeypatch.setenv("CTYS_KVM_DEVICE", str(tmp_path / "absent"))
    assert probe(str(fake)).accelerators == ("TCG",)
    assert probe(str(make_fake(tmp_path, "0.9.1"))).accelerators == ("TCG",)   # no -enable-kvm


def test_real_qemu_probe():
    pr = probe("/usr/bin/qemu-system-x86_64")
    assert pr.version >= (7, 0, 0) and pr.magic == "QEMU_GENERIC"
    assert {"-accel", "-qmp", "-drive", "-netdev", "-device", "-rtc"} <= pr.options
    assert "-localtime" not in pr.options and "-no-kvm" not in pr.options


def _counting_fake(tmp_path):
    fake = make_fake(tmp_path, "0.12.5")
    text = fake.read_text().replace("if argv[1:2] in ", "open(__file__ + '.hcount', 'a').write('x')\nif argv[1:2] in ", 1)
    fake.write_text(text)
    return fake


def test_cache_hit_miss_and_invalidation(tmp_path):
    fake = _counting_fake(tmp_path)
    count = Path(str(fake) + ".hcount")
    p1 = probe(str(fake))
    p2 = probe(str(fake))
    assert p1 == p2 and count.read_text() == "x"              # second probe from the cache
    assert list((tmp_path / "cache" / "ctys-libvirt" / "qemu-probe").glob("*.json"))
    st = fake.stat()
    os.utime(fake, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))   # "upgraded" binary
    probe(str(fake))
    assert count.read_text() == "xx"
    probe(str(fake), use_cache=False)
    assert count.read_text() == "xxx"


def test_corrupt_cache_is_ignored(tmp_path):
    fake = make_fake(tmp_path, "0.9.1")
    probe(str(fake))
    for f in (tmp_path / "cache" / "ctys-libvirt" / "qemu-probe").glob("*.json"):
        f.write_text("{not json")
    assert probe(str(fake)).version == (0, 9, 1)


def test_hang_on_help_times_out(tmp_path):
    fake = make_fake(tmp_path, "0.9.1", behaviour="hang-help")
    t = time.monotonic()
    with pytest.raises(QemuProbeError, match=r"hung on '-h' \(no answer within 0.5s\)") as ei:
        probe(str(fake), timeout=0.5)
    assert time.monotonic() - t < 5 and ei.value.exit_code == 4


def test_crash_on_help(tmp_path):
    with pytest.raises(QemuProbeError, match=r"crashed on '-h' \(signal 11\)"):
        probe(str(make_fake(tmp_path, "0.9.1", behaviour="crash-help")))


def test_unparseable_version(tmp_path):
    with pytest.raises(QemuProbeError, match="unparseable version.*this is not an emulator"):
        probe(str(make_fake(tmp_path, "0.9.1", behaviour="garbage-help")))


def test_missing_and_not_executable(tmp_path):
    with pytest.raises(QemuProbeError, match=r"QEMU binary /nonexistent/qemu not found"):
        probe("/nonexistent/qemu")
    f = tmp_path / "qemu"
    f.write_text("#!/bin/sh\n")
    with pytest.raises(QemuProbeError, match="is not an executable file"):
        probe(str(f))


def test_synthetic_probe():
    pr = synthetic_probe("0.9.1", kqemu=True)
    assert pr.has("-no-kqemu") and pr.has("-std-vga") and not pr.has("-vga") and pr.magic == "QEMU_091"
    pr = synthetic_probe("7.2")
    assert pr.version == (7, 2, 0) and pr.has("-accel") and not pr.has("-localtime") and not pr.has("-soundhw")
    assert synthetic_probe("0.12.5", kvm_fork=True).is_kvm_fork
    with pytest.raises(UsageError, match="is not X.Y or X.Y.Z"):
        synthetic_probe("seven")


def test_discovery_order_and_blacklist(tmp_path, monkeypatch):
    d1, d2 = tmp_path / "a", tmp_path / "b"
    make_fake(d1, "0.9.1", name="qemu")
    make_fake(d2, "0.12.5-qemu-kvm", name="qemu-kvm")
    make_fake(d2, "0.9.0", name="qemu-img")          # not an emulator: skipped
    sc = make_fake(tmp_path / "c", "0.11.1", name="qemu-0.11")
    c = discovery.candidates(startercall=str(sc), search_path=str(d1), dirs=(str(d2),))
    assert [(Path(x.path).name, x.source) for x in c] == [("qemu-0.11", "STARTERCALL"), ("qemu", "PATH"),
                                                           ("qemu-kvm", "dir")]
    assert discovery.find_qemu(search_path=str(d1), dirs=(str(d2),)).version == (0, 9, 1)
    assert discovery.find_qemu(startercall=str(sc)).version == (0, 11, 1)
    assert discovery.find_qemu(explicit=str(d2 / "qemu-kvm"), startercall=str(sc)).is_kvm_fork


def test_no_qemu_found(tmp_path):
    with pytest.raises(QemuProbeError, match=r"no QEMU binary found .*install qemu-system-x86 or pass --qemu"):
        discovery.find_qemu(search_path=str(tmp_path), dirs=(str(tmp_path),))
    with pytest.raises(QemuProbeError, match=r"STARTERCALL /opt/x/qemu-kvm not found"):
        discovery.find_qemu(startercall="/opt/x/qemu-kvm")


def test_broken_candidates_reported(tmp_path):
    make_fake(tmp_path, "0.9.1", behaviour="crash-help", name="qemu")
    with pytest.raises(QemuProbeError, match="no usable QEMU binary: .*crashed"):
        discovery.find_qemu(search_path=str(tmp_path), dirs=())


def test_libvirt_can_drive(tmp_path):
    ok, why = discovery.libvirt_can_drive("/usr/bin/qemu-system-x86_64")
    assert ok
    ok, why = discovery.libvirt_can_drive(str(make_fake(tmp_path, "0.12.5-qemu-kvm")))
    assert not ok and "QEMU 0.12.5" in why
    assert discovery.libvirt_can_drive("/nonexistent/kvm") == (False, "is not installed on this host")
