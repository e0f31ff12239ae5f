"""ARGSADD lint: unknown, removed, deprecated options and sub-option churn."""
from __future__ import annotations

from ctys_libvirt.qemu.lint import lint_args, lint_findings
from ctys_libvirt.qemu.probe import synthetic_probe


def test_removed_options_name_version_and_replacement():
    pr = synthetic_probe("7.2.0")
    msgs = lint_args(["-soundhw", "ac97", "-no-kvm", "-sdl", "-localtime"], pr)
    assert msgs == [
        "ARGSADD -soundhw: removed in QEMU 7.1.0; QEMU 7.2.0 (qemu) does not list it (use -device AC97 / -audio)",
        "ARGSADD -no-kvm: removed in QEMU 1.3.0; QEMU 7.2.0 (qemu) does not list it (use -accel tcg)",
        "ARGSADD -sdl: removed in QEMU 7.1.0; QEMU 7.2.0 (qemu) does not list it (use -display sdl)",
        "ARGSADD -localtime: removed in QEMU 3.1.0; QEMU 7.2.0 (qemu) does not list it (use -rtc base=localtime)",
    ]


def test_values_are_not_options_and_known_options_pass():
    pr = synthetic_probe("7.2.0")
    assert lint_args(["-m", "64", "-append", "-x", "-smp", "2", "-rtc", "base=localtime", "-1"], pr) == []


def test_unknown_option_on_old_build():
    pr = synthetic_probe("0.9.1")
    assert lint_args(["-device", "usb-tablet"], pr) == [
        "ARGSADD -device: QEMU 0.9.1 (qemu) does not list this option"]
    assert lint_args(["-soundhw", "all", "-localtime", "-no-acpi"], pr) == []


def test_suboption_churn_and_severities():
    pr = synthetic_probe("7.2.0")
    f = lint_findings(["-net", "nic,vlan=0", "-serial", "unix:/x,server,nowait", "-usbdevice", "tablet"], pr)
    assert [s for s, _ in f] == ["error", "deprecated", "deprecated"]
    assert "'vlan=' was removed in QEMU 3.0" in f[0][1]
    assert "server=on,wait=off" in f[1][1] and "-usbdevice: deprecated since QEMU 2.10.0" in f[2][1]
    assert lint_args(["-net", "nic,vlan=0"], synthetic_probe("2.11.1")) == []


def test_options_accepted_but_not_listed_pass(tmp_path):
    """-M has not been listed in -h since 0.15 (its help moved to -machine) and -localtime
    not since 0.12, yet both are taken: lint must not call them unknown (or eat the value)."""
    from support.fakeqemu import make_fake

    from ctys_libvirt.qemu.probe import probe

    modern = probe(str(make_fake(tmp_path / "a", "7.2.22-debian12")))
    assert "-M" not in modern.options
    assert lint_args(["-M", "pc", "-no-hpet"], modern) == []
    assert lint_args(["-M", "-nosuch"], modern) == []          # '-nosuch' is -M's value here
    old = probe(str(make_fake(tmp_path / "b", "1.7.0")))
    assert lint_args(["-localtime", "-M", "pc"], old) == []
    assert lint_args(["-localtime"], modern) == [
        f"ARGSADD -localtime: removed in QEMU 3.1.0; QEMU 7.2.22 ({modern.path}) does not list it "
        "(use -rtc base=localtime)"]
