"""Fixtures shared by all tests, registered once: paths, guest media, the real libvirt
connection, the CLI environment, goldens, and the fixtures of ``tests/support`` modules."""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

from support.domains import janitor  # noqa: F401  (fixtures registered for every test)
from support.golden import golden  # noqa: F401
from support.guests import build_media
from support.loopback import sshd, tcp_proxy  # noqa: F401
from support.paths import EXAMPLE_CONFS, LEGACY
from support.stack import libvirtless_guests, session_hvs, ssh_client  # noqa: F401


def pytest_addoption(parser):
    parser.addoption("--update-goldens", action="store_true", default=False,
                     help="rewrite golden files (tests/data/golden, tests/data/argv) from the "
                          "current output instead of comparing; review the git diff afterwards")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not EXAMPLE_CONFS.is_dir():
        pytest.fail(f"legacy example confs missing at {LEGACY}")
    return LEGACY


@pytest.fixture
def env(tmp_path) -> dict:
    """The one CLI environment of a test (pass as ``env=`` to ``support.cli``): a private
    inventory database, host-group directory, ENUMERATE scan cache and XDG cache, so no test
    reads or writes another's state.  Tests add their own keys."""
    (tmp_path / "groups").mkdir(exist_ok=True)
    return {"CTYS_INVENTORY_DB": str(tmp_path / "inv.sqlite"),
            "CTYS_GROUPS_PATH": str(tmp_path / "groups"),
            "CTYS_SCAN_CACHE_DIR": str(tmp_path / "scancache"),
            "XDG_CACHE_HOME": str(tmp_path / "cache")}


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
