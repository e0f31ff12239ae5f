"""A conf is data, never authority (issue 8 items 1, 2, 4): the attacks of the issue and
variations, through both backends and both front ends, for confs owned by root and by
another user (uid 65534).  Each test fails when the attack works: a canary file appears
(in a directory every QEMU user may write, so a working attack would be seen), a root-only
victim changes its sha256/owner/mode, a domain gets defined, or a planted program runs.
Positive controls: an untrusted plain conf with a guest-only ARGSADD boots; root's confs
with an allowed option keep working."""
from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import uuid as uuidlib
from pathlib import Path

import libvirt
import pytest
from support.cli import assert_one_line_error, qemu as ctys_qemu, run_cli
from support.confs import write_conf
from support.domains import unique_label

NOBODY = 65534
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the tool's threat model is root running it")


@pytest.fixture
def canary(vmroot) -> Path:
    """Where a working attack would leave a file: writable by every QEMU user."""
    d = vmroot / "canary"
    d.mkdir()
    os.chmod(d, 0o777)
    return d / "pwned"


@pytest.fixture
def victim():
    """A root-only 0600 file outside every VM directory, and a check that it is untouched."""
    d = Path("/var/tmp/ctys-libvirt-tests")
    d.mkdir(mode=0o755, exist_ok=True)
    p = d / f"victim-{uuidlib.uuid4().hex[:8]}"
    p.write_bytes(os.urandom(64))
    os.chmod(p, 0o600)

    def state():
        st = os.stat(p)
        return hashlib.sha256(p.read_bytes()).hexdigest(), st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)

    before = state()
    yield p
    assert state() == before, "the root-only victim file was changed"
    p.unlink()


@pytest.fixture
def direct_janitor():
    """Direct-backend VMs a test may start (or an attack that worked would have started):
    force-stopped at teardown, by label, ours only."""
    labels = []
    yield labels
    for label in labels:
        run_cli("cancel", label, "--backend", "direct", "--mode", "FORCE")


def own(conf: Path, owner: str) -> Path:
    """Hand the VM directory (conf, image, dir) to ``owner`` ('root' or 'nobody')."""
    if owner == "nobody":
        for p in [conf.parent, *conf.parent.iterdir()]:
            os.chown(p, NOBODY, NOBODY)
    return conf


def attack_conf(vmroot, media, owner, argsadd="", timeopt=None, tag="sec"):
    label = unique_label(tag)
    extra = f"ARGSADD={argsadd}\n" if argsadd else ""
    if timeopt is not None:
        extra += f"TIMEOPT={timeopt}\n"
    conf = write_conf(vmroot, label, image=media["hello"], extra=extra)
    return own(conf, owner), label


def defined(conn, name) -> bool:
    try:
        conn.lookupByName(name)
        return True
    except libvirt.libvirtError:
        return False


def qemu_env(vmroot):
    return {"CTYS_INVENTORY_DB": str(vmroot / "inv.sqlite"), "CTYS_GROUPS_PATH": str(vmroot / "groups"),
            "CTYS_SCAN_CACHE_DIR": str(vmroot / "scancache"), "HOME": str(vmroot)}


# -- ARGSADD: refused before anything runs, every front end and backend ----------------------

ATTACKS = {
    "incoming-exec": ("\"-incoming 'exec:touch {canary}'\"", "-incoming"),
    "chardev-file": ("\"-chardev file,id=z,path={victim} -device isa-serial,chardev=z\"", "-chardev"),
    "serial-file": ("\"-serial file:{victim}\"", "-serial"),
    "debug-log": ("\"-d int -D {victim}\"", "-D"),
    "pidfile": ("\"-pidfile {victim}\"", "-pidfile"),
    "readconfig": ("\"-readconfig ${{CTYSWRAPPERPATH}}/evil.cfg\"", "-readconfig"),
    "monitor-socket": ("\"-monitor unix:{canary},server=on,wait=off\"", "-monitor"),
    "netdev-script": ("\"-netdev tap,id=n0,script={script} -device e1000,netdev=n0\"", "-netdev"),
    "bare-image": ("\"{victim}\"", "(image)"),
    "global-romfile": ("\"-global isa-vga.romfile={victim}\"", "-global"),
}


