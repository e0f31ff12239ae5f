"""One polling helper for the waits that have no event to wait on (a process we did not
fork, a file another process writes, a monitor's status): libvirt waits use lifecycle
events instead (backends/libvirt_events.py)."""
from __future__ import annotations

import time
from typing import Callable, Optional, TypeVar

T = TypeVar("T")


def wait_for(probe: Callable[[], Optional[T]], timeout: float, *, interval: float = 0.005,
             max_interval: float = 0.05) -> Optional[T]:
    """Call ``probe`` until it returns something truthy (returned) or ``timeout`` seconds
    pass (None).  The first retries come fast - most waits end within milliseconds - and
    the interval doubles up to ``max_interval``, so long waits cost little CPU."""
    deadline = time.monotonic() + timeout
    while True:
        got = probe()
        if got:
            return got
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        time.sleep(min(interval, left))
        interval = min(interval * 2, max_interval)
