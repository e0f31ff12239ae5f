"""``--backend auto|libvirt|direct`` -> an open backend, under one set of fallback rules
(the rules themselves: backends/select.py)."""
from __future__ import annotations

from typing import Optional

from ctys_libvirt.errors import LibvirtUnavailable, UsageError
from ctys_libvirt.lifecycle.notify import Say, drop as _drop

KINDS = ("auto", "libvirt", "direct")


def check_backend(kind: Optional[str]) -> str:
    k = (kind or "auto").lower()
    if k not in KINDS:
        raise UsageError(f"unknown --backend {kind!r}", hint="use auto, libvirt or direct")
    return k


def direct_available() -> bool:
    """The direct backend is part of this build (a trimmed build may lack it)."""
    try:
        from ctys_libvirt.backends.direct import DirectBackend  # noqa: F401  (importable?)
    except ImportError:
        return False
    return True


def may_fall_back(kind: str, uri: Optional[str]) -> bool:
    """``auto`` may use the local direct backend when libvirt is unreachable, unless the
    user named the libvirt to use (explicit --connect, remote LIBVIRT_DEFAULT_URI): starting
    the VM here instead would put it on the wrong host."""
    if kind != "auto" or not direct_available():
        return False
    from ctys_libvirt.backends.select import fallback_refusal

    return fallback_refusal(uri) is None


def open_libvirt(uri: Optional[str] = None, *, events: bool = True):
    """The libvirt backend at ``uri``; ``events=False`` for commands that never wait (list,
    info, define): no event-loop thread competing with their concurrent calls."""
    from ctys_libvirt.backends.libvirt import LibvirtBackend

    return LibvirtBackend(uri, events=events)


def open_direct(qemu: Optional[str] = None):
    """The local direct backend (``qemu`` pins the QEMU binary)."""
    try:
        from ctys_libvirt.backends.direct import DirectBackend
    except ImportError:
        raise UsageError("the direct backend is not available in this build",
                         hint="use --backend libvirt") from None
    return DirectBackend(qemu=qemu)


def open_backend(kind: str = "auto", uri: Optional[str] = None, vm=None, *, warn: Say = _drop,
                 events: bool = True, qemu: Optional[str] = None):
    """The backend for ``--backend kind``.  libvirt is opened directly (no separate probe
    connection) unless the conf needs the direct backend (select.conf_needs_direct); when
    libvirt is unreachable under ``auto`` and ``may_fall_back``, the direct backend, with a
    warning.  A conf whose STARTERCALL is not installed here runs on libvirt's own
    emulator: ``warn`` names it."""
    from ctys_libvirt.util import log
    from ctys_libvirt.backends import select

    kind = check_backend(kind)
    chosen = kind
    if kind == "auto":
        chosen = "direct" if select.conf_needs_direct(vm) else "libvirt"
    if chosen == "libvirt":
        try:
            be = open_libvirt(uri, events=events)
        except LibvirtUnavailable as exc:
            if not may_fall_back(kind, uri):
                raise
            warn(f"{exc.message}; using the direct backend (--backend libvirt to insist)")
            chosen = "direct"
        else:
            if select.startercall_missing(vm):
                warn(select.startercall_note(vm, select.libvirt_emulator(be.conn, vm)))
            log.info("backend: libvirt (--backend %s)", kind)
            return be
    be = open_direct(qemu)
    log.info("backend: direct (--backend %s)", kind)
    return be


def list_direct(include_inactive: bool, *, warn: Say = _drop) -> list:
    """VMs of the direct backend, for LIST next to libvirt's; a failure there is a warning
    (the secondary source never breaks LIST)."""
    if not direct_available():
        return []
    try:
        with open_direct() as be:
            return list(be.list(include_inactive))
    except Exception as exc:
        warn(f"direct backend VMs not listed: {exc}")
        return []
