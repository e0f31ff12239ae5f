"""real_path answers exactly as os.path.realpath: symlinks (absolute, relative, through
'..'), dangling links, missing paths, relative paths, devices."""
import os

import pytest

from ctys_libvirt.util.realpath import real_path


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "a" / "b" / "c").mkdir(parents=True)
    (tmp_path / "a" / "b" / "c" / "f").write_text("")
    (tmp_path / "lnk").symlink_to(tmp_path / "a" / "b")
    (tmp_path / "a" / "b" / "rel").symlink_to("c/f")
    (tmp_path / "dang").symlink_to(tmp_path / "nowhere")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    return tmp_path


@pytest.mark.parametrize("rel", ["a/b/c/f", "lnk/c/f", "lnk/rel", "lnk/../a", "dang", "missing/x",
                                 "a//b/./c/", "loop", "lnk/c"])
def test_real_path_is_os_realpath(tree, rel):
    p = str(tree / rel) if "//" not in rel else str(tree) + "/" + rel
    assert real_path(p) == os.path.realpath(p)


def test_relative_paths_and_devices(tree, monkeypatch):
    monkeypatch.chdir(tree / "lnk")
    for p in (".", "rel", "../b/c", "/dev/null"):
        assert real_path(p) == os.path.realpath(p)
