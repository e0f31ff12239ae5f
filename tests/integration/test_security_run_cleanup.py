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

from ctys_libvirt.images import clean_stale_temps, ensure_install_target
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
