"""Issue 8 items 3 and 5 through real QEMU and libvirt: the direct backend started as root
runs QEMU as an unprivileged user under -sandbox, lends it the media and gives them back;
no VM ever gets a disk another running VM holds; confs owned by uid 65534 and by root."""
from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
from pathlib import Path

import psutil
import pytest

from support.fakeqemu import make_fake
from support.cli import assert_one_line_error, run_cli
from support.confs import write_conf
from support.domains import unique_label
from support.guests import wait_marker

pytestmark = [pytest.mark.qemu, pytest.mark.skipif(os.geteuid() != 0, reason="root only")]
QEMU = "/usr/bin/qemu-system-x86_64"
QEMU_USER = pwd.getpwnam("libvirt-qemu")


@pytest.fixture
def rt():
    """A private runtime base QEMU's user can reach; whatever a test left running is
    stopped afterwards."""
    top = Path(tempfile.mkdtemp(prefix="ctysrt", dir="/var/tmp"))
    os.chmod(top, 0o755)
    base = top / "rt"
    yield base
    if base.is_dir():
        for d in base.iterdir():
            run_cli("cancel", d.name, "--backend", "direct", "--mode", "FORCE",
                    env={"CTYS_RUNTIME_DIR": str(base)})
    shutil.rmtree(top, ignore_errors=True)


def direct(rt: Path, *args: str):
    return run_cli(*args, "--backend", "direct", env={"CTYS_RUNTIME_DIR": str(rt)})


def status_ids(pid: int):
    text = Path(f"/proc/{pid}/status").read_text()
    get = lambda key: [int(x) for x in next(l for l in text.splitlines() if l.startswith(key)).split()[1:]]
    return get("Uid:"), get("Gid:")


def fingerprint(p: Path):
    st = os.stat(p)
    return hashlib.sha256(p.read_bytes()).hexdigest(), st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


def create_json(rt: Path, conf: Path, *extra: str):
    import json

    r = direct(rt, "create", str(conf), "--console", "NONE", "--format", "json", *extra)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_real_qemu_runs_as_libvirt_qemu_sandboxed_and_media_go_back(vmroot, media, rt):
    label = unique_label("runas")
    conf = write_conf(vmroot, label, image=media["hello"])
    hda = conf.parent / "hda.img"
    os.chmod(hda, 0o600)                     # root-only: QEMU's user gets it lent for the run
    before = fingerprint(hda)
    log = vmroot / f"{label}.log"
    res = create_json(rt, conf, "--serial-log", str(log))
    pid = res["pid"]
    uids, gids = status_ids(pid)
    assert uids == [QEMU_USER.pw_uid] * 4 and gids == [QEMU_USER.pw_gid] * 4
    assert subprocess.run(["ps", "-o", "user=", "-p", str(pid)], capture_output=True,
                          text=True).stdout.strip() == "libvirt-qemu"
    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert b"-sandbox" in cmd and b"-daemonize" not in cmd
    assert b"on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny" in cmd
    assert Path(f"/proc/{pid}/status").read_text().count("Seccomp:\t2") == 1
    wait_marker(log, "CTYS-GUEST-OK", timeout=90)
    assert os.stat(hda).st_uid == QEMU_USER.pw_uid          # lent while it runs
    listed = direct(rt, "list", "--format", "json")
    assert label in listed.stdout and "libvirt-qemu" in listed.stdout
    r = direct(rt, "cancel", label, "--mode", "FORCE")
    assert r.returncode == 0, r.stderr
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    after = fingerprint(hda)
    assert after[1:] == before[1:]                           # owner, group, mode given back
    assert not (rt / label).exists()


def test_run_as_nobody_and_root(vmroot, media, rt):
    label = unique_label("runas")
    conf = write_conf(vmroot, label, image=media["hello"])
    res = create_json(rt, conf, "--run-as", "nobody")
    assert status_ids(res["pid"])[0] == [65534] * 4
    assert direct(rt, "cancel", label, "--mode", "FORCE").returncode == 0
    res = create_json(rt, conf, "--run-as", "root")
    assert status_ids(res["pid"])[0] == [0] * 4
    assert any("runs as root" in m for m in res["messages"])
    assert direct(rt, "cancel", label, "--mode", "FORCE").returncode == 0


