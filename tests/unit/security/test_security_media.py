"""security.media through the plan: what a conf may attach (issue 8 item 3).

Confs owned by uid 65534 (untrusted: acts with nobody's rights) and by root (trusted, but
devices still need --allow-device).  Every refusal is checked against a root-only 0600
victim whose bytes, owner and mode must stay as they were."""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest

from ctys_libvirt.errors import ConfError
from ctys_libvirt.security.media import MediaRefused, conflicts
from ctys_libvirt.host.facts import host_facts
from ctys_libvirt.translate.plan import resolve_plan
from ctys_libvirt.translate.request import make_request
from support.translate import make_vm, touch

NOBODY = 65534
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to own files as uid 65534")


@pytest.fixture
def base():
    """A directory everybody may traverse (pytest's tmp_path is root-only 0700)."""
    d = Path(tempfile.mkdtemp(prefix="ctys-media-", dir="/var/tmp"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def victim(base):
    v = base / "root-only" / "victim.img"
    v.parent.mkdir(mode=0o755)
    v.write_bytes(b"root's secret disk\n" * 64)
    os.chmod(v, 0o600)
    return v


def fingerprint(p: Path):
    st = os.lstat(p)
    return hashlib.sha256(p.read_bytes()).hexdigest(), st.st_uid, st.st_gid, st.st_mode


def nobody_vm(base: Path, label: str = "vm1", **kw):
    vm = make_vm(base, label, **kw)
    d = base / label
    for p in [d, *d.iterdir()]:
        os.lchown(p, NOBODY, NOBODY)
    return vm


def test_untrusted_conf_cannot_attach_root_only_file(base, victim):
    before = fingerprint(victim)
    vm = nobody_vm(base, hdd_boot_image=victim)
    with pytest.raises(MediaRefused, match=r"untrusted.*uid 65534.*may not read and write") as e:
        resolve_plan(vm, make_request(), host_facts())
    assert e.value.exit_code == 3 and str(vm.source_path) in str(e.value)
    assert fingerprint(victim) == before


def test_untrusted_conf_symlink_in_vm_dir_to_root_only_file(base, victim):
    before = fingerprint(victim)
    vm = nobody_vm(base)
    link = base / "vm1" / "disk.img"
    link.symlink_to(victim)
    os.lchown(link, NOBODY, NOBODY)
    with pytest.raises(MediaRefused, match=f"-> {victim}"):
        resolve_plan(vm, make_request(bootmode=f"HDD%{link}"), host_facts())
    with pytest.raises(MediaRefused):
        resolve_plan(replace(vm, hdd_boot_image=link), make_request(), host_facts())
    assert fingerprint(victim) == before


@pytest.mark.parametrize("mode", ["CD", "FDD", "USB"])
def test_untrusted_conf_boot_media_and_data_disks_checked(base, victim, mode):
    vm = nobody_vm(base)
    with pytest.raises(MediaRefused):
        resolve_plan(vm, make_request(bootmode=f"{mode}%{victim}"), host_facts())
    with pytest.raises(MediaRefused):
        resolve_plan(replace(vm, extra_disks={"hdb": victim}), make_request(), host_facts())


def test_untrusted_read_only_file_is_a_cd_but_never_a_disk(base):
    shared = touch(base / "root-only-ro.iso")
    os.chmod(shared, 0o644)
    vm = nobody_vm(base)
    plan = resolve_plan(vm, make_request(bootmode=f"CD%{shared}"), host_facts())
    assert plan.disk("hdc").path == str(shared) and plan.disk("hdc").readonly
    with pytest.raises(MediaRefused, match="may not read and write"):
        resolve_plan(vm, make_request(bootmode=f"HDD%{shared}"), host_facts())


def test_untrusted_kernel_initrd_and_install_source_checked(base, victim):
    vm = nobody_vm(base)
    with pytest.raises(MediaRefused, match="kernel"):
        resolve_plan(vm, make_request(bootmode="KERNEL", kernel=str(victim)), host_facts())
    k = touch(base / "vm1" / "vmlinuz")
    os.chown(k, NOBODY, NOBODY)
    with pytest.raises(MediaRefused, match="initrd"):
        resolve_plan(vm, make_request(bootmode="KERNEL", kernel=f"{k}%{victim}"), host_facts())
    with pytest.raises(MediaRefused, match="install-source"):
        resolve_plan(vm, make_request(instmode=f"CD%{victim}%HDD%{base}/vm1/hda.img"), host_facts())


def test_untrusted_install_target_symlink_to_victim(base, victim):
    before = fingerprint(victim)
    vm = nobody_vm(base, inst_size="1M")
    link = base / "vm1" / "new.img"
    link.symlink_to(victim)
    with pytest.raises(MediaRefused):
        resolve_plan(vm, make_request(instmode=f"CD%{base}/vm1/hda.img%HDD%{link}%INIT"), host_facts())
    assert fingerprint(victim) == before


def test_install_target_dangling_symlink_refused_for_every_conf(base, tmp_path):
    for vm in (nobody_vm(base, inst_size="1M"), make_vm(tmp_path, inst_size="1M")):
        link = vm.conf_dir / "new.img"
        link.symlink_to(vm.conf_dir / "not-yet-there")
        with pytest.raises(MediaRefused, match="dangling symlink"):
            resolve_plan(vm, make_request(instmode=f"CD%{vm.conf_dir}/hda.img%HDD%{link}%INIT"), host_facts())
        assert not os.path.exists(vm.conf_dir / "not-yet-there")


def test_untrusted_install_target_only_where_the_owner_may_write(base):
    vm = nobody_vm(base, inst_size="1M")
    root_dir = base / "rootdir"
    root_dir.mkdir(mode=0o755)
    with pytest.raises(MediaRefused, match="may not create files"):
        resolve_plan(vm, make_request(instmode=f"CD%{base}/vm1/hda.img%HDD%{root_dir}/x.img%INIT"), host_facts())
    plan = resolve_plan(vm, make_request(instmode=f"CD%{base}/vm1/hda.img%HDD%{base}/vm1/x.img%INIT"), host_facts())
    assert plan.create_target.path == f"{base}/vm1/x.img"
    assert plan.create_target.owner == (NOBODY, NOBODY)      # the new image is the owner's


def test_untrusted_positive_controls(base):
    """The conf's own files, and a symlink to a file its owner may use elsewhere, work;
    the plan carries the resolved path."""
    vm = nobody_vm(base)
    elsewhere = touch(base / "nobody-elsewhere" / "disk.img")
    os.chown(elsewhere.parent, NOBODY, NOBODY)
    os.chown(elsewhere, NOBODY, NOBODY)
    link = base / "vm1" / "link.img"
    link.symlink_to(elsewhere)
    assert resolve_plan(vm, make_request(), host_facts()).disk("hda").path == f"{base}/vm1/hda.img"
    assert resolve_plan(vm, make_request(bootmode=f"HDD%{link}"), host_facts()).disk("hda").path == str(elsewhere)


def test_untrusted_group_access_counts(base):
    """A file root owns but nobody's group may read and write: the owner's groups count."""
    f = touch(base / "group.img")
    os.chown(f, 0, NOBODY)
    os.chmod(f, 0o660)
    vm = nobody_vm(base)
    assert resolve_plan(vm, make_request(bootmode=f"HDD%{f}"), host_facts()).disk("hda").path == str(f)
    os.chmod(f, 0o640)
    with pytest.raises(MediaRefused):
        resolve_plan(vm, make_request(bootmode=f"HDD%{f}"), host_facts())


def test_root_conf_in_world_writable_dir_acts_as_nobody(base, victim):
    d = base / "open"
    d.mkdir()
    os.chmod(d, 0o777)        # anybody could have written this root-owned conf
    vm = make_vm(d, hdd_boot_image=victim)
    with pytest.raises(MediaRefused, match="uid 65534"):
        resolve_plan(vm, make_request(), host_facts())


def test_trusted_root_conf_with_pool_image_works(tmp_path):
    """Root's own conf pointing at an image elsewhere (a pool directory) keeps working,
    through a symlink too; the plan gets the resolved path."""
    pool = tmp_path / "pool"
    img = touch(pool / "guest.img")
    os.chmod(img, 0o600)
    vm = make_vm(tmp_path, hdd_boot_image=img)
    assert resolve_plan(vm, make_request(), host_facts()).disk("hda").path == str(img)
    link = vm.conf_dir / "l.img"
    link.symlink_to(img)
    assert resolve_plan(replace(vm, hdd_boot_image=link), make_request(), host_facts()).disk("hda").path == str(img)


@pytest.mark.parametrize("dev", ["/dev/null", "/dev/zero", "/dev/vda", "/dev/sda", "/dev/loop0"])
def test_devices_refused_even_for_root_confs(tmp_path, dev):
    if not os.path.exists(dev):
        pytest.skip(f"{dev} not on this host")
    vm = make_vm(tmp_path, hdd_boot_image=Path(dev))
    with pytest.raises(MediaRefused, match=f"{dev}.*host device") as e:
        resolve_plan(vm, make_request(), host_facts())
    assert "--allow-device" in str(e.value)
    with pytest.raises(MediaRefused):
        resolve_plan(make_vm(tmp_path), make_request(bootmode=f"CD%{dev}"), host_facts())


def test_device_via_symlink_refused_and_allowed_by_resolved_name(tmp_path):
    vm = make_vm(tmp_path)
    link = vm.conf_dir / "disk.img"
    link.symlink_to("/dev/null")
    with pytest.raises(MediaRefused, match="-> /dev/null"):
        resolve_plan(vm, make_request(bootmode=f"HDD%{link}"), host_facts())
    plan = resolve_plan(vm, make_request(bootmode=f"HDD%{link}", allow_devices=["/dev/null"]), host_facts())
    assert plan.disk("hda").path == "/dev/null" and plan.disk("hda").block
    # allowing one device allows no other
    with pytest.raises(MediaRefused):
        resolve_plan(vm, make_request(bootmode="HDD%/dev/zero", allow_devices=["/dev/null"]), host_facts())


def test_media_refused_is_a_conf_error():
    assert issubclass(MediaRefused, ConfError)


def test_conflicts_either_side_writing():
    class D:
        def __init__(self, path, ro):
            self.path, self.readonly, self.target = path, ro, "hda"

    in_use = {"/a.img": [("A", False)], "/b.iso": [("B", True)]}
    assert "running domain A" in conflicts([D("/a.img", False)], in_use)
    assert "running domain A" in conflicts([D("/a.img", True)], in_use)
    assert "running domain B" in conflicts([D("/b.iso", False)], in_use)
    assert conflicts([D("/b.iso", True)], in_use) is None
    assert conflicts([D("/c.img", False)], in_use) is None


def test_argv_disks_reads_what_translate_argv_writes():
    from ctys_libvirt.security.inuse import argv_disks

    argv = ["qemu", "-hda", "/a.img", "-cdrom", "/c.iso", "-usbdevice", "disk:/u.img",
            "-drive", "file=/x,,y.img,format=raw,if=ide,index=0,media=disk",
            "-drive", "file=/d.iso,format=raw,if=ide,index=2,media=cdrom", "-m", "16"]
    assert argv_disks(argv) == [("/a.img", False), ("/c.iso", True), ("/u.img", False),
                                ("/x,y.img", False), ("/d.iso", True)]
