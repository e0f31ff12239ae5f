"""Trust of a conf (security/trust.py), the site policy (security/policy.py) and the binary
rule (security/binaries.py): ownership and writability decide, never names or locations."""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

from ctys_libvirt.conf import load_conf
from ctys_libvirt.errors import QemuProbeError
from ctys_libvirt.qemu.discovery import find_qemu
from ctys_libvirt.qemu.probe import probe
from ctys_libvirt.security.binaries import binary_problem
from ctys_libvirt.security.policy import SitePolicy, load_policy
from ctys_libvirt.security.trust import assess

NOBODY = 65534
CONF = "#@#MAGICID-QEMU\n#@#LABEL = \"t\"\nLABEL=t\nMEMSIZE=16\nNIC=\n"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")


@pytest.fixture
def root_dir():
    """A root-owned 0755 directory below the root-owned sticky /var/tmp."""
    d = Path("/var/tmp/ctys-sec-unit-" + uuid.uuid4().hex[:8])
    d.mkdir(mode=0o755)
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def vmdir(base: Path, owner: int = 0, mode: int = 0o755) -> Path:
    d = base / "t"
    d.mkdir()
    conf = d / "t.ctys"
    conf.write_text(CONF)
    os.chown(d, owner, owner)
    os.chown(conf, owner, owner)
    os.chmod(d, mode)
    os.chmod(conf, 0o644)
    return conf


NOPOL = SitePolicy()


def test_root_conf_under_sticky_tmp_is_trusted(root_dir):
    t = assess(vmdir(root_dir), NOPOL)
    assert t.trusted and (t.owner_uid, t.owner_gid) == (0, 0)


def test_conf_owned_by_another_user_is_untrusted(root_dir):
    t = assess(vmdir(root_dir, NOBODY), NOPOL)
    assert not t.trusted and t.owner_uid == NOBODY and "65534" in t.reason


def test_root_conf_in_a_user_owned_dir_is_untrusted(root_dir):
    conf = vmdir(root_dir, NOBODY)
    os.chown(conf, 0, 0)            # the user can still replace it: the directory is theirs
    t = assess(conf, NOPOL)
    assert not t.trusted and "directory" in t.reason and t.owner_uid == 0


def test_group_writable_vm_dir_or_conf_is_untrusted(root_dir):
    conf = vmdir(root_dir, 0, 0o775)
    assert not assess(conf, NOPOL).trusted
    os.chmod(conf.parent, 0o755)
    os.chmod(conf, 0o666)
    assert not assess(conf, NOPOL).trusted


def test_reached_through_a_users_symlink_is_untrusted(root_dir):
    conf = vmdir(root_dir)
    udir = root_dir / "u"
    udir.mkdir()
    (udir / "vm").symlink_to(conf.parent)
    os.chown(udir, NOBODY, NOBODY)
    t = assess(udir / "vm" / "t.ctys", NOPOL)
    assert not t.trusted and str(udir) in t.reason
    assert assess(conf, NOPOL).trusted


def test_the_real_directories_count_whatever_path_reaches_the_conf(root_dir):
    """A symlinked conf file, a symlinked directory on the way, and '..' after a symlink
    (the kernel takes it from the link's target, not from the text): the directories the
    conf really lives in are checked too."""
    user = root_dir / "u"                      # a user's directory holding the VM dir
    user.mkdir()
    conf = vmdir(user)
    (user / "a").mkdir()
    os.chown(user, NOBODY, NOBODY)
    safe = root_dir / "safe"                   # root's, with a look-alike VM dir
    safe.mkdir()
    (safe / "t").mkdir()
    (safe / "t.ctys").symlink_to(conf)
    (safe / "d").symlink_to(conf.parent)
    (safe / "l").symlink_to(user / "a")
    paths = (safe / "t.ctys", safe / "d" / "t.ctys", Path(f"{safe}/l/../t/t.ctys"))
    for path in paths + (conf,):
        t = assess(path, NOPOL)
        assert not t.trusted and str(user) in t.reason, path
    os.chown(user, 0, 0)
    for path in paths + (conf,):
        assert assess(path, NOPOL).trusted, path


def test_a_sticky_vm_dir_itself_is_not_enough(root_dir):
    # sticky counts for ancestors only: in the VM dir itself anyone could add files
    conf = vmdir(root_dir, 0, 0o1777)
    assert not assess(conf, NOPOL).trusted


def test_policy_trusts_a_user(root_dir):
    conf = vmdir(root_dir, NOBODY)
    t = assess(conf, SitePolicy(trusted_uids=frozenset({NOBODY})))
    assert t.trusted and t.by_policy
    assert not assess(conf, SitePolicy(trusted_uids=frozenset({1234}))).trusted


def test_load_conf_decides_trust_once(root_dir, monkeypatch):
    monkeypatch.setenv("CTYS_LIBVIRT_POLICY", str(root_dir / "none.toml"))
    vm = load_conf(vmdir(root_dir, NOBODY))
    assert vm.trust is not None and not vm.trust.trusted and vm.trust.owner_uid == NOBODY


