"""Where things are: the repository, its test fixtures, the venv's programs.
Everything a test reads lives in the repository (nothing beside the clone)."""
from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
REPO = TESTS.parent
DATA = TESTS / "data"
LEGACY = DATA / "legacy"                       # copies of the legacy ctys example trees
EXAMPLE_CONFS = LEGACY / "examples" / "confs"  # debian5, centos55, kvmkern
GUESTS = REPO / "examples" / "guests"          # hello.img, acpi.img, mbkernel.bin
VENV_BIN = REPO / ".venv" / "bin"
