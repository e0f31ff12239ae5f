"""retry.wait_for: the one polling helper (values, not timings, are asserted)."""
from __future__ import annotations

import pytest

from ctys_libvirt.util.retry import wait_for


def test_returns_the_first_truthy_value():
    calls = []

    def probe():
        calls.append(1)
        return len(calls) if len(calls) >= 3 else None

    assert wait_for(probe, 60, interval=0.0001) == 3 and len(calls) == 3


def test_gives_up_with_none_and_probes_at_least_once():
    calls = []
    assert wait_for(lambda: calls.append(1), 0) is None
    assert calls == [1]


def test_an_error_in_the_probe_ends_the_wait():
    def probe():
        raise LookupError("migration failed")

    with pytest.raises(LookupError):
        wait_for(probe, 60)
