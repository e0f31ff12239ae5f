"""Real Debian boot media for the tests, made from Debian packages only and cached per machine.

* ``installer()``: the Debian 12 installer's own kernel + initrd (package
  ``debian-installer-12-netboot-amd64``), used in place.
* ``installer_cd()``: a grub-mkrescue CD of that kernel + initrd whose grub menu boots it
  with ``console=ttyS0`` (grub-pc-bin, grub-common, xorriso, mtools).
* ``systemd_guest(extra_packages)``: an ext4 disk of an mmdebstrap minbase bookworm with
  systemd-sysv, linux-image-amd64, udev, kmod and dbus (dbus: without it logind ignores the
  ACPI power button), plus its own /boot kernel + initrd to boot by KERNEL.  Root has no
  password; the guest is only ever driven by serial output and ACPI.

Everything is built once per machine under CACHE (env CTYS_TEST_CACHE), in a directory
named by a hash of the recipe, built in a temp dir next to it and renamed into place, under
an flock so parallel test runs (or engineers) share one build.  The directory is 0755 so
libvirt-qemu can read the images; tests copy disks before booting them (a guest writes to
its root disk, libvirt relabels what it boots)."""
from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Tuple

CACHE = Path(os.environ.get("CTYS_TEST_CACHE", "/var/cache/ctys-libvirt-tests"))
INSTALLER_DIR = Path("/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64")
BASE_PACKAGES = ("systemd-sysv", "linux-image-amd64", "udev", "kmod", "dbus")
SUITE = "bookworm"
RECIPE_VERSION = "1"          # bump when the build steps below change
IMAGE_SIZE = "1600M"          # the minbase tree is ~700 MB; room for a journal and logs

# What the tests read on serial (the kernel's banner, the installer's init, systemd).
KERNEL_BANNER = "Linux version"
INSTALLER_INIT = "Run /init as init process"
INSTALLER_SYSLOG = "Starting system log daemon"   # the installer's rcS, after /init
SYSTEMD_BANNER = "systemd["           # "systemd[1]: ..." once PID 1 logs to the console
GETTY_ISSUE = "ctys-guest ttyS0"     # agetty's issue line on the serial console, then "login:"


class MissingTool(RuntimeError):
    """A Debian package the real guests need is not installed (scripts/setup.sh installs it)."""


@dataclass(frozen=True)
class BootFiles:
    kernel: Path
    initrd: Path


@dataclass(frozen=True)
class SystemdGuest:
    disk: Path            # raw ext4 filesystem image (no partition table): root=/dev/<disk>
    kernel: Path
    initrd: Path


def _need(path: Path, package: str) -> Path:
    if not path.exists():
        raise MissingTool(f"{path} missing: install the Debian package {package} (scripts/setup.sh)")
    return path


def _tool(name: str, package: str) -> str:
    found = shutil.which(name)
    if not found:
        raise MissingTool(f"{name} missing: install the Debian package {package} (scripts/setup.sh)")
    return found


def _cache_dir() -> Path:
    CACHE.mkdir(mode=0o755, parents=True, exist_ok=True)
    os.chmod(CACHE, 0o755)
    return CACHE


