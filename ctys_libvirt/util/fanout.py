"""Run one function per target concurrently; typed errors come back per target instead of
ending the others (multi-host LIST / ENUMERATE / CANCEL)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, List, Optional, Sequence, Tuple, TypeVar

from ctys_libvirt.errors import CtysError

T = TypeVar("T")
A = TypeVar("A")


def fan_out(targets: Sequence[A], fn: Callable[[A], T],
            max_workers: int = 8) -> List[Tuple[A, Optional[T], Optional[CtysError]]]:
    """Run ``fn`` per target concurrently; typed errors are returned, not raised."""
    def one(t: A):
        try:
            return t, fn(t), None
        except CtysError as exc:
            return t, None, exc

    if len(targets) <= 1:
        return [one(t) for t in targets]
    with ThreadPoolExecutor(max_workers=min(max_workers, len(targets))) as ex:
        return list(ex.map(one, targets))