def _attack(name, vmroot, media, owner, canary, victim):
    text, option = ATTACKS[name]
    script = vmroot / "canary-script"
    script.write_text(f"#!/bin/sh\ntouch {canary}\n")
    script.chmod(0o755)
    conf, label = attack_conf(vmroot, media, owner, text.format(canary=canary, victim=victim, script=script))
    cfg = conf.parent / "evil.cfg"
    cfg.write_text(f'[chardev "z"]\n  backend = "file"\n  path = "{victim}"\n'
                   '[device "s"]\n  driver = "isa-serial"\n  chardev = "z"\n')
    own(conf, owner)
    return conf, label, option


@pytest.mark.parametrize("owner", ["root", "nobody"])
@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_argsadd_attack_refused_by_both_backends(name, owner, vmroot, media, canary, victim, janitor,
                                                  libvirt_conn, direct_janitor):
    conf, label, option = _attack(name, vmroot, media, owner, canary, victim)
    janitor.add(label)
    direct_janitor.append(label)
    shown = option if option != "(image)" else "hard disk image"
    line = None
    for backend in ("direct", "libvirt"):
        r = run_cli("create", str(conf), "--backend", backend, "--console", "NONE", "--timeout", "20")
        line = assert_one_line_error(r, 3, f"{conf}:", shown, "refused")
        assert not defined(libvirt_conn, label)
    if owner == "nobody" and option != "(image)":
        assert "not trusted" in line and "allow_untrusted" in line
    elif option != "(image)":
        assert f"--allow-argsadd {option}" in line
    assert not canary.exists()


@pytest.mark.parametrize("owner", ["root", "nobody"])
@pytest.mark.parametrize("name", ["incoming-exec", "chardev-file"])
def test_argsadd_attack_refused_by_every_command(name, owner, vmroot, media, canary, victim, janitor,
                                                 libvirt_conn, direct_janitor):
    conf, label, option = _attack(name, vmroot, media, owner, canary, victim)
    janitor.add(label)
    direct_janitor.append(label)
    for cmd in (["xml", "--strict"], ["xml"], ["argv"], ["check"]):
        r = run_cli(*cmd, str(conf))
        assert_one_line_error(r, 3, f"{conf}:", option)
    r = ctys_qemu("-a", f"CREATE=P:{conf},CONSOLE:NONE", env=qemu_env(vmroot))
    assert r.returncode == 3 and f"{conf}:" in r.stderr and option in r.stderr, r.stderr
    assert not defined(libvirt_conn, label)
    assert not canary.exists()


def test_timeopt_smuggling_is_refused(vmroot, media, canary, victim, janitor, libvirt_conn, direct_janitor):
    conf, label = attack_conf(vmroot, media, "root",
                              timeopt=f"\"-localtime -chardev file,id=t,path={victim} -device isa-serial,chardev=t\"")
    janitor.add(label)
    direct_janitor.append(label)
    for backend in ("direct", "libvirt"):
        r = run_cli("create", str(conf), "--backend", backend, "--console", "NONE")
        assert_one_line_error(r, 3, "TIMEOPT -chardev")
    assert not defined(libvirt_conn, label)


def test_command_line_argsadd_is_refused_too(vmroot, media, canary, victim, janitor, libvirt_conn, direct_janitor):
    conf, label = attack_conf(vmroot, media, "root")
    janitor.add(label)
    direct_janitor.append(label)
    for backend in ("direct", "libvirt"):
        r = run_cli("create", str(conf), "--backend", backend, "--console", "NONE",
                    "--argsadd", f"-incoming exec:touch\\ {canary}")
        assert_one_line_error(r, 1, "--argsadd -incoming", "--allow-argsadd -incoming")
    r = ctys_qemu("-a", f"CREATE=P:{conf},CONSOLE:NONE,ARGSADD:S%-pidfile {victim}", env=qemu_env(vmroot))
    assert r.returncode == 1 and "-pidfile" in r.stderr, r.stderr
    assert not defined(libvirt_conn, label)
    assert not canary.exists()