def _cached(key: str, build) -> Path:
    """``CACHE/<key>``, made by ``build(tmpdir)`` once (under an flock, renamed in place)."""
    cache = _cache_dir()
    final = cache / key
    if final.is_dir():
        return final
    with open(cache / f".{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if final.is_dir():                      # another process built it meanwhile
            return final
        tmp = cache / f".{key}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(mode=0o755)
        try:
            build(tmp)
            os.chmod(tmp, 0o755)
            tmp.rename(final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def installer() -> BootFiles:
    """The installer's kernel and initrd as the package installs them (read-only use)."""
    pkg = "debian-installer-12-netboot-amd64"
    return BootFiles(_need(INSTALLER_DIR / "linux", pkg), _need(INSTALLER_DIR / "initrd.gz", pkg))


def _hash(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def _file_id(p: Path) -> str:
    st = p.stat()
    return f"{p}:{st.st_size}:{int(st.st_mtime)}"


def installer_cd(append: str = "console=ttyS0") -> Path:
    """A BIOS-bootable grub CD holding the installer kernel + initrd; its only menu entry
    boots them with ``append`` at once (timeout 0), grub itself talking on the serial line."""
    boot = installer()
    mkrescue = _tool("grub-mkrescue", "grub-common")
    _tool("xorriso", "xorriso")
    _tool("mformat", "mtools")
    _need(Path("/usr/lib/grub/i386-pc"), "grub-pc-bin")
    key = "d-i-cd-" + _hash(RECIPE_VERSION, append, _file_id(boot.kernel), _file_id(boot.initrd))

    def build(tmp: Path) -> None:
        tree = tmp / "tree"
        (tree / "boot" / "grub").mkdir(parents=True)
        shutil.copyfile(boot.kernel, tree / "linux")
        shutil.copyfile(boot.initrd, tree / "initrd.gz")
        (tree / "boot" / "grub" / "grub.cfg").write_text(
            "serial --unit=0 --speed=115200\n"
            "terminal_input serial console\n"
            "terminal_output serial console\n"
            "set timeout=0\n"
            "menuentry 'Debian installer (ctys-libvirt tests)' {\n"
            f"    linux /linux {append}\n"
            "    initrd /initrd.gz\n"
            "}\n")
        _run([mkrescue, "-o", str(tmp / "d-i.iso"), str(tree), "--compress=no"])
        shutil.rmtree(tree)
        os.chmod(tmp / "d-i.iso", 0o644)

    return _cached(key, build) / "d-i.iso"


def systemd_guest(extra_packages: Iterable[str] = ()) -> SystemdGuest:
    """The cached systemd guest (built on first use, ~1-3 min); ``extra_packages`` are
    added to mmdebstrap's --include (a different set is a different cache entry)."""
    mmdebstrap = _tool("mmdebstrap", "mmdebstrap")
    mkfs = _tool("mkfs.ext4", "e2fsprogs")
    packages = tuple(BASE_PACKAGES) + tuple(sorted(set(extra_packages) - set(BASE_PACKAGES)))
    key = "systemd-" + _hash(RECIPE_VERSION, SUITE, IMAGE_SIZE, ",".join(packages))

    def build(tmp: Path) -> None:
        tar = tmp / "root.tar"
        _run([mmdebstrap, "--mode=root", "--variant=minbase", "--include=" + ",".join(packages),
              SUITE, str(tar)], timeout=1800)
        root = tmp / "root"
        root.mkdir()
        with tarfile.open(tar) as tf:
            tf.extraction_filter = getattr(tarfile, "fully_trusted_filter", None)
            tf.extractall(root)          # our own mmdebstrap output: devices, owners, modes kept
        tar.unlink()
        # No root password: the tests only read serial output; a getty on ttyS0 comes from
        # systemd's serial-getty generator (console=ttyS0).
        (root / "etc" / "hostname").write_text("ctys-guest\n")
        (root / "etc" / "fstab").write_text("/dev/root / ext4 rw 0 1\n")
        kernel, initrd = _boot_files(root)
        shutil.copyfile(kernel, tmp / "vmlinuz")
        shutil.copyfile(initrd, tmp / "initrd.img")
        _run([mkfs, "-q", "-F", "-L", "ctys-root", "-d", str(root), str(tmp / "root.img"), IMAGE_SIZE])
        shutil.rmtree(root)
        for f in ("vmlinuz", "initrd.img", "root.img"):
            os.chmod(tmp / f, 0o644)

    d = _cached(key, build)
    return SystemdGuest(d / "root.img", d / "vmlinuz", d / "initrd.img")


def _boot_files(root: Path) -> Tuple[Path, Path]:
    kernels = sorted((root / "boot").glob("vmlinuz-*"))
    initrds = sorted((root / "boot").glob("initrd.img-*"))
    if not kernels or not initrds:
        raise RuntimeError(f"mmdebstrap produced no /boot/vmlinuz-* + initrd.img-* in {root}")
    return kernels[-1], initrds[-1]


def _run(argv, timeout: Optional[float] = 600) -> None:
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))} failed ({proc.returncode}): {proc.stdout[-2000:]}")
