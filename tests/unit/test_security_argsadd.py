"""ARGSADD policy (security/argsadd.py): every host-reaching form is a finding, guest-only
ARGSADD passes, refusals name conf, line and option, and who may allow what."""
from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from ctys_libvirt.errors import ConfError, UsageError
from ctys_libvirt.qemu.probe import probe_text, synthetic_probe
from ctys_libvirt.security.argsadd import classify, enforce, judge, split_qemu_opts
from ctys_libvirt.security.policy import SitePolicy
from ctys_libvirt.model import ConfTrust
from ctys_libvirt.translate.request import make_request
from fakeqemu import HELP_DIR

PROBE = probe_text("/usr/bin/qemu-system-x86_64", (HELP_DIR / "qemu-7.2.22-debian12.txt").read_text())
OLD = probe_text("/opt/qemu-0.12.5", (HELP_DIR / "qemu-0.12.5-qemu-kvm.txt").read_text())

# (ARGSADD, the option a refusal must name): attacks from the issue and variations
HOST = [
    ("-incoming exec:id>OUT", "-incoming"),
    ("-incoming tcp:0:4444", "-incoming"),
    ("-chardev file,id=z,path=/root/victim -device isa-serial,chardev=z", "-chardev"),
    ("-chardev pipe,id=z,path=/tmp/p", "-chardev"),
    ("-chardev socket,id=m,path=/home/u/sock,server=on,wait=off -mon chardev=m", "-chardev"),
    ("-chardev serial,id=s,path=/dev/ttyS0", "-chardev"),
    ("-serial file:/root/victim", "-serial"),
    ("-serial unix:/home/u/s,server,nowait", "-serial"),
    ("-serial tcp::4444,server", "-serial"),
    ("-parallel file:/root/victim", "-parallel"),
    ("-monitor unix:/home/u/mon,server,nowait", "-monitor"),
    ("-monitor stdio", "-monitor"),
    ("-qmp unix:/home/u/qmp,server,nowait", "-qmp"),
    ("-mon chardev=x", "-mon"),
    ("-D /root/victim", "-D"),
    ("-d int -D /root/victim", "-D"),
    ("-trace file=/root/victim", "-trace"),
    ("-trace events=/etc/shadow", "-trace"),
    ("-pidfile /root/victim", "-pidfile"),
    ("-drive file=/etc/shadow,if=ide", "-drive"),
    ("-blockdev driver=file,node-name=x,filename=/etc/shadow", "-blockdev"),
    ("-hdb /etc/shadow", "-hdb"),
    ("-cdrom /dev/sr0", "-cdrom"),
    ("-readconfig /home/u/evil.cfg", "-readconfig"),
    ("-writeconfig /root/victim", "-writeconfig"),
    ("-daemonize", "-daemonize"),
    ("-runas nobody", "-runas"),
    ("-chroot /home/u", "-chroot"),
    ("-sandbox off", "-sandbox"),
    ("-plugin /home/u/p.so", "-plugin"),
    ("-add-fd fd=3,set=1", "-add-fd"),
    ("-object memory-backend-file,id=m,size=1M,mem-path=/root/victim", "-object"),
    ("-object secret,id=s,file=/etc/shadow", "-object"),
    ("-object tls-creds-x509,id=t,dir=/root", "-object"),
    ("-object filter-dump,id=f,netdev=n,file=/root/victim", "-object"),
    ("-object rng-random,id=r,filename=/dev/mem", "-object"),
    ("-object input-linux,id=k,evdev=/dev/input/event0", "-object"),
    ("-netdev tap,id=n,script=/home/u/x", "-netdev"),
    ("-netdev user,id=n,hostfwd=tcp::2222-:22", "-netdev"),
    ("-net user,guestfwd=tcp:10.0.2.100:1-cmd:/bin/sh", "-net"),
    ("-net tap,script=/home/u/up", "-net"),
    ("-net socket,listen=:1234", "-net"),
    ("-nic user,hostfwd=tcp::2222-:22", "-nic"),
    ("-nic tap", "-nic"),
    ("-netdev socket,id=n,listen=:1234", "-netdev"),
    ("-netdev bridge,id=n,br=virbr0", "-netdev"),
    ("-netdev user,id=n,smb=/", "-netdev"),
    ("-serial tcp::4444,server=on,wait=off", "-serial"),
    ("-serial stdio", "-serial"),
    ("-usbdevice disk:/etc/shadow", "-usbdevice"),
    ("-usbdevice host:1234:5678", "-usbdevice"),
    ("-smbios file=/etc/shadow", "-smbios"),
    ("-fw_cfg name=opt/x,file=/etc/shadow", "-fw_cfg"),
    ("-bios /home/u/bios.bin", "-bios"),
    ("-L /home/u", "-L"),
    ("-option-rom /home/u/rom", "-option-rom"),
    ("-kernel /etc/shadow", "-kernel"),
    ("-initrd /etc/shadow", "-initrd"),
    ("-dtb /etc/shadow", "-dtb"),
    ("-acpitable file=/etc/shadow", "-acpitable"),
    ("-audiodev wav,id=a,path=/root/victim", "-audiodev"),
    ("-display sdl", "-display"),
    ("-display vnc=unix:/home/u/v", "-display"),
    ("-vnc unix:/home/u/v", "-vnc"),
    ("-vnc :1", "-vnc"),
    ("-spice unix=on,addr=/home/u/s", "-spice"),
    ("-gdb tcp::1234", "-gdb"),
    ("-s", "-s"),
    ("-S", "-S"),
    ("-mem-path /root", "-mem-path"),
    ("-icount shift=1,rr=record,rrfile=/root/victim", "-icount"),
    ("-machine pc,dumpdtb=/root/victim", "-machine"),
    ("-boot order=c,splash=/etc/shadow", "-boot"),
    ("-device loader,file=/etc/shadow,addr=0x1000", "-device"),
    ("-device e1000,romfile=/etc/shadow", "-device"),
    ("-device usb-host,hostbus=1,hostaddr=2", "-device"),
    ("-device vfio-pci,host=00:02.0", "-device"),
    ("-device vhost-vsock-pci,guest-cid=3", "-device"),
    ("-device driver=usb-host,hostbus=1", "-device"),
    ("-global e1000.romfile=/etc/shadow", "-global"),
    ("-global driver=e1000,property=romfile,value=/etc/shadow", "-global"),
    ("-set drive.x.file=/etc/shadow", "-set"),
    ("-virtfs local,path=/,mount_tag=r,security_model=none", "-virtfs"),
    ("-fsdev local,id=f,path=/", "-fsdev"),
    ("-tpmdev passthrough,id=t,path=/dev/tpm0", "-tpmdev"),
    ("-loadvm snap", "-loadvm"),
    ("-semihosting", "-semihosting"),
    ("-qtest unix:/home/u/q", "-qtest"),
    ("-no-such-option x", "-no-such-option"),
    ("--chardev file,id=z,path=/root/victim", "-chardev"),     # QEMU reads --x as -x
    ("/etc/shadow", "(image)"),                                  # a bare word is -hda
    ("-usb /etc/shadow", "(image)"),
    ("-name x,debug-threads=on exec:id", "exec:"),
    ("-serial mon:stdio", "-serial"),
    ("""-device '{"driver":"loader","file":"/etc/shadow","addr":4096}'""", "-device"),   # JSON form
    ("""-device '{"driver":"usb-host","hostbus":1}'""", "-device"),
    ("""-object '{"qom-type":"secret","id":"s","file":"/etc/shadow"}'""", "-object"),
    ("""-device '{"driver":"e1000","x":{"file":"/etc/shadow"}}'""", "-device"),
    ("-device {not-json", "-device"),
    ("-k ../../../../etc/shadow", "-k"),
]

