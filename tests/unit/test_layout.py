"""The layout of tests/ (docs/testing.md): every test file sits in the folder of the part it
covers, so a file added in the old flat layout fails here with the folder to move it to."""
from __future__ import annotations

from collections import Counter

from support.paths import REPO, TESTS

# the meta tests: of the test support and of the whole package
UNIT_TOP = {"test_architecture.py", "test_golden_fixture.py", "test_layout.py", "test_support.py"}
# the paths the integration tests drive, beside the package's own parts
INTEGRATION_AREAS = {"cli", "consoles", "direct", "lifecycle", "multihost", "packaging", "realguests"}


def _parts() -> set:
    """The package's parts: its folders and top-level modules, and the front ends."""
    lib = REPO / "ctys_libvirt"
    return ({p.parent.name for p in lib.glob("*/__init__.py")}
            | {p.stem for p in lib.glob("*.py") if p.stem != "__init__"} | {"cli"})


def test_every_test_file_is_in_a_part_folder():
    misplaced = []
    for kind, allowed in (("unit", _parts()), ("integration", _parts() | INTEGRATION_AREAS)):
        for p in sorted((TESTS / kind).rglob("test_*.py")):
            rel = p.relative_to(TESTS / kind)
            if len(rel.parts) == 1 and kind == "unit" and rel.name in UNIT_TOP:
                continue
            if len(rel.parts) != 2 or rel.parts[0] not in allowed:
                misplaced.append(f"tests/{kind}/{rel}")
    assert not misplaced, ("test files outside tests/<unit|integration>/<part>/ "
                           f"(git mv them; parts: {sorted(_parts())}, integration also "
                           f"{sorted(INTEGRATION_AREAS)}): {misplaced}")


def test_test_file_names_are_unique():
    """Test folders have no __init__.py (pytest's default import mode): two files of one name
    would collide at collection."""
    names = Counter(p.name for p in TESTS.rglob("test_*.py") if "support" not in p.parts)
    assert [n for n, c in names.items() if c > 1] == []


def test_no_helper_modules_beside_the_support_package():
    loose = sorted(str(p.relative_to(TESTS)) for p in TESTS.rglob("*.py")
                   if "support" not in p.relative_to(TESTS).parts
                   and not p.name.startswith("test_") and p.name != "conftest.py")
    assert loose == [], f"helpers belong in tests/support/: {loose}"
