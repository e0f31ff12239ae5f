"""``ctys-libvirt argv`` / ``doctor`` / ``argv --compare`` end to end (console script)."""
from __future__ import annotations

import json

import pytest

from support.cli import run_cli
from support.fakeqemu import HELP_DIR, make_fake
from support.paths import EXAMPLE_CONFS as EXAMPLES



def run(*args, env=None):
    return run_cli(*args, env=env, timeout=120)


@pytest.fixture
def confs(tmp_path, monkeypatch):
    """The example confs with /vm/qemu/<label> rewritten to tmp and their files created."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    out = {}
    for label in ("debian5", "centos55", "kvmkern"):
        d = tmp_path / label
        (d / "boot").mkdir(parents=True)
        text = (EXAMPLES / label / f"{label}.ctys").read_text().replace(f"/vm/qemu/{label}", str(d))
        (d / f"{label}.ctys").write_text(text)
        for f in ("hda.img", "hdb.img", "boot/vmlinuz-2.6.32-5-amd64", "boot/initrd.img-2.6.32-5-amd64"):
            (d / f).write_bytes(b"\0" * 512)
        out[label] = d
    return out


def test_argv_lines_for_fake_legacy_binary(confs, tmp_path):
    fake = make_fake(tmp_path / "bin", "0.9.1-kvm-83")
    r = run("argv", str(confs["debian5"]), "--qemu", str(fake), "--console", "VNC:3",
            "--runtime-dir", "/run/x", "--mydist", "CentOS")
    assert r.returncode == 0, r.stderr
    argv = r.stdout.splitlines()
    d = confs["debian5"]
    assert argv == [str(fake), "-name", "debian5", "-m", "1024", "-smp", "2", "-cpu", "qemu64",
                    "-localtime", "-k", "de", "-hda", f"{d}/hda.img", "-boot", "c",
                    "-net", "nic,macaddr=00:50:56:13:11:40,model=rtl8139", "-net", "user",
                    "-vnc", "127.0.0.1:3", "-serial", "file:/run/x/debian5/serial.log",
                    "-monitor", "unix:/run/x/debian5/monitor.sock,server,nowait",
                    "-pidfile", "/run/x/debian5/qemu.pid", "-daemonize"]
    # VGADRIVER cirrus on a build that lists neither -vga nor needs -std-vga: default card
    assert "-vga" not in argv


def test_argv_json_qemu_version_and_lint(confs):
    r = run("argv", str(confs["kvmkern"]), "--qemu-version", "7.2.0", "--format", "json",
            "--console", "NONE", "--argsadd", "-soundhw ac97")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["qemu"]["version"] == "7.2.0" and out["spelling"] == "modern"
    assert out["argv"][-5:] == ["-usb", "-usbdevice", "tablet", "-soundhw", "ac97"]
    assert "-append" in out["argv"] and out["monitor"]["kind"] == "qmp"
    assert "ARGSADD -soundhw: removed in QEMU 7.1.0; QEMU 7.2.0" in r.stderr
    strict = run("argv", str(confs["kvmkern"]), "--qemu-version", "7.2.0", "--strict",
                 "--argsadd", "-soundhw ac97", "--console", "NONE")
    assert strict.returncode == 1 and strict.stdout == ""
    assert strict.stderr.count("\n") == 1 and "-soundhw" in strict.stderr and "Traceback" not in strict.stderr


@pytest.mark.parametrize("args,code,text", [
    (["--qemu", "/nonexistent/qemu"], 4, "QEMU binary /nonexistent/qemu not found"),
    (["--qemu-version", "x.y"], 1, "--qemu-version 'x.y' is not X.Y or X.Y.Z"),
    (["--kvm-fork", "--qemu-version", "0.12.5", "--qemu", "/usr/bin/qemu-system-x86_64"], 1,
     "--kvm-fork/--kqemu only apply to --qemu-version without --qemu"),
    (["--format", "yaml", "--qemu-version", "7.2"], 1, "unknown --format"),
])
def test_argv_bad_input(confs, args, code, text):
    r = run("argv", str(confs["debian5"]), *args)
    assert r.returncode == code and text in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_argv_kqemu_without_device(confs, tmp_path):
    conf = confs["centos55"] / "centos55.ctys"
    conf.write_text(conf.read_text().replace("ACCELERATOR=${ACCELERATOR:-QEMU}", "ACCELERATOR=KQEMU"))
    env = {"CTYS_KQEMU_DEVICE": str(tmp_path / "nodev")}
    r = run("argv", str(conf), "--qemu", str(make_fake(tmp_path / "b", "0.9.1-kqemu")), env=env)
    assert r.returncode == 4 and "ACCELERATOR=KQEMU but /dev/kqemu does not exist" in r.stderr


def test_argv_hanging_binary(confs, tmp_path):
    r = run("argv", str(confs["debian5"]), "--qemu", str(make_fake(tmp_path, "0.9.1", behaviour="crash-help")))
    assert r.returncode == 4 and "crashed on '-h'" in r.stderr


def test_doctor_table_and_json(tmp_path):
    fake = make_fake(tmp_path, "0.12.5-qemu-kvm")
    r = run("doctor", "--qemu", str(fake), "--format", "json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    by = {b["path"]: b for b in d["binaries"]}
    assert by[str(fake)]["version"] == "0.12.5" and by[str(fake)]["magic"] == "QEMU_012"
    assert by[str(fake)]["kvm_fork"] and by[str(fake)]["source"] == "--qemu"
    assert by["/usr/bin/qemu-system-x86_64"]["magic"] == "QEMU_GENERIC"
    assert d["libvirt"]["reachable"] and d["choice"]["kind"] == "libvirt"
    t = run("doctor")
    assert "Backend 'auto' picks: libvirt" in t.stdout and "/usr/bin/qemu-system-x86_64" in t.stdout


def test_doctor_falls_back_to_direct_when_libvirt_unreachable():
    r = run("doctor", "--connect", "qemu+unix:///system?socket=/nonexistent/sock", "--format", "json")
    d = json.loads(r.stdout)
    assert d["choice"]["kind"] == "direct" and not d["libvirt"]["reachable"]
    assert any("not reachable" in x for x in d["choice"]["reasons"])
    assert any("direct will run" in x for x in d["choice"]["reasons"])


@pytest.mark.libvirt
@pytest.mark.parametrize("label,extra", [("debian5", []), ("centos55", []), ("kvmkern", []),
                                         ("debian5", ["--bootmode", "CD%/dev/null", "--allow-device", "/dev/null"])])
def test_compare_with_libvirt_to_native(confs, label, extra):
    r = run("argv", str(confs[label]), "--qemu", "/usr/bin/qemu-system-x86_64", "--console", "VNC:5",
            "--compare", "--format", "json", *extra)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["compare"]["differences"] == [], out["compare"]
    assert out["compare"]["libvirt_argv"][0].endswith("qemu-system-x86_64")


def test_compare_reports_a_difference(confs, monkeypatch):
    from ctys_libvirt.qemu.compare import compare, summarize

    ours = ["q", "-m", "1024", "-drive", "file=/a,format=raw,if=ide,index=0,media=disk", "-boot", "order=c",
            "-vnc", "127.0.0.1:5", "-usb"]
    theirs = ["q", "-m", "size=1048576k", "-blockdev",
              '{"driver":"file","filename":"/a","node-name":"s1"}', "-blockdev",
              '{"node-name":"f1","driver":"raw","file":"s1"}', "-device",
              '{"driver":"ide-hd","bus":"ide.0","unit":0,"drive":"f1","bootindex":1}', "-vnc", "127.0.0.1:6"]
    assert summarize(theirs).disks == [("/a", "disk")] and summarize(theirs).memory_mib == 1024
    diffs = compare(ours, theirs, ["-usb"])
    assert diffs == ["vnc: ours '127.0.0.1:5' libvirt '127.0.0.1:6'",
                     "passthrough: ARGSADD ['-usb'] not in libvirt's argv"]


def test_qemu_version_states_the_version_of_an_unreadable_banner(confs, tmp_path):
    """A build whose banner we cannot read: exit 4 naming --qemu-version; with it, the
    binary's own option list is used at the stated version."""
    help_text = (HELP_DIR / "qemu-0.12.5.txt").read_text()
    odd = tmp_path / "vendor-emu"
    odd.write_text("#!/bin/sh\ncat <<'EOF'\n" + help_text.replace(
        "QEMU PC emulator version 0.12.5", "VendorEmu build 42 (based on an old tree)", 1) + "EOF\n")
    odd.chmod(0o755)
    r = run("argv", str(confs["debian5"]), "--qemu", str(odd))
    assert r.returncode == 4 and "--qemu-version X.Y.Z" in r.stderr and str(odd) in r.stderr
    r = run("argv", str(confs["debian5"]), "--qemu", str(odd), "--qemu-version", "0.12.5",
            "--format", "json")
    assert r.returncode == 0, r.stderr
    argv = json.loads(r.stdout)["argv"]
    assert argv[0] == str(odd) and "-drive" in argv and "-hda" not in argv