GUEST = [
    "-smbios type=1,serial=ctys-ok", "-usb", "-usbdevice tablet", "-rtc base=localtime,clock=host",
    "-k de", "-vga std", "-no-hpet", "-no-acpi", "-no-reboot", "-soundhw ac97",
    "-device AC97", "-device e1000,netdev=n0,mac=52:54:00:00:00:01", "-device usb-tablet",
    "-device isa-serial,chardev=serial0", "-cpu qemu64,+ssse3", "-smp 2,sockets=1", "-m 64",
    "-machine pc,accel=tcg", "-M pc", "-boot order=dc,menu=on", "-name vm,process=vm",
    "-global isa-fdc.bootindexA=1", "-net nic,model=rtl8139", "-net none", "-nic none",
    "-object iothread,id=io0", "-object memory-backend-ram,id=m0,size=16M", "-display none",
    "-serial none", "-parallel none", "-numa node,memdev=m0", "-fw_cfg name=opt/x,string=y",
    "-localtime", "-no-kvm", "-enable-kvm", "-snapshot", "-watchdog i6300esb",
    "-net nic -net user", "-nic user,model=e1000", "-netdev user,id=n1 -device e1000,netdev=n1",
    "-serial pty", "-serial vc:80Cx24C", "-parallel pty", "-nographic",
    "-append 'console=ttyS0 quiet'", """-device '{"driver":"usb-tablet","id":"t0"}'""", "-d int", "-icount shift=1", "-uuid 3f2a6c1e-9b7d-4e0a-8c5b-1d2e3f4a5b6c",
]


