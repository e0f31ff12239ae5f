"""Everything under tests/integration runs against the real libvirtd / QEMU / sshd of this
machine: marked ``integration`` here, so ``pytest -m "not integration"`` runs the unit tests
only."""
from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.integration)
