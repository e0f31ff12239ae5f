"""VMs whose directories, conf names and image/ISO/kernel paths hold awkward characters
(blanks, parentheses, commas, quotes, non-ASCII, ``:``, ``=``, ``;``, ``#``, ``$``, ``&``,
a leading dash, 200+ character paths) boot, list and cancel through both backends with
the real libvirtd and the real qemu-system-x86_64, through the CLI.

Per backend one batch: every odd VM is created (a few at a time), its serial marker read,
``list --format records`` must carry its conf path in the ID field (escaped as the README
says), one ``cancel --mode FORCE`` stops them all.  ``xml`` output validates against
libvirt's RelaxNG schema and ``argv --format json`` matches what the direct backend ran.
CD (ISO) and KERNEL (multiboot kernel + module + command line with blanks and a comma)
boot from odd paths in both backends."""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List

import pytest

from ctys_libvirt.ctys.records import unescape
from lifecycle_helpers import CLI, janitor, run_cli, unique_label, wait_marker  # noqa: F401
from translate_helpers import assert_valid

pytestmark = [pytest.mark.libvirt, pytest.mark.qemu]
QEMU = "/usr/bin/qemu-system-x86_64"

# tag -> directory name (relative to the test's vmroot)
ODD: Dict[str, str] = {
    "paren": "Win XP (old)",
    "comma": "vm,test",
    "quote": "o'brien",
    "uni": "ünïcödé",
    "colon": "a:b",
    "eqsemi": "x=y;z",
    "hash": "with#hash",
    "dollar": "$dollar",
    "amp": "amp&lt",
    "dash": "-dash",
    "mixed": "sp ace, 'q\"uote",
    "long": "/".join(["long path " + c * 70 for c in "xyz"]),
}


class OddVm:
    def __init__(self, vmroot: Path, tag: str, backend: str, media: dict, guest: str = "hello"):
        self.tag = tag
        self.label = unique_label(f"{backend[0]}{tag}")
        self.dir = vmroot / backend / ODD[tag]
        self.dir.mkdir(parents=True, mode=0o755)
        for p in [self.dir, *self.dir.parents]:     # libvirt-qemu must traverse every level
            if p == vmroot:
                break
            os.chmod(p, 0o755)
        leaf = self.dir.name if tag != "long" else "conf"
        self.conf = self.dir / f"{leaf}.ctys"
        assert tag != "long" or len(str(self.conf)) > 200
        img_name = f"{leaf} hda,1.img"
        self.image = self.dir / img_name
        shutil.copyfile(media[guest], self.image)
        os.chmod(self.image, 0o644)
        self.log = self.dir / "serial ,log.txt"
        # half the confs name the image literally, half through ${CTYSWRAPPERPATH}
        if sum(map(ord, tag)) % 2:
            hdd = shlex.quote(str(self.image))
        else:
            hdd = '"${CTYSWRAPPERPATH}"/' + shlex.quote(img_name)
        self.conf.write_text(
            "#@#MAGICID-QEMU\n"
            f'#@#LABEL = "{self.label}"\n'
            f'LABEL="{self.label}"\n'
            "#@#IP0 = \"10.0.0.9\"\n"
            "ACCELERATOR=QEMU\nMEMSIZE=16\nSMP=1\nARCH=x86_64\nNIC=\n"
            f"HDDBOOTIMAGE={hdd}\n")

    def copy(self, src: Path, name: str) -> Path:
        dst = self.dir / name
        shutil.copyfile(src, dst)
        os.chmod(dst, 0o644)
        return dst


def split_record(line: str) -> List[str]:
    """Split a LIST record on unescaped ``;`` and unescape each field."""
    out, cur, i = [], "", 0
    while i < len(line):
        c = line[i]
        if c == "\\" and i + 1 < len(line):
            cur += line[i:i + 2]
            i += 2
            continue
        if c == ";":
            out.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    out.append(cur)
    return [unescape(f) for f in out]


def records_by_label(stdout: str) -> Dict[str, List[str]]:
    recs = {}
    for line in stdout.splitlines():
        f = split_record(line)
        assert len(f) == 22, line
        recs[f[2]] = f
    return recs


