"""Packaging: a wheel and an sdist built offline from a copy of the source tree carry the
man pages, LICENSE, CHANGELOG, the JSON schemas and every package; the version comes from
ctys_libvirt.__version__; building leaves no build/ or *.egg-info behind in the tree."""
from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from support.paths import REPO

from ctys_libvirt import __version__

SKIP = shutil.ignore_patterns(".venv", ".git", "build", "dist", "*.egg-info", "__pycache__",
                              ".pytest_cache", ".hypothesis", "out")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src") / "ctys-libvirt"
    shutil.copytree(REPO, src, ignore=SKIP, symlinks=True)
    return src


def _python_packages() -> set:
    """Every directory of Python modules that must install: ctys_libvirt/** and cli/."""
    out = set()
    for py in (REPO / "ctys_libvirt").rglob("*.py"):
        out.add(str(py.parent.relative_to(REPO)))
    out.add("ctys_libvirt/cli")
    return out


def test_wheel_has_man_pages_license_schemas_and_every_package(tree, tmp_path):
    before = sorted(p.name for p in tree.iterdir())
    out = tmp_path / "wheel"
    p = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                        "--no-index", "-q", "-w", str(out), str(tree)],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    assert sorted(p.name for p in tree.iterdir()) == before       # no build/, no *.egg-info
    wheels = list(out.glob("*.whl"))
    assert [w.name for w in wheels] == [f"ctys_libvirt-{__version__}-py3-none-any.whl"]
    names = set(zipfile.ZipFile(wheels[0]).namelist())
    data = f"ctys_libvirt-{__version__}.data/data/share/man/man1/"
    assert {data + "ctys-libvirt.1", data + "ctys-qemu.1"} <= names
    assert f"ctys_libvirt-{__version__}.dist-info/licenses/LICENSE" in names
    for schema in ("list", "show", "enumerate", "cancel", "create", "define", "error"):
        assert f"ctys_libvirt/schema/{schema}.json" in names
    dirs = {n.rsplit("/", 1)[0] for n in names if n.endswith(".py")}
    missing = _python_packages() - dirs
    assert not missing, f"packages missing from the wheel (add them to pyproject.toml): {missing}"
    assert "ctys_libvirt/cli/app.py" in names and "ctys_libvirt/translate/domxml/devices/disk.py" in names
    meta = zipfile.ZipFile(wheels[0]).read(f"ctys_libvirt-{__version__}.dist-info/METADATA").decode()
    assert f"\nVersion: {__version__}\n" in meta and "License-Expression: MIT" in meta

    prefix = tmp_path / "prefix"
    # --ignore-installed: never touch (uninstall) the ctys-libvirt of the running venv
    p = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "-I",
                        "--prefix", str(prefix), str(wheels[0])], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    page = prefix / "share" / "man" / "man1" / "ctys-libvirt.1"
    assert page.read_text() == (REPO / "man" / "ctys-libvirt.1").read_text()


def test_sdist_has_license_changelog_and_man_pages(tree, tmp_path):
    before = sorted(p.name for p in tree.iterdir())
    code = ("import sys; from setuptools import build_meta as b; "
            "print(b.build_sdist(sys.argv[1]))")
    p = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=tree, capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    name = p.stdout.split()[-1]
    assert name == f"ctys_libvirt-{__version__}.tar.gz"
    root = f"ctys_libvirt-{__version__}/"
    members = set(tarfile.open(tmp_path / name).getnames())
    for f in ("LICENSE", "CHANGELOG.md", "README.md", "man/ctys-libvirt.1", "man/ctys-qemu.1",
              "ctys_libvirt/schema/list.json", "setup.py"):
        assert root + f in members, f
    assert sorted(p.name for p in tree.iterdir()) == before
