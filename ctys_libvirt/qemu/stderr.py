"""QEMU's stderr (directly, or quoted inside a libvirt error) -> the one line that says why
the start failed.  QEMU prints warnings first (a CPUID feature TCG lacks, a deprecated
option) and the fatal error last, so the first line is usually the wrong one."""
from __future__ import annotations

import re

# QEMU's optional "-msg timestamp=on" prefix, as libvirt always sets it
_STAMP = re.compile(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z\s+")
_WARNING = re.compile(r"(^|:\s*)warning:", re.IGNORECASE)


def failing_line(text: str) -> str:
    """The last non-warning line of ``text`` (timestamps dropped); a libvirt prefix on the
    first line ("internal error: process exited while connecting to monitor: ") is kept in
    front of it.  Only warnings: the last one.  Empty text: ''."""
    lines = [l.strip() for l in (text or "").splitlines() if l.strip()]
    if not lines:
        return ""
    first = lines[0]
    m = _STAMP.search(first)
    prefix = first[:m.start()] if m else ""
    if m:
        lines[0] = first[m.start():]
    lines = [_STAMP.sub("", l, count=1) for l in lines]
    errors = [l for l in lines if not _WARNING.search(l)]
    pick = errors[-1] if errors else lines[-1]
    return (prefix + pick) if prefix and not pick.startswith(prefix) else pick