def ok(proc, what: str):
    assert proc.returncode == 0, f"{what}: exit {proc.returncode}: {proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def drive_files(argv: List[str]) -> List[str]:
    """The file= values of every -drive (QEMU's ',,' unescaped)."""
    files = []
    for i, a in enumerate(argv[:-1]):
        if a == "-drive":
            spec = argv[i + 1]
            assert spec.startswith("file="), spec
            # the path ends at the first single (unpaired) comma
            j, val = 5, ""
            while j < len(spec):
                if spec[j] == "," and spec[j + 1:j + 2] == ",":
                    val += ","
                    j += 2
                elif spec[j] == ",":
                    break
                else:
                    val += spec[j]
                    j += 1
            files.append(val)
    return files


def check_xml(vm: OddVm, *extra: str) -> None:
    p = ok(run_cli("xml", str(vm.conf), "--console", "NONE", "--serial-log", str(vm.log), *extra),
           f"xml {vm.tag}")
    root = assert_valid(p.stdout)
    assert root.findtext("name") == vm.label
    srcs = [d.find("source").get("file") for d in root.iterfind("devices/disk")]
    assert str(vm.image) in srcs, (vm.tag, srcs)
    assert root.find("devices/serial/log").get("file") == str(vm.log)


def check_argv(vm: OddVm, rtbase: Path, *extra: str) -> List[str]:
    p = ok(run_cli("argv", str(vm.conf), "--qemu", QEMU, "--console", "NONE", "--runtime-dir",
                   str(rtbase), "--format", "json", *extra), f"argv {vm.tag}")
    out = json.loads(p.stdout)
    argv = out["argv"]
    assert argv[0] == QEMU
    assert str(vm.image) in drive_files(argv), (vm.tag, argv)
    return argv


# -- libvirt ------------------------------------------------------------------------