@pytest.mark.parametrize("args,option", HOST)
def test_every_host_reaching_form_is_found(args, option):
    found = classify(shlex.split(args), PROBE)
    assert option in {f.option for f in found}, found


@pytest.mark.parametrize("args", GUEST)
def test_guest_only_argsadd_passes(args):
    assert classify(shlex.split(args), PROBE) == []


@pytest.mark.parametrize("args", GUEST[:12])
def test_guest_only_argsadd_passes_for_an_old_binary_too(args):
    assert classify(shlex.split(args), OLD) == []


def test_unknown_option_is_refused_naming_the_binary():
    (f,) = classify(["-frobnicate"], PROBE)
    assert f.option == "-frobnicate"
    assert "QEMU 7.2.22" in f.reason and "not listed" in f.reason


def test_option_table_decides_what_is_a_value():
    # -name takes a value: '-chardev' after it is the guest's name, not an option, but a
    # value word that looks like an option is never skipped silently
    assert classify(["-name", "x", "-chardev", "file,id=z,path=/x"], PROBE)[0].option == "-chardev"
    # -incoming is listed on 0.12.5 and taken with its value
    found = classify(["-incoming", "exec:cat x"], OLD)
    assert {"-incoming", "exec:"} <= {f.option for f in found}


def test_qemu_opts_split_with_double_commas():
    assert split_qemu_opts("file,id=z,path=/a,,b") == [(None, "file"), ("id", "z"), ("path", "/a,b")]


def _vm(tmp_path: Path, argsadd="", timeopt="", trusted=True):
    from translate_helpers import make_vm

    vm = make_vm(tmp_path, "sec", argsadd=argsadd, timeopt=timeopt)
    conf = tmp_path / "sec.ctys"
    conf.write_text("#@#MAGICID-QEMU\nLABEL=sec\n\nARGSADD=\"...\"\n")
    vm.source_path = conf
    vm.conf_dir = tmp_path
    vm.trust = ConfTrust(trusted, 0 if trusted else 65534, 0 if trusted else 65534,
                         "test" if trusted else "owned by uid 65534")
    return vm


NOPOLICY = SitePolicy()


def test_conf_refusal_names_file_line_option_and_the_fix(tmp_path):
    vm = _vm(tmp_path, argsadd="-usb -chardev file,id=z,path=/root/v -device isa-serial,chardev=z")
    with pytest.raises(ConfError) as ei:
        enforce(vm, make_request(), PROBE, policy=NOPOLICY)
    line = ei.value.one_line()
    assert ei.value.exit_code == 3
    assert line.startswith(f"{tmp_path / 'sec.ctys'}:4: ARGSADD -chardev file,id=z,path=/root/v")
    assert "--allow-argsadd -chardev" in line and "policy" in line


def test_timeopt_is_checked_like_argsadd(tmp_path):
    vm = _vm(tmp_path, timeopt="-localtime -incoming exec:touch${IFS}x")
    with pytest.raises(ConfError, match="TIMEOPT -incoming"):
        enforce(vm, make_request(), PROBE, policy=NOPOLICY)


def test_command_line_words_are_a_usage_error(tmp_path):
    vm = _vm(tmp_path)
    with pytest.raises(UsageError, match=r"--argsadd -pidfile /root/v: -pidfile"):
        enforce(vm, make_request(argsadd=["-pidfile /root/v"]), PROBE, policy=NOPOLICY)


