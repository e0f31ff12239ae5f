"""Only here to keep the source tree clean: setuptools builds in ./build and writes
./*.egg-info by default, so `pip install .` would leave both behind.  All metadata is in
pyproject.toml."""
import atexit
import shutil
import tempfile

from setuptools import setup

_tmp = tempfile.mkdtemp(prefix="ctys-libvirt-build-")
atexit.register(shutil.rmtree, _tmp, True)
setup(options={"build": {"build_base": _tmp}, "egg_info": {"egg_base": _tmp}})