def test_allowing_an_option_never_lets_its_path_leave_the_vm_dir(vmroot, media, victim, janitor, libvirt_conn, direct_janitor):
    conf, label = attack_conf(vmroot, media, "root", f"\"-chardev file,id=z,path={victim} "
                                                      "-device isa-serial,chardev=z\"")
    janitor.add(label)
    link = conf.parent / "serial.log"
    link.symlink_to(victim)              # through a symlink in the VM dir: still outside
    conf2, label2 = attack_conf(vmroot, media, "root", "\"-chardev file,id=z,path=${CTYSWRAPPERPATH}/serial.log "
                                                       "-device isa-serial,chardev=z\"")
    janitor.add(label2)
    direct_janitor += [label, label2]
    (conf2.parent / "serial.log").symlink_to(victim)
    for c in (conf, conf2):
        for backend in ("direct", "libvirt"):
            r = run_cli("create", str(c), "--backend", backend, "--console", "NONE", "--allow-argsadd", "-chardev")
            assert_one_line_error(r, 3, "outside the VM directory", str(victim))
    assert not defined(libvirt_conn, label) and not defined(libvirt_conn, label2)


def test_untrusted_conf_is_not_widened_by_the_flag_but_by_the_policy(vmroot, media, canary, janitor):
    conf, label = attack_conf(vmroot, media, "nobody", "\"-chardev null,id=z -device isa-serial,chardev=z\"")
    janitor.add(label)
    r = run_cli("xml", str(conf), "--allow-argsadd", "-chardev")
    assert_one_line_error(r, 3, "not trusted", "uid 65534", "allow_untrusted")
    r = run_cli("check", str(conf), "--allow-argsadd", "-chardev", "--format", "json")
    assert r.returncode == 3
    report = json.loads(r.stdout)
    assert report["trust"]["trusted"] is False and report["trust"]["owner_uid"] == NOBODY
    assert report["argsadd"]["policy"][0]["option"] == "-chardev" and report["argsadd"]["policy"][0]["allowed"] is False
    # the root-owned site policy may allow it
    pol = vmroot / "policy.toml"
    pol.write_text('[argsadd]\nallow_untrusted = ["-chardev"]\n')
    os.chmod(pol, 0o644)
    r = run_cli("xml", str(conf), env={"CTYS_LIBVIRT_POLICY": str(pol)})
    assert r.returncode == 0, r.stderr
    # ... but not when the policy file is not root's alone
    os.chown(pol, NOBODY, NOBODY)
    r = run_cli("xml", str(conf), env={"CTYS_LIBVIRT_POLICY": str(pol)})
    assert r.returncode == 3 and "site policy ignored" in r.stderr


def test_check_shows_trust(vmroot, media, janitor):
    conf, label = attack_conf(vmroot, media, "root", "\"-usb\"")
    r = run_cli("check", str(conf))
    assert r.returncode == 0, r.stderr
    section = r.stdout.split("[trust]")[1].split("[")[0]
    assert "trusted    True" in section and "owner_uid  0" in section
    own(conf, "nobody")
    r = run_cli("check", str(conf), "--format", "json")
    assert r.returncode == 0 and json.loads(r.stdout)["trust"]["trusted"] is False


# -- positive controls ---------------------------------------------------------------------

def _qemu_argv_of(label):
    out = subprocess.run(["pgrep", "-f", f"guest={label},"], capture_output=True, text=True).stdout.split()
    assert out, f"no QEMU process for {label}"
    return open(f"/proc/{out[0]}/cmdline", "rb").read().split(b"\0")


