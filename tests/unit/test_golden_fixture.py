"""The golden rule itself (support/golden.py): a missing golden fails with the hint to run
``pytest --update-goldens``, a mismatch fails with a unified diff, and only the option writes."""
from __future__ import annotations

import pytest

from support.golden import Golden


def test_missing_golden_fails_with_the_update_hint(tmp_path):
    path = tmp_path / "nothere.xml"
    with pytest.raises(pytest.fail.Exception) as exc:
        Golden(update=False).check(path, "<a/>\n")
    assert "missing golden" in str(exc.value) and "pytest --update-goldens" in str(exc.value)
    assert not path.exists()          # never written silently


def test_mismatch_fails_with_a_unified_diff(tmp_path):
    path = tmp_path / "g.txt"
    path.write_text("one\ntwo\nthree\n")
    with pytest.raises(pytest.fail.Exception) as exc:
        Golden(update=False).check(path, "one\nTWO\nthree\n")
    msg = str(exc.value)
    assert "pytest --update-goldens" in msg
    assert f"--- {path} (golden)\n+++ (now)\n" in msg
    assert "\n-two\n+TWO\n" in msg
    assert path.read_text() == "one\ntwo\nthree\n"


def test_equal_output_passes_and_update_rewrites(tmp_path):
    path = tmp_path / "sub" / "g.txt"
    Golden(update=True).check(path, "new\n")
    assert path.read_text() == "new\n"
    Golden(update=False).check(path, "new\n")

