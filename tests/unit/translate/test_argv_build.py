"""Behaviour of the argv builder: spelling chosen by probed options, legacy defects
fixed, the legacy golden argv of the example confs reproduced where intended."""
from __future__ import annotations

from pathlib import Path

import pytest

from ctys_libvirt.errors import BackendError, UsageError
from ctys_libvirt.model import BootMode, BootRequest, ConsoleType
from ctys_libvirt.qemu.probe import probe, probe_text, synthetic_probe
from ctys_libvirt.qemu.runtime import RuntimeDirs
from ctys_libvirt.translate.argv import build_argv, build_argv_result
from ctys_libvirt.host.facts import host_facts
from ctys_libvirt.translate.plan import resolve_plan
from support.fakeqemu import HELP_DIR, fix_host, make_fake, vms
from support.paths import EXAMPLE_CONFS

EXAMPLES = EXAMPLE_CONFS
RT = RuntimeDirs(Path("/run/ctys-libvirt/x"))


@pytest.fixture(autouse=True)
def _host(tmp_path, monkeypatch):
    fix_host(tmp_path, monkeypatch)


def _pairs(argv):
    """Option -> list of values (None for flags), in order."""
    out = []
    i = 1
    while i < len(argv):
        a = argv[i]
        if a.startswith("-") and i + 1 < len(argv) and not argv[i + 1].startswith("-"):
            out.append((a, argv[i + 1]))
            i += 2
        else:
            out.append((a, None))
            i += 1
    return out


def _fake_probe(tmp_path, key):
    return probe(str(make_fake(tmp_path / "bin", key)))


def _legacy_golden(label, name):
    lines = (EXAMPLES / label / name).read_text().splitlines()
    return [l for l in lines if l and not l.startswith("#")]


def test_legacy_golden_debian5_reproduced_with_defects_fixed(tmp_path):
    """qemu 0.11 (legacy spelling, lists -vga and -localtime): every option of the legacy
    argv is there, except the documented fixes (bare image -> -hda, mon: serial ->
    separate monitor + serial log, -vnc :N -> 127.0.0.1:N, no vdeq wrapper)."""
    vm = vms.debian5(tmp_path)
    pr = _fake_probe(tmp_path, "0.11.1")
    argv = build_argv(resolve_plan(vm, BootRequest(bootmode=BootMode.VHDD, vnc_display=1), host_facts()), pr,
                      runtime=RT, network="vde:/var/tmp/vde_switch0.acue")
    golden = _legacy_golden("debian5", "legacy-argv.txt")
    assert golden[0] == "/opt/vde/bin/vdeq" and argv[0] == pr.path
    ours = _pairs(argv)
    gpairs = _pairs(golden[1:])  # drop vdeq; golden[1] is the binary
    fixed = {("-serial", "mon:unix:/var/tmp/qemumon.debian5.<PID>.acue,server,nowait"), ("-vnc", ":1"),
             ("-boot", "c")}
    for p in gpairs:
        if p in fixed or p[0] == "/vm/qemu/debian5/hda.img":
            continue
        assert p in ours, f"legacy {p} missing from {argv}"
    assert ("-boot", "c") in ours
    assert ("-hda", str(vm.hdd_boot_image)) in ours        # image as -hda, not a bare word
    assert ("-vnc", "127.0.0.1:1") in ours
    assert ("-monitor", "unix:/run/ctys-libvirt/x/monitor.sock,server,nowait") in ours
    assert ("-serial", "file:/run/ctys-libvirt/x/serial.log") in ours


def test_kvmkern_append_is_emitted_and_argsadd_last(tmp_path):
    vm = vms.kvmkern(tmp_path)
    for key in ("0.9.1-kvm-83", "0.12.5-qemu-kvm", "2.11.1"):
        argv = build_argv(resolve_plan(vm, BootRequest(vnc_display=4), host_facts()), _fake_probe(tmp_path, key), runtime=RT)
        i = argv.index("-append")
        assert argv[i + 1] == "root=/dev/sda1 ro console=ttyS0"   # one element, never split
        assert argv[argv.index("-kernel") + 1].endswith("vmlinuz-2.6.32-5-amd64")
        assert argv[-3:] == ["-usb", "-usbdevice", "tablet"]


