"""The library's one memo layer: every in-memory cache lives here, bounded and clearable.

A cache is kept only where a benchmark shows it worth at least 2x (numbers in
docs/architecture.md, section "Caches"); anything else recomputes.  Two primitives:

* ``Memo``: a bounded mapping for a hot loop (``get``/``put``).  It is bounded in two
  generations: when the current one is full (entries or key characters) it becomes the
  old one and the one before is dropped; a hit in the old generation moves the entry
  back.  Entries still in use survive a flush, a stream of new keys cannot grow it, and
  a look-up costs one dict access in the common case.
* ``once``: a fact of this process that cannot change while it runs (the host's name,
  the user, the libvirt schema), computed on first use.

``clear_all()`` empties both (tests: a cold start without a new process).  Thread-safe
for the uses here: a race at worst computes a value twice (dict operations are atomic).
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Dict, List, TypeVar

T = TypeVar("T")

_MEMOS: List["Memo"] = []
_ONCES: List[Callable[[], None]] = []


class Memo(dict):
    """Bounded key -> value memo (see the module doc).  ``max_entries`` and
    ``max_chars`` (total length of the string keys) bound one generation; keys longer
    than ``max_key`` characters are never stored.  ``get(key)`` is None on a miss."""

    def __init__(self, name: str, *, max_entries: int, max_chars: int = 0, max_key: int = 0):
        super().__init__()              # the dict itself is the current generation
        self.name = name
        self.max_entries = max_entries
        self.max_chars = max_chars
        self.max_key = max_key
        self._old: Dict[Any, Any] = {}
        self._chars = 0
        _MEMOS.append(self)

    # A hit in the current generation is one dict look-up in C, without a Python call:
    # the conf reader looks up every line of every conf.  A miss goes to __missing__.
    get = dict.__getitem__

    def __missing__(self, key: Any) -> Any:
        hit = self._old.get(key)
        if hit is not None:
            self.put(key, hit)          # still in use: survives the next flush
        return hit

    def put(self, key: Any, value: Any) -> None:
        """Remember ``value`` (never None: None means a miss) for ``key``."""
        size = len(key) if self.max_chars or self.max_key else 0
        if self.max_key and size > self.max_key:
            return
        if dict.__len__(self) >= self.max_entries or (self.max_chars and self._chars >= self.max_chars):
            self._old = dict(self)
            dict.clear(self)
            self._chars = 0
        dict.__setitem__(self, key, value)
        self._chars += size

    def clear(self) -> None:
        dict.clear(self)
        self._old, self._chars = {}, 0

    def __len__(self) -> int:
        return dict.__len__(self) + len(self._old)


def once(fn: Callable[[], T]) -> Callable[[], T]:
    """``fn()`` computed on the first call and returned from then on (a process fact)."""
    box: List[Any] = []

    @functools.wraps(fn)
    def get() -> T:
        if not box:
            box.append(fn())
        return box[0]

    _ONCES.append(box.clear)
    return get


def clear_all() -> None:
    """Forget everything every Memo and ``once`` holds."""
    for m in _MEMOS:
        m.clear()
    for forget in _ONCES:
        forget()

