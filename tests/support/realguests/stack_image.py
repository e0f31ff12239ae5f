"""The outer guest of the real two-level VM stack test: a Debian (the host's release and apt
sources) built with mmdebstrap, running systemd, sshd and libvirtd with QEMU, plus the tiny
ACPI-aware boot sector (examples/guests/acpi.img: powers off on the ACPI power button) as the
disk of the inner guest.

Built once per machine into ``CACHE`` (``stack-<hash>.img`` + kernel, initrd and the ssh key
baked into root's authorized_keys); the hash covers everything that goes into the image, so
a changed recipe builds a new one.  Run as a module to build ahead of the tests:
``python -m tests.support.realguests.stack_image``.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..paths import REPO
CACHE = Path(os.environ.get("CTYS_TEST_IMAGE_CACHE", "/var/cache/ctys-libvirt-tests"))
INNER = REPO / "examples" / "guests" / "acpi.img"
INNER_DISK = "/var/lib/libvirt/images/ctys-inner.img"   # where the inner guest's disk lives inside
PACKAGES = ("systemd-sysv,udev,kmod,dbus,linux-image-amd64,openssh-server,"
            "libvirt-daemon-system,qemu-system-x86,iproute2")
# units that only cost boot time in a throw-away test guest; libvirt-guests is masked so that
# nothing but the propagation under test stops the inner guest before the outer one goes down
MASK = ("apt-daily.timer", "apt-daily-upgrade.timer", "man-db.timer", "e2scrub_all.timer",
        "fstrim.timer", "libvirt-guests.service", "systemd-timesyncd.service",
        "virtlockd.socket", "virtlockd-admin.socket")
KERNEL_APPEND = "root=/dev/sda console=ttyS0 rw net.ifnames=0 quiet"

CUSTOMIZE = r"""
set -e
R="$1"
echo ctys-stack-outer > "$R/etc/hostname"
echo '/dev/sda / ext4 defaults 0 1' > "$R/etc/fstab"
mkdir -p -m 700 "$R/root/.ssh"
cp "$CTYS_STACK_PUBKEY" "$R/root/.ssh/authorized_keys"
chmod 600 "$R/root/.ssh/authorized_keys"
mkdir -p "$R/etc/systemd/network"
printf '[Match]\nName=eth* en*\n[Network]\nDHCP=ipv4\n' > "$R/etc/systemd/network/20-wired.network"
chroot "$R" systemctl enable systemd-networkd.service ssh.service libvirtd.service
for u in $CTYS_STACK_MASK; do chroot "$R" systemctl mask "$u"; done
printf 'UseDNS no\n' > "$R/etc/ssh/sshd_config.d/ctys-test.conf"
mkdir -p "$R/var/lib/libvirt/images"
cp "$CTYS_STACK_INNER" "$R$CTYS_STACK_INNER_DISK"
rm -f "$R"/etc/machine-id; : > "$R/etc/machine-id"
"""


@dataclass(frozen=True)
class StackImage:
    image: Path         # raw ext4 file system (the whole disk, no partition table)
    kernel: Path
    initrd: Path
    key: Path           # private ssh key whose public half root inside accepts
    append: str = KERNEL_APPEND
    inner_disk: str = INNER_DISK


def _sources() -> Path:
    for p in (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")):
        if p.is_file() and p.stat().st_size:
            return p
    raise RuntimeError("no apt sources on this host for mmdebstrap")


def _suite() -> str:
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.split("=", 1)[1].strip('"')
    raise RuntimeError("cannot tell the Debian suite from /etc/os-release")


def recipe_hash() -> str:
    h = hashlib.sha256()
    for part in (PACKAGES, " ".join(MASK), CUSTOMIZE, INNER_DISK, _suite(), "v1"):
        h.update(part.encode() + b"\0")
    h.update(INNER.read_bytes())
    return h.hexdigest()[:16]


def paths(digest: str) -> StackImage:
    stem = CACHE / f"stack-{digest}"
    return StackImage(image=Path(f"{stem}.img"), kernel=Path(f"{stem}.vmlinuz"),
                      initrd=Path(f"{stem}.initrd"), key=Path(f"{stem}.key"))


def ensure_image(log=sys.stderr) -> StackImage:
    """The cached image, built first when absent (a lock serialises concurrent builders)."""
    CACHE.mkdir(mode=0o755, parents=True, exist_ok=True)
    os.chmod(CACHE, 0o755)      # libvirt-qemu reads the kernel and the backing image from here
    digest = recipe_hash()
    out = paths(digest)
    with open(CACHE / f"stack-{digest}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not out.image.exists():
            _build(out, log)
    return out


def _build(out: StackImage, log) -> None:
    work = Path(tempfile.mkdtemp(prefix="stack-build-", dir=CACHE))
    try:
        key = work / "key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ctys-stack-test",
                        "-f", str(key)], check=True)
        root = work / "root"
        env = dict(os.environ, CTYS_STACK_PUBKEY=f"{key}.pub", CTYS_STACK_INNER=str(INNER),
                   CTYS_STACK_INNER_DISK=INNER_DISK, CTYS_STACK_MASK=" ".join(MASK))
        hook = work / "customize.sh"
        hook.write_text(CUSTOMIZE)
        subprocess.run(["mmdebstrap", "--variant=minbase", "--mode=root", "--format=directory",
                        f"--include={PACKAGES}", "--aptopt=Acquire::Retries \"3\"",
                        f"--customize-hook=sh {hook} \"$1\"",
                        _suite(), str(root), str(_sources())],
                       check=True, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        kernels = sorted((root / "boot").glob("vmlinuz-*"))
        initrds = sorted((root / "boot").glob("initrd.img-*"))
        if not kernels or not initrds:
            raise RuntimeError("the built tree has no /boot/vmlinuz-* or initrd.img-*")
        used = int(subprocess.run(["du", "-s", "--block-size=1M", str(root)], check=True,
                                  capture_output=True, text=True).stdout.split()[0])
        img = work / "image"
        subprocess.run(["mkfs.ext4", "-q", "-L", "root", "-d", str(root), str(img),
                        f"{used + 768}M"], check=True, stdout=log, stderr=log)
        for src, dst in ((kernels[-1], out.kernel), (initrds[-1], out.initrd), (key, out.key)):
            shutil.copyfile(src, dst)
        os.chmod(out.kernel, 0o644)
        os.chmod(out.initrd, 0o644)
        os.chmod(out.key, 0o600)
        os.chmod(img, 0o644)
        os.replace(img, out.image)   # last: its presence means the set is complete
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    print(ensure_image())