def test_odd_paths_libvirt_create_list_cancel(vmroot, media, janitor, libvirt_conn):
    vms = [OddVm(vmroot, tag, "libvirt", media) for tag in ODD]
    janitor.add(*[v.label for v in vms])

    def create(vm: OddVm):
        return vm, run_cli("create", str(vm.conf), "--console", "NONE", "--serial-log", str(vm.log),
                           "--format", "json")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(check_xml, vms))
        results = list(pool.map(create, vms))
    # a relative conf path with a leading dash, after "--"
    p = subprocess.run(CLI + ["xml", "--console", "NONE", "--", "-dash/-dash.ctys"],
                       cwd=vmroot / "libvirt", capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "<name>ctystest-ldash-" in p.stdout, p.stderr
    for vm, p in results:
        ok(p, f"create {vm.tag} ({vm.dir})")
        assert json.loads(p.stdout)["backend"] == "libvirt"
    for vm in vms:
        wait_marker(vm.log, "CTYS-GUEST-OK")
    out = ok(run_cli("list", "--format", "records", "--backend", "libvirt"), "list").stdout
    assert "/x=y\\;z/" in out                   # ';' inside the ID field is escaped
    recs = records_by_label(out)
    for vm in vms:
        assert vm.label in recs, (vm.tag, sorted(recs))
        assert recs[vm.label][3] == str(vm.conf), (vm.tag, recs[vm.label])
        assert recs[vm.label][6] == "10.0.0.9"
        dom = libvirt_conn.lookupByName(vm.label)
        assert dom.isActive()
    p = ok(run_cli("cancel", *[v.label for v in vms], "--mode", "FORCE", "--format", "json",
                   "--backend", "libvirt"), "cancel")
    for vm in vms:
        assert not libvirt_conn.lookupByName(vm.label).isActive(), vm.tag
    assert "shutoff" in p.stdout or "shut off" in p.stdout


def test_odd_paths_libvirt_cd_and_kernel(vmroot, media, janitor, libvirt_conn):
    cd = OddVm(vmroot, "mixed", "libvirt", media, guest="acpi")      # HDD holds the other guest
    iso = cd.copy(media["hello-iso"], "boot cd, (1).iso")
    kern = OddVm(vmroot, "dollar", "libvirt", media)
    kbin = kern.copy(media["mbkernel"], "mb kernel,1 'x'.bin")      # kernel: anything goes
    kmod = kern.copy(media["mbkernel-mod"], "mod(1)$#&=:x.txt")      # module: no blank, no comma
    cmdline = "console=ttyS0 ctys=hello, world x=a,b"
    janitor.add(cd.label, kern.label)
    check_xml(cd, "--bootmode", f"CD%{iso}")
    ok(run_cli("create", str(cd.conf), "--console", "NONE", "--serial-log", str(cd.log),
               "--bootmode", f"CD%{iso}"), "create CD")
    ok(run_cli("create", str(kern.conf), "--console", "NONE", "--serial-log", str(kern.log),
               "--bootmode", "KERNEL", "--kernel", f"{kbin}%{kmod}%{cmdline}"), "create KERNEL")
    text = wait_marker(cd.log, "CTYS-GUEST-OK")
    assert "ACPI" not in text                    # the ISO booted, not the disk
    text = wait_marker(kern.log, "CTYS-KERNEL-OK")
    line = next(l for l in text.splitlines() if l.startswith("CTYS-KERNEL-OK"))
    assert line.rstrip("\r").endswith(f" {cmdline} mods=1 mod0=hello module"), line
    assert str(kbin) in line                     # multiboot: the kernel path leads the cmdline
    ok(run_cli("cancel", cd.label, kern.label, "--mode", "FORCE", "--backend", "libvirt"), "cancel")
    for vm in (cd, kern):
        assert not libvirt_conn.lookupByName(vm.label).isActive()


@pytest.mark.parametrize("tag,mod,what", [("comma", "mod.txt", "comma"), ("paren", "mod.txt", "blank"),
                                          ("amp", "mod,1.txt", "comma")])
def test_libvirt_multiboot_module_path_qemu_cannot_split(vmroot, media, janitor, libvirt_conn,
                                                        tag, mod, what):
    """libvirt passes -initrd verbatim and QEMU's multiboot loader splits it at ',' and
    ' ': a clear conf error (exit 3) naming the module, nothing defined or started."""
    from lifecycle_helpers import assert_one_line_error

    vm = OddVm(vmroot, tag, "libvirt", media)
    janitor.add(vm.label)
    kbin = vm.copy(media["mbkernel"], "k.bin")
    kmod = vm.copy(media["mbkernel-mod"], mod)
    for cmd in ("xml", "create"):
        p = run_cli(cmd, str(vm.conf), "--console", "NONE", "--bootmode", "KERNEL",
                    "--kernel", f"{kbin}%{kmod}%x")
        line = assert_one_line_error(p, 3, f"multiboot module {kmod} has a {what}", "symlink")
        assert ("--backend direct" in line) == (what == "comma")
    assert vm.label not in libvirt_conn.listDefinedDomains()


# -- direct -------------------------------------------------------------------------


@pytest.fixture
def rtbase(tmp_path, monkeypatch):
    """A private runtime base for the direct backend (CTYS_RUNTIME_DIR); every QEMU still
    running in it is stopped with FORCE afterwards, even when the test failed."""
    from ctys_libvirt.backends.direct import DirectBackend
    from ctys_libvirt.model import CancelMode

    top = Path(tempfile.mkdtemp(prefix="ctysodd", dir="/tmp"))
    os.chmod(top, 0o755)    # QEMU runs as libvirt-qemu: its runtime dir must be reachable
    base = top / "rt, $d 'x'"      # the runtime base may be odd too (XDG_RUNTIME_DIR, $CTYS_RUNTIME_DIR)
    base.mkdir()
    monkeypatch.setenv("CTYS_RUNTIME_DIR", str(base))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    yield base
    be = DirectBackend(qemu=QEMU, base=base)
    for rt in be._dirs():
        try:
            be.cancel(rt.label, CancelMode.FORCE)
        except Exception:
            pass
    shutil.rmtree(top, ignore_errors=True)


def direct(*args: str, rtbase: Path):
    return run_cli(*args, env={"CTYS_RUNTIME_DIR": str(rtbase)})


def test_odd_paths_direct_create_list_cancel(vmroot, media, rtbase):
    vms = [OddVm(vmroot, tag, "direct", media) for tag in ODD]
    argvs = {}

    def prepare(vm: OddVm):
        argvs[vm.tag] = check_argv(vm, rtbase)

    def create(vm: OddVm):
        return vm, direct("create", str(vm.conf), "--backend", "direct", "--qemu", QEMU,
                          "--console", "NONE", "--serial-log", str(vm.log), "--format", "json",
                          rtbase=rtbase)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(prepare, vms))
        results = list(pool.map(create, vms))
    pids = {}
    for vm, p in results:
        ok(p, f"create {vm.tag} ({vm.dir})")
        res = json.loads(p.stdout)
        assert res["backend"] == "direct"
        pids[vm.tag] = res["pid"]
    for vm in vms:
        wait_marker(vm.log, "CTYS-GUEST-OK")
        rt = rtbase / vm.label
        ran = json.loads((rt / "argv.json").read_text())
        assert str(vm.image) in drive_files(ran)
        assert ran[ran.index("-serial") + 1] == f"file:{vm.log}"
        if "-sandbox" in ran:       # started by us as libvirt-qemu: we write the pidfile
            assert "-pidfile" not in ran and "-daemonize" not in ran
            assert int((rt / "qemu.pid").read_text()) == pids[vm.tag]
        else:
            assert ran[ran.index("-pidfile") + 1] == str(rt / "qemu.pid")
        mon = ran[ran.index("-qmp") + 1]
        assert mon == f"unix:{str(rt / 'qmp.sock').replace(',', ',,')},server=on,wait=off"
        # `argv` printed the same command line, apart from the serial log the CLI was given
        want = [a if a != f"file:{vm.log}" else f"file:{rt / 'serial.log'}" for a in ran]
        assert argvs[vm.tag] == want, vm.tag
        cmd = open(f"/proc/{pids[vm.tag]}/cmdline", "rb").read().split(b"\0")[:-1]
        assert [c.decode() for c in cmd] == ran
    recs = records_by_label(ok(direct("list", "--format", "records", "--backend", "direct",
                                      rtbase=rtbase), "list").stdout)
    for vm in vms:
        assert vm.label in recs, (vm.tag, sorted(recs))
        assert recs[vm.label][3] == str(vm.conf), (vm.tag, recs[vm.label])
        assert recs[vm.label][10] == str(pids[vm.tag])
    p = ok(direct("cancel", *[v.label for v in vms], "--mode", "FORCE", "--backend", "direct",
                  "--format", "json", rtbase=rtbase), "cancel")
    assert p.stdout.count("shutoff") >= len(vms), p.stdout
    for vm in vms:
        assert not Path(f"/proc/{pids[vm.tag]}/cmdline").exists() or \
            open(f"/proc/{pids[vm.tag]}/stat").read().split(")")[1].split()[0] in "ZX"
    assert os.listdir(rtbase) == []