def test_untrusted_plain_conf_with_guest_only_argsadd_boots(vmroot, media, janitor, libvirt_conn):
    conf, label = attack_conf(vmroot, media, "nobody", "\"-smbios type=1,serial=ctys-sec-ok\"")
    janitor.add(label)
    r = run_cli("create", str(conf), "--backend", "libvirt", "--console", "NONE", "--format", "json")
    assert r.returncode == 0, r.stderr
    assert libvirt_conn.lookupByName(label).isActive()
    argv = _qemu_argv_of(label)
    assert argv[argv.index(b"-smbios") + 1] == b"type=1,serial=ctys-sec-ok"


def test_untrusted_plain_conf_boots_with_the_direct_backend(vmroot, media, direct_janitor):
    conf, label = attack_conf(vmroot, media, "nobody", "\"-smbios type=1,serial=ctys-sec-direct\"")
    direct_janitor.append(label)
    r = run_cli("create", str(conf), "--backend", "direct", "--console", "NONE", "--format", "json")
    assert r.returncode == 0, r.stderr
    pid = json.loads(r.stdout)["pid"]
    argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
    assert argv[argv.index(b"-smbios") + 1] == b"type=1,serial=ctys-sec-direct"


def test_root_conf_with_an_allowed_option_keeps_working(vmroot, media, janitor, libvirt_conn):
    conf, label = attack_conf(vmroot, media, "root", "\"-chardev null,id=ctysz -device isa-serial,chardev=ctysz\"")
    janitor.add(label)
    r = run_cli("create", str(conf), "--backend", "libvirt", "--console", "NONE")
    assert_one_line_error(r, 3, "--allow-argsadd -chardev")
    assert not defined(libvirt_conn, label)
    r = run_cli("create", str(conf), "--backend", "libvirt", "--console", "NONE", "--allow-argsadd", "-chardev")
    assert r.returncode == 0, r.stderr
    assert libvirt_conn.lookupByName(label).isActive()
    assert b"null,id=ctysz" in _qemu_argv_of(label)


# -- binaries: nothing a conf's author can write is run -----------------------------------