def test_allowed_option_still_keeps_its_paths_in_the_vm_dir(tmp_path):
    vm = _vm(tmp_path, argsadd="-chardev file,id=z,path=/root/victim")
    with pytest.raises(ConfError, match="outside the VM directory"):
        enforce(vm, make_request(), PROBE, allow=["-chardev"], policy=NOPOLICY)
    inside = _vm(tmp_path, argsadd=f"-chardev file,id=z,path={tmp_path}/serial.log")
    enforce(inside, make_request(), PROBE, allow=["chardev"], policy=NOPOLICY)


def test_a_symlink_out_of_the_vm_dir_is_outside(tmp_path):
    (tmp_path / "log").symlink_to("/root/victim")
    vm = _vm(tmp_path, argsadd="-serial file:log")
    with pytest.raises(ConfError, match="resolves to /root/victim"):
        enforce(vm, make_request(), PROBE, allow=["-serial"], policy=NOPOLICY)


def test_exec_needs_its_own_token(tmp_path):
    vm = _vm(tmp_path, argsadd="-incoming exec:cat${IFS}x")
    with pytest.raises(ConfError, match="exec:"):
        enforce(vm, make_request(), PROBE, allow=["-incoming"], policy=NOPOLICY)
    enforce(vm, make_request(), PROBE, allow=["-incoming", "exec:"], policy=NOPOLICY)


def test_untrusted_conf_is_not_widened_by_a_flag(tmp_path):
    vm = _vm(tmp_path, argsadd="-chardev file,id=z,path=serial.log", trusted=False)
    with pytest.raises(ConfError) as ei:
        enforce(vm, make_request(), PROBE, allow=["-chardev"], policy=NOPOLICY)
    assert "not trusted" in ei.value.one_line() and "allow_untrusted" in ei.value.one_line()
    # the site policy's allow (for trusted confs) does not reach it either
    with pytest.raises(ConfError):
        enforce(vm, make_request(), PROBE, policy=SitePolicy(allow_argsadd=frozenset({"-chardev"})))
    enforce(vm, make_request(), PROBE, policy=SitePolicy(allow_argsadd_untrusted=frozenset({"-chardev"})))


def test_untrusted_conf_guest_only_argsadd_passes(tmp_path):
    vm = _vm(tmp_path, argsadd="-smbios type=1,serial=x -usb", trusted=False)
    enforce(vm, make_request(), PROBE, policy=NOPOLICY)
    assert judge(vm, make_request(), PROBE, policy=NOPOLICY) == []


def test_script_programs_obey_the_binary_rule(tmp_path):
    script = tmp_path / "ifup"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    vm = _vm(tmp_path, argsadd=f"-netdev tap,id=n,script={script},downscript=no")
    with pytest.raises(ConfError, match="VM directory"):
        enforce(vm, make_request(), PROBE, allow=["-netdev", "exec:"], policy=NOPOLICY)
    ok = _vm(tmp_path, argsadd="-netdev tap,id=n,script=/bin/true,downscript=no")
    enforce(ok, make_request(), PROBE, allow=["-netdev", "exec:"], policy=NOPOLICY)


def test_synthetic_probe_classifies_too():
    pr = synthetic_probe("0.9.1")
    assert classify(["-usb", "-localtime"], pr) == []
    assert classify(["-pidfile", "/x"], pr)[0].option == "-pidfile"


def test_every_xml_build_is_checked(tmp_path):
    """build_domain is the backstop for callers other than the commands (define, sync...)."""
    from ctys_libvirt.translate.xml import build_domain

    vm = _vm(tmp_path, argsadd="-pidfile /root/v")
    with pytest.raises(ConfError, match="-pidfile"):
        build_domain(vm, make_request())
    ok = _vm(tmp_path, argsadd=f"-pidfile {tmp_path}/qemu.pid")
    xml = build_domain(ok, make_request(allow_argsadd=["-pidfile"])).xml
    assert f"{tmp_path}/qemu.pid" in xml


def test_free_text_values_are_guest_data():
    assert classify(["-append", "script=/x,file=/etc/shadow exec:y", "-name", "{x"], PROBE) == []