def test_cd_goes_to_cdrom_fdd_to_fda_and_hdd_kept(tmp_path):
    vm = vms.debian5(tmp_path)
    legacy = _fake_probe(tmp_path, "0.9.1")
    modern = synthetic_probe("7.2.0")
    cd = resolve_plan(vm, BootRequest(bootmode=BootMode.CD, console=ConsoleType.NONE), host_facts())
    a = build_argv(cd, legacy, runtime=RT)
    assert a[a.index("-cdrom") + 1] == str(vm.cd_image)
    assert a[a.index("-hda") + 1] == str(vm.hdd_boot_image)
    assert a[a.index("-boot") + 1] == "d"
    m = build_argv(cd, modern, runtime=RT)
    assert f"file={vm.cd_image},format=raw,if=ide,index=2,media=cdrom" in m
    assert m[m.index("-boot") + 1] == "order=dc"
    fd = tmp_path / "fd.img"
    fd.write_bytes(b"\0" * 512)
    fdd = resolve_plan(vm, BootRequest(bootmode=BootMode.FDD, boot_path=str(fd), console=ConsoleType.NONE), host_facts())
    a = build_argv(fdd, legacy, runtime=RT)
    assert a[a.index("-fda") + 1] == str(fd) and a[a.index("-boot") + 1] == "a"


def test_console_none_keeps_disks_and_argsadd(tmp_path):
    vm = vms.kvmkern(tmp_path)
    argv = build_argv(resolve_plan(vm, BootRequest(console=ConsoleType.NONE), host_facts()), _fake_probe(tmp_path, "0.9.1"),
                      runtime=RT)
    assert "-hda" in argv and "-hdb" in argv and argv[-3:] == ["-usb", "-usbdevice", "tablet"]
    assert "-vnc" not in argv and "-nographic" in argv


@pytest.mark.parametrize("console", [ConsoleType.CLI, ConsoleType.XTERM, ConsoleType.EMACSAM])
def test_serial_consoles_get_the_prepared_vnc_display(tmp_path, console):
    """The manual: the VNC port is prepared for later attachment for the CLI family; the
    serial line stays on its socket."""
    plan = resolve_plan(vms.debian5(tmp_path), BootRequest(console=console), host_facts())
    r = build_argv_result(plan, synthetic_probe("7.2.0"), runtime=RT, vnc_display=4)
    assert r.argv[r.argv.index("-vnc") + 1] == "127.0.0.1:4" and r.vnc_display == 4
    assert "-display" not in r.argv and "-nographic" not in r.argv
    assert f"unix:{RT.serial_sock},server=on,wait=off" in r.argv
    # without a display given (e.g. `ctys-libvirt argv`), headless as before
    bare = build_argv(plan, synthetic_probe("7.2.0"), runtime=RT)
    assert "-vnc" not in bare and bare[bare.index("-display") + 1] == "none"


def test_cli0_foreground_is_nographic_without_daemonize(tmp_path):
    vm = vms.debian5(tmp_path)
    plan = resolve_plan(vm, BootRequest(console=ConsoleType.CLI0), host_facts())
    fg = build_argv(plan, synthetic_probe("7.2.0"), runtime=RT, daemonize=False)
    assert "-nographic" in fg and "-daemonize" not in fg and "-serial" not in fg
    bg = build_argv(plan, synthetic_probe("7.2.0"), runtime=RT, daemonize=True)
    assert "-daemonize" in bg and f"unix:{RT.serial_sock},server=on,wait=off" in bg