def fake_qemu(path: Path, canary: Path, owner: int = 0) -> Path:
    """A QEMU-named script that would leave the canary if it ever ran."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\ntouch {canary}\necho 'QEMU emulator version 7.2.0'\n"
                    "echo '-m megs'\necho '-hda file'\necho '-cdrom file'\n")
    os.chmod(path, 0o755)
    os.chown(path, owner, owner)
    os.chown(path.parent, owner, owner)
    return path


@pytest.mark.parametrize("where", ["vm-dir", "user-dir"])
def test_startercall_never_runs_a_planted_binary(where, vmroot, media, canary, janitor, libvirt_conn):
    label = unique_label("starter")
    janitor.add(label)
    if where == "vm-dir":
        starter = "${CTYSWRAPPERPATH}/qemu-system-x86_64"
        conf = write_conf(vmroot, label, image=media["hello"], extra=f"STARTERCALL={starter}\n")
        fake_qemu(conf.parent / "qemu-system-x86_64", canary)
        os.chown(conf.parent, 0, 0)          # root's own VM dir: still never executed from
        needle = "VM directory"
    else:
        starter = str(fake_qemu(vmroot / "userbin" / "qemu-system-x86_64", canary, owner=NOBODY))
        conf = write_conf(vmroot, label, image=media["hello"], extra=f"STARTERCALL={starter}\n")
        needle = "owned by uid 65534"
    r = run_cli("argv", str(conf))
    assert_one_line_error(r, 4, "QEMU binary", needle)
    r = run_cli("create", str(conf), "--backend", "direct", "--console", "NONE")
    assert_one_line_error(r, 4, needle)
    for cmd in (["create", str(conf), "--console", "NONE"], ["check", str(conf)], ["xml", str(conf)]):
        run_cli(*cmd)
    assert not canary.exists()


def test_qemu_option_never_runs_a_user_owned_binary(vmroot, media, canary):
    fake = fake_qemu(vmroot / "userbin" / "qemu-system-x86_64", canary, owner=NOBODY)
    conf = write_conf(vmroot, unique_label("qopt"), image=media["hello"])
    for cmd in (["argv", str(conf), "--qemu", str(fake)],
                ["create", str(conf), "--backend", "direct", "--console", "NONE", "--qemu", str(fake)]):
        assert_one_line_error(run_cli(*cmd), 4, "owned by uid 65534")
    r = run_cli("doctor", "--qemu", str(fake), "--format", "json")
    assert "owned by uid 65534" in r.stdout + r.stderr
    assert not canary.exists()


def test_allowed_path_is_never_another_running_domains_disk(vmroot, media, janitor, libvirt_conn, direct_janitor):
    """Conf B may write a serial log only into files of its own: not into the disk of a
    running VM A, although it lies in a storage root (here: B's VM dir holds A's disk)."""
    a_conf, a_label = attack_conf(vmroot, media, "root", tag="victim-a")
    janitor.add(a_label)
    r = run_cli("create", str(a_conf), "--backend", "libvirt", "--console", "NONE")
    assert r.returncode == 0, r.stderr
    disk = a_conf.parent / "hda.img"
    before = hashlib.sha256(disk.read_bytes()).hexdigest()
    b_conf, b_label = attack_conf(vmroot, media, "root", f"\"-chardev file,id=z,path={disk} "
                                                         "-device isa-serial,chardev=z\"", tag="b")
    janitor.add(b_label)
    direct_janitor.append(b_label)
    pol = vmroot / "policy.toml"
    pol.write_text(f'[paths]\nstorage_roots = ["{a_conf.parent}"]\n')
    os.chmod(pol, 0o644)
    for backend in ("libvirt", "direct"):
        r = run_cli("create", str(b_conf), "--backend", backend, "--console", "NONE",
                    "--allow-argsadd", "-chardev", env={"CTYS_LIBVIRT_POLICY": str(pol)})
        assert_one_line_error(r, 3, str(disk))
        assert ("disk of domain " + a_label) in r.stderr or "open in running process" in r.stderr
    assert not defined(libvirt_conn, b_label)
    assert hashlib.sha256(disk.read_bytes()).hexdigest() == before


def test_ctys_qemu_allow_argsadd_for_roots_conf(vmroot, media, janitor, libvirt_conn):
    conf, label = attack_conf(vmroot, media, "root", "\"-chardev null,id=ctysq -device isa-serial,chardev=ctysq\"")
    janitor.add(label)
    r = ctys_qemu("-a", f"CREATE=P:{conf},CONSOLE:NONE", "--backend", "libvirt", env=qemu_env(vmroot))
    assert r.returncode == 3 and "--allow-argsadd -chardev" in r.stderr, r.stderr
    assert not defined(libvirt_conn, label)
    r = ctys_qemu("-a", f"CREATE=P:{conf},CONSOLE:NONE", "--backend", "libvirt", "--allow-argsadd", "-chardev",
                  env=qemu_env(vmroot))
    assert r.returncode == 0, r.stderr
    assert libvirt_conn.lookupByName(label).isActive()
    assert b"null,id=ctysq" in _qemu_argv_of(label)


@pytest.mark.parametrize("backend", ["direct", "libvirt"])
def test_refusal_comes_before_anything_is_touched(backend, vmroot, media, janitor, libvirt_conn, direct_janitor):
    """An INSTMODE ... INIT run with a refused ARGSADD creates no install target."""
    label = unique_label("init")
    janitor.add(label)
    direct_janitor.append(label)
    target = vmroot / label / "target.img"
    conf = write_conf(vmroot, label, extra=(
        "QEMU_IMG=raw\nHDDBOOTIMAGE_INST_SIZE=1M\n"
        'HDDBOOTIMAGE="${CTYSWRAPPERPATH}/target.img"\n'
        'ARGSADD="-pidfile ${CTYSWRAPPERPATH}/../pid"\n'))
    r = run_cli("create", str(conf), "--backend", backend, "--console", "NONE",
                "--instmode", f"CD%{media['hello-iso']}%HDD%{target}%INIT")
    assert_one_line_error(r, 3, "-pidfile", "refused")
    assert not target.exists() and not list(target.parent.glob(".target.img*"))
    assert not defined(libvirt_conn, label)