def test_odd_paths_direct_cd_and_kernel(vmroot, media, rtbase):
    cd = OddVm(vmroot, "mixed", "direct", media, guest="acpi")
    iso = cd.copy(media["hello-iso"], "boot cd, (1).iso")
    kern = OddVm(vmroot, "colon", "direct", media)
    kbin = kern.copy(media["mbkernel"], "mb kernel,1 'x'.bin")
    kmod = kern.copy(media["mbkernel-mod"], "mod,1.txt")
    cmdline = "console=ttyS0 ctys=hello, world x=a,b"
    argv = check_argv(cd, rtbase, "--bootmode", f"CD%{iso}")
    assert str(iso) in drive_files(argv)
    for vm, extra in ((cd, ("--bootmode", f"CD%{iso}")),
                      (kern, ("--bootmode", "KERNEL", "--kernel", f"{kbin}%{kmod}%{cmdline}"))):
        ok(direct("create", str(vm.conf), "--backend", "direct", "--qemu", QEMU, "--console", "NONE",
                  "--serial-log", str(vm.log), *extra, rtbase=rtbase), f"create {vm.tag}")
    text = wait_marker(cd.log, "CTYS-GUEST-OK")
    assert "ACPI" not in text
    # SUSPEND/RESUME: the state file in the odd runtime base goes through QEMU's exec: (a shell)
    for mode, state in (("SUSPEND", "shutoff"), ("RESUME", "running")):
        p = ok(direct("cancel", cd.label, "--mode", mode, "--backend", "direct", "--format", "json",
                      rtbase=rtbase), mode)
        assert json.loads(p.stdout)[0]["state"] == state, p.stdout
    text = wait_marker(kern.log, "CTYS-KERNEL-OK")
    line = next(l for l in text.splitlines() if l.startswith("CTYS-KERNEL-OK"))
    assert line.rstrip("\r").endswith(f" {cmdline} mods=1 mod0=hello module"), line
    ok(direct("cancel", cd.label, kern.label, "--mode", "FORCE", "--backend", "direct",
              rtbase=rtbase), "cancel")
    assert os.listdir(rtbase) == []
    # a blank in a multiboot module path has no escape in QEMU: exit 3, nothing started
    from lifecycle_helpers import assert_one_line_error

    blank = kern.copy(media["mbkernel-mod"], "mod 2.txt")
    for cmd in (("argv", "--qemu", QEMU), ("create", "--backend", "direct", "--qemu", QEMU)):
        p = direct(cmd[0], str(kern.conf), *cmd[1:], "--console", "NONE", "--bootmode", "KERNEL",
                   "--kernel", f"{kbin}%{blank}%x", rtbase=rtbase)
        assert_one_line_error(p, 3, f"multiboot module {blank} has a blank", "symlink")
    assert os.listdir(rtbase) == []


