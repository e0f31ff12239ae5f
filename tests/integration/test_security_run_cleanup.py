"""Issue 8 item 6: nothing left behind, nothing of the user's overwritten.

SIGTERM during INSTMODE ...%INIT (a qemu-img that never finishes stands in for a large
preallocation), stale temporaries of dead processes, --serial-log never truncating what is
not a serial log of ours, lock files going when free."""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from ctys_libvirt.host.images import clean_stale_temps, ensure_install_target
from lifecycle_helpers import CLI, janitor, run_cli, unique_label, write_conf  # noqa: F401

FAKE_QEMU_IMG = """#!/bin/sh
# stands in for a qemu-img creating a huge preallocated image: writes, then hangs
for a; do target=$prev; prev=$a; done
printf 'partial image data' > "$target" || exit 9
echo $$ > "$CTYS_TEST_QEMU_IMG_PID.tmp" && mv "$CTYS_TEST_QEMU_IMG_PID.tmp" "$CTYS_TEST_QEMU_IMG_PID"
exec sleep 600
"""


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def _wait_file(p: Path, proc: subprocess.Popen, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while not p.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{p} never appeared"
        time.sleep(0.02)


@pytest.mark.parametrize("backend", ["direct", pytest.param("libvirt", marks=pytest.mark.libvirt)])
def test_sigterm_during_init_leaves_no_image_and_no_qemu_img(vmroot, media, tmp_path, backend, janitor):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "qemu-img").write_text(FAKE_QEMU_IMG)
    os.chmod(fake / "qemu-img", 0o755)
    label = janitor.add(unique_label("sigterm"))
    conf = write_conf(vmroot, label, image=media["hello"], extra="HDDBOOTIMAGE_INST_SIZE=1M\n")
    vmdir = conf.parent
    before = sorted(os.listdir(vmdir))
    pidfile = tmp_path / "qemu-img.pid"
    env = dict(os.environ, PATH=f"{fake}:{os.environ['PATH']}", CTYS_TEST_QEMU_IMG_PID=str(pidfile),
               CTYS_RUNTIME_DIR=str(tmp_path / "rt"))
    env.pop("LIBVIRT_DEFAULT_URI", None)
    proc = subprocess.Popen(CLI + ["create", str(conf), "--backend", backend, "--console", "NONE",
                                   "--instmode", f"CD%{vmdir}/hda.img%HDD%{vmdir}/new.img%INIT"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    qimg = None
    try:
        _wait_file(pidfile, proc)
        qimg = int(pidfile.read_text())
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 143, (out, err)
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        assert not _alive(qimg), "qemu-img survived the SIGTERM"
        assert sorted(os.listdir(vmdir)) == before      # no target, no .new.img.ctys-new.<pid>
        assert not (tmp_path / "rt" / label).exists()
    finally:
        if proc.poll() is None:
            proc.kill()
        if qimg and _alive(qimg):
            os.kill(qimg, signal.SIGKILL)


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_stale_temporaries_of_dead_processes_go_at_the_next_create(tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep me")
    os.chmod(victim, 0o600)
    digest = sha(victim)
    dead = _dead_pid()
    stale = tmp_path / f".new.img.ctys-new.{dead}"
    stale.write_bytes(b"\0" * 4096)
    planted = tmp_path / f".x.img.ctys-new.{_dead_pid()}"
    planted.symlink_to(victim)
    live = tmp_path / f".busy.img.ctys-new.{os.getppid()}"      # a live process's: kept
    live.write_bytes(b"")
    assert ensure_install_target(tmp_path / "new.img", "raw", "1M") is True
    names = set(os.listdir(tmp_path))
    assert stale.name not in names and planted.name not in names
    assert live.name in names and "new.img" in names
    assert sha(victim) == digest and victim.stat().st_mode & 0o777 == 0o600


def test_init_target_never_written_through_a_symlink(tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"root's data")
    os.chmod(victim, 0o600)
    digest = sha(victim)
    link = tmp_path / "new.img"
    link.symlink_to(victim)
    assert ensure_install_target(link, "raw", "1M") is False
    dangling = tmp_path / "dangling.img"
    dangling.symlink_to(tmp_path / "nowhere")
    assert ensure_install_target(dangling, "raw", "1M") is False
    assert not (tmp_path / "nowhere").exists()
    # a temporary name planted in advance for our pid cannot redirect the write either
    planted = tmp_path / f".fresh.img.ctys-new.{os.getpid()}"
    planted.symlink_to(victim)
    assert ensure_install_target(tmp_path / "fresh.img", "raw", "1M") is True
    assert sha(victim) == digest and os.path.islink(planted)
    assert (tmp_path / "fresh.img").stat().st_size == 1024 * 1024


def test_init_target_given_to_the_owner(tmp_path):
    t = tmp_path / "owned.img"
    assert ensure_install_target(t, "qcow2", "1M", owner=(65534, 65534)) is True
    st = t.stat()
    assert (st.st_uid, st.st_gid) == (65534, 65534) and not t.is_symlink()


def test_clean_stale_temps_reports(tmp_path):
    dead = _dead_pid()
    (tmp_path / f".a.ctys-new.{dead}").write_bytes(b"x")
    (tmp_path / "a.ctys-new.1").write_bytes(b"x")          # not our pattern (no leading dot)
    assert clean_stale_temps(tmp_path) == [f".a.ctys-new.{dead}"]
    assert (tmp_path / "a.ctys-new.1").exists()


# --- --serial-log --------------------------------------------------------------------------

BACKENDS = ["direct", pytest.param("libvirt", marks=[pytest.mark.libvirt, pytest.mark.qemu])]


def _create(conf: Path, backend: str, rt: Path, *extra: str):
    return run_cli("create", str(conf), "--backend", backend, "--console", "NONE", *extra,
                   env={"CTYS_RUNTIME_DIR": str(rt)})


def _cancel(label: str, backend: str, rt: Path):
    return run_cli("cancel", label, "--backend", backend, "--mode", "FORCE",
                   env={"CTYS_RUNTIME_DIR": str(rt)})


def _fingerprint(p: Path):
    st = os.lstat(p)
    return sha(p), st.st_uid, st.st_gid, st.st_mode, st.st_size


@pytest.mark.parametrize("backend", BACKENDS)
def test_serial_log_never_truncates_what_is_not_ours(vmroot, media, tmp_path, backend, janitor):
    label = janitor.add(unique_label("slog"))
    conf = write_conf(vmroot, label, image=media["hello"])
    victim = vmroot / "victim.txt"
    victim.write_text("root's notes\n")
    os.chmod(victim, 0o600)
    link = vmroot / "link.log"
    link.symlink_to(victim)
    dangling = vmroot / "dangling.log"
    dangling.symlink_to(vmroot / "would-be-created")
    keep = {p: _fingerprint(p) for p in (conf, victim)}
    for target, why in ((conf, "conf itself"), (victim, "not a serial log of ours"),
                        (link, "symlink"), (dangling, "symlink")):
        r = _create(conf, backend, tmp_path / "rt", "--serial-log", str(target))
        assert r.returncode == 1, (target, r.stdout, r.stderr)
        assert why in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert {p: _fingerprint(p) for p in keep} == keep
    assert not (vmroot / "would-be-created").exists()
    assert os.path.islink(link) and os.readlink(link) == str(victim)


@pytest.mark.parametrize("backend", BACKENDS)
def test_serial_log_of_ours_is_reused(vmroot, media, tmp_path, backend, janitor):
    """Positive control: a new file is created and marked, QEMU writes the guest's output
    to it, and the next run may reuse it."""
    from lifecycle_helpers import wait_marker

    label = janitor.add(unique_label("slog"))
    conf = write_conf(vmroot, label, image=media["hello"])
    log = vmroot / "serial.log"
    rt = vmroot / "rt"      # QEMU runs as libvirt-qemu: a reachable runtime base
    for _ in range(2):
        r = _create(conf, backend, rt, "--serial-log", str(log))
        assert r.returncode == 0, r.stderr
        wait_marker(log, "CTYS-GUEST-OK", timeout=90)
        assert _cancel(label, backend, rt).returncode == 0
    from ctys_libvirt.security.seriallog import is_ours

    assert is_ours(str(log))


def test_serial_log_created_for_a_failed_start_is_removed(vmroot, media, tmp_path):
    label = unique_label("slog")
    conf = write_conf(vmroot, label, image=media["hello"], extra='ARGSADD="-device ctys-no-such-device"\n')
    log = vmroot / "never.log"
    r = _create(conf, "direct", vmroot / "rt", "--serial-log", str(log))
    assert r.returncode == 4, r.stderr
    assert not log.exists()


# --- lock files ------------------------------------------------------------------------------

@pytest.mark.libvirt
def test_label_lock_file_goes_when_free(vmroot, media, janitor):
    from ctys_libvirt.backends.libvirt import label_lock, lock_dir

    label = janitor.add(unique_label("lock"))
    lock = lock_dir() / f"{label}.lock"
    with label_lock(label):
        assert lock.exists()
    assert not lock.exists()
    conf = write_conf(vmroot, label, image=media["hello"], extra="SMP=1000\n")   # fails: conf error
    assert run_cli("create", str(conf), "--backend", "libvirt", "--console", "NONE").returncode == 3
    assert not lock.exists()


def test_label_lock_still_excludes_while_the_file_is_replaced(tmp_path):
    """A waiter that got the lock on an unlinked file retries on the current one: two
    holders never overlap (checked with a second process holding the lock)."""
    import textwrap

    from ctys_libvirt.backends.libvirt import label_lock

    label = unique_label("lock")
    marker = tmp_path / "held"
    code = textwrap.dedent(f"""
        import sys, time, pathlib
        from ctys_libvirt.backends.libvirt import label_lock
        with label_lock({label!r}):
            pathlib.Path({str(marker)!r}).write_text("in")
            sys.stdin.readline()
            pathlib.Path({str(marker)!r}).write_text("out")
    """)
    import sys

    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, text=True)
    try:
        _wait_file(marker, holder)
        holder.stdin.write("\n")
        holder.stdin.flush()
        with label_lock(label):
            assert marker.read_text() == "out"      # we got it only after the holder left
        holder.wait(timeout=30)
    finally:
        if holder.poll() is None:
            holder.kill()


# --- a failed install run keeps the definition ---------------------------------------------

@pytest.mark.libvirt
@pytest.mark.qemu
def test_failed_install_run_never_rewrites_the_definition(vmroot, media, janitor, libvirt_conn):
    import libvirt

    label = janitor.add(unique_label("inst"))
    conf = write_conf(vmroot, label, image=media["hello"])
    assert run_cli("create", str(conf), "--backend", "libvirt", "--console", "NONE").returncode == 0
    assert run_cli("cancel", label, "--backend", "libvirt", "--mode", "FORCE").returncode == 0
    dom = libvirt_conn.lookupByName(label)
    before = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    r = run_cli("create", str(conf), "--backend", "libvirt", "--console", "NONE",
                "--instmode", f"CD%{media['hello-iso']}%HDD%{conf.parent / 'hda.img'}",
                "--argsadd", "-device ctys-no-such-device")
    assert r.returncode == 4 and "ctys-no-such-device" in r.stderr, r.stderr
    assert libvirt_conn.lookupByName(label).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE) == before


def test_named_temporary_fallback_without_o_tmpfile(tmp_path, monkeypatch):
    """Filesystems without O_TMPFILE: the named temporary is created O_EXCL|O_NOFOLLOW (a
    symlink planted at its name stops the create, the victim untouched) and is gone after."""
    import errno

    from ctys_libvirt.host import images
    from ctys_libvirt.errors import BackendError

    real_open = os.open

    def no_tmpfile(path, flags, *a, **kw):
        if flags & os.O_TMPFILE == os.O_TMPFILE:
            raise OSError(errno.EOPNOTSUPP, "Operation not supported")
        return real_open(path, flags, *a, **kw)

    monkeypatch.setattr(images.os, "open", no_tmpfile)
    assert ensure_install_target(tmp_path / "a.img", "qcow2", "1M") is True
    assert sorted(os.listdir(tmp_path)) == ["a.img"]
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    (tmp_path / f".b.img.ctys-new.{os.getpid()}").symlink_to(victim)
    with pytest.raises(BackendError, match="ctys-new"):
        ensure_install_target(tmp_path / "b.img", "raw", "1M")
    assert victim.read_bytes() == b"keep" and not (tmp_path / "b.img").exists()