def test_spelling_follows_options_not_version(tmp_path):
    """A 0.12.5 build whose -h lacks -netdev gets the legacy -net/-hda spelling."""
    text = (HELP_DIR / "qemu-0.12.5.txt").read_text()
    text = "\n".join(l for l in text.splitlines() if not l.startswith("-netdev"))
    pr = probe_text("/opt/qemu/bin/qemu", text)
    assert pr.version == (0, 12, 5) and not pr.has("-netdev")
    vm = vms.debian5(tmp_path)
    argv = build_argv(resolve_plan(vm, BootRequest(vnc_display=1), host_facts()), pr, runtime=RT)
    assert "-hda" in argv and "-drive" not in argv
    assert "nic,macaddr=00:50:56:13:11:40,model=rtl8139" in argv and "-netdev" not in argv
    assert argv[argv.index("-rtc") + 1] == "base=localtime"   # -rtc is listed there


def test_vga_spelling(tmp_path):
    vm = vms.kvmkern(tmp_path)  # VGADRIVER std
    plan = resolve_plan(vm, BootRequest(vnc_display=1), host_facts())
    assert "-std-vga" in build_argv(plan, _fake_probe(tmp_path, "0.9.1"), runtime=RT)
    a = build_argv(plan, _fake_probe(tmp_path, "0.10.6"), runtime=RT)
    assert a[a.index("-vga") + 1] == "std" and "-std-vga" not in a


def test_accelerators(tmp_path, monkeypatch):
    vm = vms.debian5(tmp_path)               # ACCELERATOR=KVM
    plan = resolve_plan(vm, BootRequest(vnc_display=1), host_facts())
    fork = build_argv(plan, _fake_probe(tmp_path, "0.12.5-qemu-kvm"), runtime=RT)
    assert "-no-kvm" not in fork and "-enable-kvm" not in fork      # KVM implicit in forks
    assert build_argv(plan, _fake_probe(tmp_path, "0.11.1"), runtime=RT).count("-enable-kvm") == 1
    a = build_argv(plan, synthetic_probe("7.2.0"), runtime=RT)
    assert a[a.index("-accel") + 1] == "kvm"
    tcg = resolve_plan(vms.centos55(tmp_path), BootRequest(vnc_display=1), host_facts())   # ACCELERATOR=QEMU
    assert "-no-kvm" in build_argv(tcg, _fake_probe(tmp_path, "0.12.5-qemu-kvm"), runtime=RT)
    monkeypatch.setenv("CTYS_KVM_DEVICE", str(tmp_path / "nokvm"))
    res = build_argv_result(plan, synthetic_probe("7.2.0"), runtime=RT)
    assert res.argv[res.argv.index("-accel") + 1] == "tcg"
    assert any("KVM is not usable" in w for w in res.warnings)


def test_kqemu(tmp_path, monkeypatch):
    import dataclasses

    vm = dataclasses.replace(vms.centos55(tmp_path), accelerator="KQEMU")
    plan = resolve_plan(vm, BootRequest(vnc_display=1), host_facts())
    kq = _fake_probe(tmp_path, "0.9.1-kqemu")
    with pytest.raises(BackendError, match="/dev/kqemu does not exist"):
        build_argv(plan, kq, runtime=RT)
    dev = tmp_path / "kqemu"
    dev.write_bytes(b"")
    monkeypatch.setenv("CTYS_KQEMU_DEVICE", str(dev))
    kq = _fake_probe(tmp_path, "0.9.1-kqemu")
    assert "KQEMU" in kq.accelerators
    argv = build_argv(plan, kq, runtime=RT)
    assert "-kernel-kqemu" in argv and "-no-kqemu" not in argv
    with pytest.raises(BackendError, match=r"QEMU 0\.12\.5 .* has no KQEMU support"):
        build_argv(plan, _fake_probe(tmp_path, "0.12.5"), runtime=RT)
    # a plain QEMU run on a kqemu build switches kqemu off explicitly
    plain = resolve_plan(vms.centos55(tmp_path), BootRequest(vnc_display=1), host_facts())
    assert "-no-kqemu" in build_argv(plain, kq, runtime=RT)