# -- in-process: which -initrd spellings each loader needs (no VM started) ----------------


@pytest.mark.parametrize("multiboot", [True, False])
def test_initrd_spelling_follows_the_kernel_loader(vmroot, media, multiboot):
    """Only QEMU's multiboot loader splits -initrd (',' and ' '); a Linux kernel's initrd
    path goes through verbatim in both backends, whatever it holds."""
    from ctys_libvirt.errors import ConfError
    from ctys_libvirt.qemu.probe import synthetic_probe
    from ctys_libvirt.qemu.runtime import RuntimeDirs
    from ctys_libvirt.translate.argv import build_argv
    from ctys_libvirt.translate.plan import multiboot_kernel, resolve_plan
    from ctys_libvirt.translate.request import make_request
    from ctys_libvirt.translate.xml import build_domain
    from translate_helpers import FIXED_CAPS, make_vm

    d = vmroot / "k,dir"
    d.mkdir()
    kernel = d / "kernel"
    if multiboot:
        shutil.copyfile(media["mbkernel"], kernel)
    else:   # a bzImage: the Linux boot header wins even over a multiboot magic further on
        kernel.write_bytes(b"\0" * 0x202 + b"HdrS" + b"\0" * 0x1000
                           + (0x1BADB002).to_bytes(4, "little") + b"\0" * 4
                           + ((-0x1BADB002) & 0xFFFFFFFF).to_bytes(4, "little"))
    assert multiboot_kernel(kernel) is multiboot
    rt = RuntimeDirs.for_label("vm1", vmroot / "rt")
    for mod in ("mod,1.txt", "mod 1.txt"):
        initrd = d / mod
        initrd.write_bytes(b"m")
        vm = make_vm(vmroot, "vm1")
        req = make_request(bootmode="KERNEL", kernel=f"{kernel}%{initrd}%a, b", console="NONE")
        plan = resolve_plan(vm, req)
        assert plan.kernel_multiboot is multiboot
        for version, want in (("7.2.0", ",,"), ("0.10.6", None)):
            probe = synthetic_probe(version, path=QEMU)
            if multiboot and (" " in mod or want is None):
                with pytest.raises(ConfError, match=f"multiboot module {re.escape(str(initrd))} has a"):
                    build_argv(plan, probe, runtime=rt)
                continue
            argv = build_argv(plan, probe, runtime=rt)
            spelled = str(initrd).replace(",", want) if multiboot else str(initrd)
            assert argv[argv.index("-initrd") + 1] == spelled
            assert argv[argv.index("-kernel") + 1] == str(kernel)
            assert argv[argv.index("-append") + 1] == "a, b"
        if multiboot:
            with pytest.raises(ConfError, match="symlink the module"):
                build_domain(vm, req, FIXED_CAPS)
        else:
            root = assert_valid(build_domain(vm, req, FIXED_CAPS).xml)
            assert root.findtext("os/initrd") == str(initrd)


def test_direct_serial_log_only_replaces_the_serial_file(vmroot, media):
    """--serial-log (odd path, taken verbatim by -serial file:) replaces the runtime dir's
    serial.log for headless guests; the serial consoles keep their (escaped) socket."""
    from ctys_libvirt.qemu.probe import synthetic_probe
    from ctys_libvirt.qemu.runtime import RuntimeDirs
    from ctys_libvirt.translate.argv import build_argv_result
    from ctys_libvirt.translate.plan import resolve_plan
    from ctys_libvirt.translate.request import make_request
    from translate_helpers import make_vm

    vm = make_vm(vmroot, "vm1")
    rt = RuntimeDirs.for_label("vm1", vmroot / "r,t")
    log = str(vmroot / "a:b, c" / "serial ,log")
    probe = synthetic_probe("7.2.0", path=QEMU)
    res = build_argv_result(resolve_plan(vm, make_request(console="NONE")), probe, runtime=rt,
                            serial_log=log)
    assert res.argv[res.argv.index("-serial") + 1] == f"file:{log}" and res.serial == log
    res = build_argv_result(resolve_plan(vm, make_request(console="CLI")), probe, runtime=rt,
                            serial_log=log)
    sock = str(rt.serial_sock).replace(",", ",,")
    assert res.argv[res.argv.index("-serial") + 1] == f"unix:{sock},server=on,wait=off"