def test_failed_start_gives_the_media_back(vmroot, media, rt):
    label = unique_label("runas")
    conf = write_conf(vmroot, label, image=media["hello"], extra='ARGSADD="-device ctys-no-such-device"\n')
    hda = conf.parent / "hda.img"
    before = fingerprint(hda)
    r = direct(rt, "create", str(conf), "--console", "NONE")
    assert_one_line_error(r, 4, "ctys-no-such-device")
    assert fingerprint(hda) == before and not (rt / label).exists()


def test_argsadd_cannot_take_pidfile_or_daemonize(vmroot, media, rt, tmp_path):
    """Refused by the ARGSADD policy or dropped by the backend: either way no file of the
    conf's choosing is written and the QEMU stays visible to list and cancel."""
    label = unique_label("pidf")
    out = tmp_path / "elsewhere.pid"
    conf = write_conf(vmroot, label, image=media["hello"],
                      extra=f'ARGSADD="-pidfile {out} -daemonize"\n')
    r = direct(rt, "create", str(conf), "--console", "NONE")
    assert r.returncode in (0, 3), r.stderr
    if r.returncode == 0:
        listed = direct(rt, "list", "--format", "records")
        assert label in listed.stdout
        assert direct(rt, "cancel", label, "--mode", "FORCE").returncode == 0
    assert not out.exists()
    assert not [p for p in psutil.process_iter(["cmdline"]) if label in " ".join(p.info["cmdline"] or [])]


def test_untrusted_conf_of_uid_65534_boots_with_its_own_image(media, rt):
    base = Path(tempfile.mkdtemp(prefix="ctys-untrusted-", dir="/var/tmp"))
    os.chmod(base, 0o755)
    try:
        label = unique_label("nobody")
        conf = write_conf(base, label, image=media["hello"])
        for p in (conf.parent, conf, conf.parent / "hda.img"):
            os.chown(p, 65534, 65534)
        before = fingerprint(conf.parent / "hda.img")
        log = base / "serial.log"
        res = create_json(rt, conf, "--serial-log", str(log))
        wait_marker(log, "CTYS-GUEST-OK", timeout=90)
        assert direct(rt, "cancel", label, "--mode", "FORCE").returncode == 0
        assert fingerprint(conf.parent / "hda.img")[1:] == before[1:]
        assert res["pid"]
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("how", ["absolute", "symlink"])
def test_untrusted_conf_never_gets_a_root_only_victim(media, rt, how):
    base = Path(tempfile.mkdtemp(prefix="ctys-untrusted-", dir="/var/tmp"))
    os.chmod(base, 0o755)
    try:
        victim = base / "victim.img"
        shutil.copyfile(media["hello"], victim)
        os.chmod(victim, 0o600)
        before = fingerprint(victim)
        label = unique_label("nobody")
        target = victim
        if how == "symlink":
            (base / label).mkdir()
            target = base / label / "disk.img"
            target.symlink_to(victim)
        conf = write_conf(base, label, extra=f'HDDBOOTIMAGE="{target}"\n')
        for p in (conf.parent, conf):
            os.chown(p, 65534, 65534)
        for backend in ("direct", "libvirt"):
            r = run_cli("create", str(conf), "--backend", backend, "--console", "NONE",
                        env={"CTYS_RUNTIME_DIR": str(rt)})
            assert_one_line_error(r, 3, "untrusted", "uid 65534")
        assert fingerprint(victim) == before
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("backend", ["direct", pytest.param("libvirt", marks=pytest.mark.libvirt)])
def test_device_disk_refused_by_default_even_for_root(vmroot, rt, backend, janitor):
    label = janitor.add(unique_label("dev"))
    for dev in ("/dev/vda", "/dev/sda", "/dev/loop0", "/dev/zero"):
        if os.path.exists(dev):
            break
    conf = write_conf(vmroot, label, extra=f'HDDBOOTIMAGE="{dev}"\n')
    r = run_cli("create", str(conf), "--backend", backend, "--console", "NONE",
                env={"CTYS_RUNTIME_DIR": str(rt)})
    assert_one_line_error(r, 3, dev, "host device", "--allow-device")


