"""Fixtures shared by all test modules: paths, guest media, the real libvirt connection."""
from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(__file__).resolve().parent / "data" / "legacy"   # copies of the legacy example trees
EXAMPLE_CONFS = SHARED / "examples" / "confs"
GUESTS = REPO / "examples" / "guests"          # hello.img, acpi.img, mbkernel.bin (copies)
DATA = Path(__file__).resolve().parent / "data"


def pytest_addoption(parser):
    parser.addoption("--update-goldens", action="store_true", default=False,
                     help="rewrite golden files (tests/data/golden, tests/data/argv) from the "
                          "current output instead of comparing; review the git diff afterwards")


class Golden:
    """One rule for every golden file: compare and show a unified diff on mismatch; a missing
    golden is a failure; ``pytest --update-goldens`` rewrites them."""

    def __init__(self, update: bool):
        self.update = update

    def check(self, path: Path, text: str) -> None:
        import difflib
        if self.update:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            return
        if not path.exists():
            pytest.fail(f"missing golden {path} (run pytest --update-goldens and review the diff)")
        want = path.read_text()
        if text != want:
            diff = "".join(difflib.unified_diff(want.splitlines(True), text.splitlines(True),
                                                f"{path} (golden)", "(now)"))
            pytest.fail(f"output differs from golden {path.name} (pytest --update-goldens "
                        f"rewrites it):\n{diff}", pytrace=False)


@pytest.fixture(scope="session")
def golden(request) -> Golden:
    return Golden(request.config.getoption("--update-goldens"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not EXAMPLE_CONFS.is_dir():
        pytest.fail(f"legacy example confs missing at {SHARED}")
    return SHARED


def build_media(out: Path) -> dict:
    """Boot media for the tiny guests, made at test time (never committed):
    G.img (512 B, IDE/floppy), G-disk.img (one CHS cylinder), G-floppy.img (1.44 MB),
    G.iso (El Torito no-emulation), mbkernel.bin + mbkernel-mod.txt."""
    out.mkdir(parents=True, exist_ok=True)
    media = {}
    for g in ("hello", "acpi"):
        src = GUESTS / f"{g}.img"
        img = out / f"{g}.img"
        shutil.copyfile(src, img)
        media[g] = img
        for suffix, size in (("disk", 516096), ("floppy", 1474560)):
            p = out / f"{g}-{suffix}.img"
            shutil.copyfile(src, p)
            with open(p, "r+b") as f:
                f.truncate(size)
            media[f"{g}-{suffix}"] = p
        isodir = out / f"{g}-isodir"
        isodir.mkdir(exist_ok=True)
        shutil.copyfile(src, isodir / "boot.img")
        iso = out / f"{g}.iso"
        subprocess.run(
            ["xorriso", "-as", "mkisofs", "-quiet", "-o", str(iso), "-b", "boot.img",
             "-no-emul-boot", "-boot-load-size", "4", str(isodir)],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        shutil.rmtree(isodir)
        media[f"{g}-iso"] = iso
    shutil.copyfile(GUESTS / "mbkernel.bin", out / "mbkernel.bin")
    (out / "mbkernel-mod.txt").write_bytes(b"hello module")
    media["mbkernel"] = out / "mbkernel.bin"
    media["mbkernel-mod"] = out / "mbkernel-mod.txt"
    return media


@pytest.fixture
def vmroot(tmp_path_factory) -> Path:
    """A fresh directory for VM trees that libvirt-qemu can traverse (0755 chain)."""
    base = Path("/var/tmp/ctys-libvirt-tests")
    base.mkdir(mode=0o755, exist_ok=True)
    os.chmod(base, 0o755)
    d = base / uuid.uuid4().hex[:12]
    d.mkdir(mode=0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def media(vmroot) -> dict:
    return build_media(vmroot / "media")


@pytest.fixture(scope="session")
def libvirt_uri() -> str:
    return os.environ.get("CTYS_TEST_URI", "qemu:///system")


@pytest.fixture(scope="session")
def libvirt_conn(libvirt_uri):
    """A real connection; the suite fails (not skips) when libvirtd is down, since
    scripts/setup.sh starts it."""
    import libvirt

    libvirt.registerErrorHandler(lambda *_: None, None)
    try:
        conn = libvirt.open(libvirt_uri)
    except libvirt.libvirtError as exc:
        pytest.fail(f"libvirtd not reachable at {libvirt_uri}: {exc} (run scripts/setup.sh)")
    yield conn
    conn.close()