POLICY = '[trust]\nusers = [65534]\n[argsadd]\nallow = ["-chardev"]\nallow_untrusted = ["exec"]\n' \
         '[paths]\nstorage_roots = ["/srv/vm"]\n[binaries]\nallow = ["/opt/q"]\n'


def test_policy_read_when_roots_alone(root_dir, monkeypatch):
    pol = root_dir / "policy.toml"
    pol.write_text(POLICY)
    os.chmod(pol, 0o644)
    p = load_policy(str(pol))
    assert p.path == str(pol) and p.trusted_uids == {NOBODY}
    assert p.allow_argsadd == {"-chardev"} and p.allow_argsadd_untrusted == {"exec"}
    assert "/srv/vm" in p.storage_roots and "/opt/q" in p.allow_binaries and not p.warnings
    monkeypatch.setenv("CTYS_LIBVIRT_POLICY", str(pol))
    assert load_policy().path == str(pol)


@pytest.mark.parametrize("how", ["user-owned", "group-writable", "user-dir"])
def test_policy_ignored_unless_roots_alone(root_dir, how):
    d = root_dir / "etc"
    d.mkdir(mode=0o755)
    pol = d / "policy.toml"
    pol.write_text(POLICY)
    os.chmod(pol, 0o644)
    if how == "user-owned":
        os.chown(pol, NOBODY, NOBODY)
    elif how == "group-writable":
        os.chmod(pol, 0o664)
    else:
        os.chown(d, NOBODY, NOBODY)
    p = load_policy(str(pol))
    assert p.path is None and not p.trusted_uids and not p.allow_argsadd
    assert p.warnings and "ignored" in p.warnings[0]


def test_broken_policy_is_ignored_with_a_warning(root_dir):
    pol = root_dir / "policy.toml"
    pol.write_text("[trust\nusers=")
    p = load_policy(str(pol))
    assert p.path is None and p.warnings


# -- binaries ---------------------------------------------------------------------------

def script(path: Path, canary: Path, owner: int = 0, mode: int = 0o755) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\ntouch {canary}\necho 'QEMU emulator version 7.2.0'\n")
    os.chown(path, owner, owner)
    os.chmod(path, mode)
    return path


def test_binary_rule(root_dir):
    canary = root_dir / "ran"
    ok = script(root_dir / "bin" / "qemu-system-x86_64", canary)
    assert binary_problem(str(ok), policy=NOPOL) is None
    assert binary_problem("/usr/bin/qemu-system-x86_64", policy=NOPOL) is None
    user = script(root_dir / "u" / "qemu-system-x86_64", canary, owner=NOBODY)
    assert "owned by uid 65534" in binary_problem(str(user), policy=NOPOL)
    gw = script(root_dir / "gw" / "qemu-kvm", canary, mode=0o775)
    assert "writable" in binary_problem(str(gw), policy=NOPOL)
    udir = script(root_dir / "ud" / "qemu", canary)
    os.chown(udir.parent, NOBODY, NOBODY)
    assert "directory" in binary_problem(str(udir), policy=NOPOL)
    # a symlink named like QEMU resolves to the user's file
    link = root_dir / "bin" / "kvm"
    link.symlink_to(user)
    assert "65534" in binary_problem(str(link), policy=NOPOL)
    # a symlink to root's QEMU, in a user's directory: re-pointable between check and exec
    ulink = root_dir / "ud" / "qemu-system-x86_64"
    ulink.symlink_to("/usr/bin/qemu-system-x86_64")
    assert "directory" in binary_problem(str(ulink), policy=NOPOL)
    # root's own file in a VM directory is never run either
    invm = script(root_dir / "vm" / "qemu-system-x86_64", canary)
    assert "VM directory" in binary_problem(str(invm), policy=NOPOL, vm_dir=str(root_dir / "vm"))
    # the policy may name a binary or its directory
    assert binary_problem(str(user), policy=SitePolicy(allow_binaries=(str(user.parent),))) is None
    assert not canary.exists()


def test_probe_and_find_qemu_never_run_a_refused_binary(root_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("CTYS_LIBVIRT_POLICY", str(root_dir / "none.toml"))
    canary = root_dir / "ran"
    user = script(root_dir / "u" / "qemu-system-x86_64", canary, owner=NOBODY)
    with pytest.raises(QemuProbeError, match="owned by uid 65534"):
        probe(str(user))
    with pytest.raises(QemuProbeError, match="owned by uid 65534"):
        find_qemu(explicit=str(user))
    invm = script(root_dir / "vm" / "qemu-system-x86_64", canary)
    with pytest.raises(QemuProbeError, match="VM directory"):
        find_qemu(startercall=str(invm), vm_dir=str(root_dir / "vm"))
    assert not canary.exists()