# --- another running VM's disk ---------------------------------------------------------------

@pytest.mark.libvirt
@pytest.mark.parametrize("a_backend,b_backend", [("libvirt", "libvirt"), ("libvirt", "direct"),
                                                 ("direct", "direct"), ("direct", "libvirt")])
def test_running_vms_disk_never_attached_to_another(vmroot, media, rt, janitor, a_backend, b_backend):
    a = janitor.add(unique_label("vma"))
    b = janitor.add(unique_label("vmb"))
    conf_a = write_conf(vmroot, a, image=media["hello"])
    disk = conf_a.parent / "hda.img"
    r = run_cli("create", str(conf_a), "--backend", a_backend, "--console", "NONE",
                env={"CTYS_RUNTIME_DIR": str(rt)})
    assert r.returncode == 0, r.stderr
    try:
        link = vmroot / "link-to-a.img"
        link.symlink_to(disk)
        for target in (disk, link):
            conf_b = write_conf(vmroot, b, extra=f'HDDBOOTIMAGE="{target}"\n')
            r = run_cli("create", str(conf_b), "--backend", b_backend, "--console", "NONE",
                        env={"CTYS_RUNTIME_DIR": str(rt)})
            assert_one_line_error(r, 4, f"in use by running domain {a}")
            # as the CD of B (read-only) it is still refused: A writes it
            conf_b = write_conf(vmroot, b)
            r = run_cli("create", str(conf_b), "--backend", b_backend, "--console", "NONE",
                        "--bootmode", f"CD%{target}", env={"CTYS_RUNTIME_DIR": str(rt)})
            assert_one_line_error(r, 4, f"in use by running domain {a}")
        digest = hashlib.sha256(disk.read_bytes()).hexdigest()
        assert hashlib.sha256(media["hello"].read_bytes()).hexdigest() == digest
    finally:
        run_cli("cancel", a, "--backend", a_backend, "--mode", "FORCE", env={"CTYS_RUNTIME_DIR": str(rt)})
    # A stopped: B may have it now (positive control)
    conf_b = write_conf(vmroot, b, extra=f'HDDBOOTIMAGE="{disk}"\n')
    r = run_cli("create", str(conf_b), "--backend", b_backend, "--console", "NONE",
                env={"CTYS_RUNTIME_DIR": str(rt)})
    assert r.returncode == 0, r.stderr
    run_cli("cancel", b, "--backend", b_backend, "--mode", "FORCE", env={"CTYS_RUNTIME_DIR": str(rt)})


# --- the fake QEMUs keep QEMU's sandbox rules ------------------------------------------------

def test_fake_qemu_obeys_the_sandbox_like_qemu(tmp_path):
    fake = make_fake(tmp_path / "bin", "4.1.1")
    full = "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"
    for extra in (["-daemonize"], ["-runas", "nobody"]):
        p = subprocess.run([str(fake), "-sandbox", full, "-display", "none", *extra], timeout=30)
        assert p.returncode == -signal.SIGSYS, extra


