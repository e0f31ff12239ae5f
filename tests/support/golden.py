"""One rule for every golden file: compare and show a unified diff on mismatch; a missing
golden is a failure; ``pytest --update-goldens`` rewrites them (the ``golden`` fixture)."""
from __future__ import annotations

import difflib
from pathlib import Path

import pytest

HINT = "pytest --update-goldens"


def unified_diff(want: str, got: str, name: str) -> str:
    return "".join(difflib.unified_diff(want.splitlines(True), got.splitlines(True),
                                        f"{name} (golden)", "(now)"))


class Golden:
    def __init__(self, update: bool):
        self.update = update

    def check(self, path: Path, text: str) -> None:
        if self.update:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            return
        if not path.exists():
            pytest.fail(f"missing golden {path} (run {HINT} and review the diff)", pytrace=False)
        want = path.read_text()
        if text != want:
            pytest.fail(f"output differs from golden {path.name} ({HINT} rewrites it):\n"
                        f"{unified_diff(want, text, str(path))}", pytrace=False)


@pytest.fixture(scope="session")
def golden(request) -> Golden:
    return Golden(request.config.getoption("--update-goldens"))