def test_argsadd_lint_warns_and_strict_fails(tmp_path):
    import dataclasses

    vm = dataclasses.replace(vms.debian5(tmp_path), argsadd="-soundhw ac97 -localtime -net nic,vlan=0")
    plan = resolve_plan(vm, BootRequest(vnc_display=1), host_facts())
    res = build_argv_result(plan, synthetic_probe("7.2.0"), runtime=RT)
    text = "\n".join(res.warnings)
    assert "ARGSADD -soundhw: removed in QEMU 7.1.0; QEMU 7.2.0" in text
    assert "ARGSADD -localtime: removed in QEMU 3.1.0" in text and "-rtc base=localtime" in text
    assert "'vlan=' was removed in QEMU 3.0" in text
    assert res.argv[-5:] == ["-soundhw", "ac97", "-localtime", "-net", "nic,vlan=0"]  # verbatim
    with pytest.raises(UsageError, match=r"-soundhw.*QEMU 7\.2\.0"):
        build_argv(plan, synthetic_probe("7.2.0"), runtime=RT, strict=True)
    # the same words are fine for 0.9.1
    ok = build_argv_result(plan, _fake_probe(tmp_path, "0.9.1"), runtime=RT)
    assert not [w for w in ok.warnings if w.startswith("ARGSADD")]


def test_monitor_kind_and_socket_booleans(tmp_path):
    vm = vms.debian5(tmp_path)
    plan = resolve_plan(vm, BootRequest(vnc_display=1), host_facts())
    assert build_argv_result(plan, _fake_probe(tmp_path, "0.12.5"), runtime=RT).monitor_kind == "hmp"
    r = build_argv_result(plan, _fake_probe(tmp_path, "0.14.1-qemu-kvm"), runtime=RT)
    assert r.monitor_kind == "qmp" and f"unix:{RT.qmp},server,nowait" in r.argv
    r = build_argv_result(plan, synthetic_probe("7.2.0"), runtime=RT)
    assert f"unix:{RT.qmp},server=on,wait=off" in r.argv


def test_comma_in_path_is_escaped_and_argv_is_a_list(tmp_path):
    d = tmp_path / "a,b dir"
    vm = vms.debian5(d)
    argv = build_argv(resolve_plan(vm, BootRequest(vnc_display=1), host_facts()), synthetic_probe("7.2.0"), runtime=RT)
    assert isinstance(argv, list) and all(isinstance(a, str) for a in argv)
    assert any(a.startswith(f"file={str(d).replace(',', ',,')}/debian5/hda.img,format=raw") for a in argv)


def test_pidfile_required(tmp_path):
    text = "\n".join(l for l in (HELP_DIR / "qemu-0.9.0.txt").read_text().splitlines()
                     if not l.startswith("-pidfile"))
    pr = probe_text("/usr/bin/qemu", text)
    with pytest.raises(BackendError, match=r"QEMU 0\.9\.0 .* does not list -pidfile"):
        build_argv(resolve_plan(vms.debian5(tmp_path), BootRequest(vnc_display=1), host_facts()), pr, runtime=RT)


@pytest.mark.parametrize("key,accelerator,expect", [
    ("7.2.22-debian12", "KVM", "host"),     # KVM usable (the fixture's device): passed through
    ("7.2.22-debian12", "QEMU", "max"),     # QEMU refuses -cpu host under TCG
    ("1.7.0", "QEMU", None),                # no 'max' model before 2.9: the build's default
])
def test_cpu_host_needs_kvm(tmp_path, key, accelerator, expect):
    import dataclasses

    vm = dataclasses.replace(vms.debian5(tmp_path), cpu="host", accelerator=accelerator)
    res = build_argv_result(resolve_plan(vm, BootRequest(console=ConsoleType.NONE), host_facts()),
                            _fake_probe(tmp_path, key), runtime=RT)
    cpu = dict((o, v) for o, v in _pairs(res.argv) if o == "-cpu").get("-cpu")
    assert cpu == expect
    assert any("CPU=host needs KVM" in w for w in res.warnings) == (expect != "host")