def test_sandboxed_fake_suspend_resume_through_descriptors(tmp_path):
    """SUSPEND/RESUME of a sandboxed QEMU: getfd + migrate fd:, -incoming fd:N (an exec:
    would kill it, as the fake does like QEMU's seccomp filter)."""
    from ctys_libvirt.backends.direct import DirectBackend
    from ctys_libvirt.model import BootRequest, CancelMode, ConsoleType, CreateOptions
    from support.fakeqemu import vms

    top = Path(tempfile.mkdtemp(prefix="ctysfk", dir="/var/tmp"))
    os.chmod(top, 0o755)      # the fake runs as libvirt-qemu: it must reach its script
    try:
        fake = make_fake(top / "bin", "4.1.1", python="/usr/bin/python3")
        # the fake logs its argv next to itself: a writable log file, not a writable dir
        # (the binary rule refuses binaries in group/other-writable directories)
        log = Path(str(fake) + ".argv.jsonl")
        log.touch()
        os.chmod(log, 0o666)
        be = DirectBackend(qemu=str(fake), base=top / "rt")
        vm = vms.debian5(top)
        import dataclasses

        vm = dataclasses.replace(vm, label=unique_label("fk"), nic_model=None, memory_mib=16)
        res = be.create(vm, BootRequest(console=ConsoleType.NONE), CreateOptions())
        assert status_ids(res.pid)[0] == [QEMU_USER.pw_uid] * 4
        r = be.cancel(vm.label, CancelMode.SUSPEND)
        assert r.action == "saved" and be.runtime(vm.label).vmstate.read_bytes().startswith(b"FAKE-VMSTATE")
        r = be.cancel(vm.label, CancelMode.RESUME)
        assert r.action == "restored"
        info = be.lookup(vm.label)
        assert info.state == "running" and info.user == "libvirt-qemu"
        be.cancel(vm.label, CancelMode.FORCE)
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_a_qemu_without_our_pidfile_is_still_found(tmp_path):
    """Every QEMU we started stays visible to list and cancel, even when its pidfile is
    not where we asked (found by its argv, which names our runtime dir)."""
    from ctys_libvirt.backends.direct import DirectBackend
    from ctys_libvirt.model import BootRequest, CancelMode, ConsoleType, CreateOptions
    from support.fakeqemu import vms
    import dataclasses

    base = Path(tempfile.mkdtemp(prefix="ctysnp", dir="/tmp"))
    try:
        fake = make_fake(tmp_path / "bin", "0.9.1", behaviour="no-pidfile")
        be = DirectBackend(qemu=str(fake), base=base)
        vm = dataclasses.replace(vms.debian5(tmp_path), label=unique_label("nopid"), nic_model=None,
                                 memory_mib=16)
        res = be.create(vm, BootRequest(console=ConsoleType.NONE), CreateOptions())
        assert res.pid and psutil.Process(res.pid).is_running()
        assert [i.pid for i in be.list() if i.name == vm.label] == [res.pid]
        r = be.cancel(vm.label, CancelMode.FORCE)
        assert r.state == "shutoff"
        assert not psutil.pid_exists(res.pid) or psutil.Process(res.pid).status() == psutil.STATUS_ZOMBIE
    finally:
        for p in psutil.process_iter(["cmdline"]):
            if any(str(tmp_path) in c for c in (p.info["cmdline"] or [])[:3]):
                p.kill()
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.libvirt
@pytest.mark.parametrize("backend", ["libvirt", "direct"])
def test_root_conf_with_image_in_the_pool_directory_keeps_working(vmroot, media, rt, janitor, backend):
    """Positive control of item 3: root's own conf, its image in libvirt's pool directory
    (reached through a symlink in the VM dir, too), boots through both backends."""
    pool = Path("/var/lib/libvirt/images")
    label = janitor.add(unique_label("pool"))
    img = pool / f"{label}.img"
    shutil.copyfile(media["hello"], img)
    os.chmod(img, 0o600)
    try:
        conf = write_conf(vmroot, label, extra='HDDBOOTIMAGE="${CTYSWRAPPERPATH}/disk.img"\n')
        (conf.parent / "disk.img").symlink_to(img)
        log = vmroot / f"{label}.log"
        r = run_cli("create", str(conf), "--backend", backend, "--console", "NONE", "--serial-log", str(log),
                    env={"CTYS_RUNTIME_DIR": str(rt)})
        assert r.returncode == 0, r.stderr
        wait_marker(log, "CTYS-GUEST-OK", timeout=90)
        assert run_cli("cancel", label, "--backend", backend, "--mode", "FORCE",
                       env={"CTYS_RUNTIME_DIR": str(rt)}).returncode == 0
        st = os.stat(img)
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 0, 0o600)
    finally:
        img.unlink(missing_ok=True)
