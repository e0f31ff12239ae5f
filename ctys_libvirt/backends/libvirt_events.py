"""libvirt's default event loop in a daemon thread, plus a per-connection watcher of
domain lifecycle events so waits block on events instead of polling.

libvirt requires ``virEventRegisterDefaultImpl()`` before the first ``open()`` (else
keepalive and event timers are unavailable), so ``ensure_event_loop`` is called by
the backend before it connects."""
from __future__ import annotations

import threading
import time
from typing import Callable, Dict, Optional

import libvirt

_loop_lock = threading.Lock()
_loop_thread: Optional[threading.Thread] = None


def _run_loop() -> None:
    while True:
        try:
            libvirt.virEventRunDefaultImpl()
        except libvirt.libvirtError:  # a broken fd must not kill the loop thread
            time.sleep(0.01)


def ensure_event_loop() -> None:
    """Register libvirt's default event implementation once and start its thread."""
    global _loop_thread
    with _loop_lock:
        if _loop_thread is not None:
            return
        libvirt.virEventRegisterDefaultImpl()
        _loop_thread = threading.Thread(target=_run_loop, name="libvirt-events", daemon=True)
        _loop_thread.start()


class LifecycleWatcher:
    """Counts lifecycle events per domain UUID; ``wait_until`` re-checks a predicate
    each time an event for that domain arrives (or the deadline passes)."""

    def __init__(self, conn: "libvirt.virConnect"):
        self._cond = threading.Condition()
        self._gen: Dict[str, int] = {}
        self._last: Dict[str, tuple] = {}
        self._conn = conn
        self._cb_id = conn.domainEventRegisterAny(
            None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_event, None)

    # Runs in the event-loop thread: record only, never call back into libvirt.
    def _on_event(self, _conn, dom, event, detail, _opaque) -> None:
        try:
            uuid = dom.UUIDString()
        except libvirt.libvirtError:
            return
        with self._cond:
            self._gen[uuid] = self._gen.get(uuid, 0) + 1
            self._last[uuid] = (event, detail)
            self._cond.notify_all()

    def last_event(self, uuid: str) -> Optional[tuple]:
        with self._cond:
            return self._last.get(uuid)

    def generation(self, uuid: str) -> int:
        with self._cond:
            return self._gen.get(uuid, 0)

    def wait_until(self, uuid: str, predicate: Callable[[], bool], timeout: float) -> bool:
        """True once ``predicate()`` holds; False when ``timeout`` seconds pass first.

        The predicate is evaluated first (the event may already have happened) and
        again after every event for ``uuid``; a 1 s safety re-check covers a lost
        event (e.g. a keepalive hiccup) without turning this into a polling loop."""
        deadline = time.monotonic() + timeout
        while True:
            seen = self.generation(uuid)
            if predicate():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._cond:
                self._cond.wait_for(lambda: self._gen.get(uuid, 0) != seen,
                                    timeout=min(remaining, 1.0))

    def close(self) -> None:
        try:
            self._conn.domainEventDeregisterAny(self._cb_id)
        except libvirt.libvirtError:
            pass
