"""CANCEL through a VM stack: before a VM is powered off, reset or rebooted, the VMs
running on the hypervisor inside it get the same CANCEL (recursively, deepest first, each
with its own timeout); then the VM itself.  A VM whose inside is not known, or does not
answer within the connect timeout, is reported and cancelled directly, as ctys did.

The result is a tree of ``CancelResult`` (``inner``: what was done inside first)."""
from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

from ctys_libvirt.errors import BackendError, CtysError, CtysTimeout, NotRunning
from ctys_libvirt.model import CancelMode, CancelResult
from ctys_libvirt.stack.inside import Inside, StackSite, inside_of

# the methods ctys propagated (SUSPEND/PAUSE propagation was commented out in ctys)
PROPAGATED = (CancelMode.POWEROFF, CancelMode.REBOOT, CancelMode.RESET)
MAX_DEPTH = 8           # a stack deeper than this is a loop (a VM naming its own host)
MAX_PARALLEL = 8        # inner VMs cancelled at once on one hypervisor


@dataclass
class StackOptions:
    propagate: bool = True
    site: StackSite = field(default_factory=StackSite)
    # opens the hypervisor at a URI (tests may substitute); default: LibvirtBackend
    opener: Optional[Callable[[str], object]] = None


def _strip(uri: Optional[str]) -> Optional[str]:
    return uri.split("?", 1)[0] if uri else uri


_NET_ARGS = ("-netdev", "-net", "-nic")


def _has_network(xml: str) -> bool:
    """An ``<interface>``, or a QEMU network option passed through ``qemu:commandline``."""
    from lxml import etree

    root = etree.fromstring(xml.encode())
    if root.find("devices/interface") is not None:
        return True
    return any(a.get("value") in _NET_ARGS
               for a in root.iter("{http://libvirt.org/schemas/domain/qemu/1.0}arg"))


def domain_keys(backend, name: str) -> Dict[str, str]:
    """The ``#@#`` keys of domain ``name``: from our metadata (valid on any host of the
    stack), else from its conf when that file is on this machine (direct backend).
    ``_NETWORK`` is "0" for a libvirt domain without any network device: its IP0 cannot
    be the way in (ctys' ping would not answer either), so nobody waits for a timeout."""
    conn = getattr(backend, "conn", None)
    if conn is not None:
        from ctys_libvirt.backends import libvirt_domxml as domxml

        dom = backend.require(name)
        xml = dom.XMLDesc(0)
        f = domxml.parse(xml, domxml.METADATA_NS)
        keys = f.meta.get("keys") if f.ours else None
        out = dict(keys) if isinstance(keys, dict) else {}
        out["_NETWORK"] = "1" if _has_network(xml) else "0"
        return out
    info = backend.lookup(name)
    local = getattr(backend, "name", "") == "direct"
    if info is not None and info.conf_path and local and os.path.isfile(info.conf_path):
        from ctys_libvirt.conf import load_conf

        try:
            vm = load_conf(info.conf_path)
        except (CtysError, OSError):
            return {}
        out = dict(vm.keys)
        words = vm.argsadd.split()
        out["_NETWORK"] = "1" if vm.nic_model or any(w in _NET_ARGS for w in words) else "0"
        return out
    return {}


def _local(backend) -> bool:
    """The backend's VMs run on this machine (their conf paths are paths here)."""
    if getattr(backend, "name", "") == "direct":
        return True
    from urllib.parse import urlsplit

    u = urlsplit(getattr(backend, "uri", "") or "")
    transport = u.scheme.partition("+")[2]
    return not u.hostname and transport in ("", "unix")


def _untrusted_conf(backend, name: str) -> str:
    """Why the conf of ``name`` may not steer the propagation ("" when it may).  The inside
    is reached with the caller's ssh identity and has all its VMs stopped, so a conf that is
    on this machine must be trusted (ctys_libvirt.security.trust): else its owner could make
    root's CANCEL power off another machine's VMs.  Domains inside a guest were defined by
    whoever administers that guest's libvirt, which the propagation already logged into."""
    if not _local(backend):
        return ""       # its conf path names a file on another machine
    info = backend.lookup(name)
    path = info.conf_path if info is not None else None
    if not path or not os.path.isfile(path):
        return ""
    from pathlib import Path

    from ctys_libvirt.security.trust import assess

    try:
        t = assess(Path(path))
    except OSError as exc:
        return f"its conf {path} cannot be checked ({exc.strerror})"
    return "" if t.trusted else f"its conf is not trusted ({t.reason})"


def open_inside(inside: Inside, timeout: float, opener=None):
    """The backend on the hypervisor inside a VM; BackendError when it refuses, CtysTimeout
    when it does not answer within ``timeout`` seconds (a hung ssh is left behind in a
    daemon thread)."""
    if opener is None:
        from ctys_libvirt.backends.libvirt import LibvirtBackend

        opener = LibvirtBackend
    box: Dict[str, object] = {}

    def run() -> None:
        try:
            box["be"] = opener(inside.uri)
        except CtysError as exc:
            box["err"] = exc
        except Exception as exc:  # noqa: BLE001 - reported as "does not answer"
            box["err"] = BackendError(str(exc) or exc.__class__.__name__)

    th = threading.Thread(target=run, name=f"stack-open-{inside.label}", daemon=True)
    th.start()
    th.join(timeout)
    if th.is_alive():
        def late_close() -> None:     # close it should it still come up
            th.join()
            be = box.get("be")
            if be is not None:
                be.close()
        threading.Thread(target=late_close, daemon=True).start()
        raise CtysTimeout(f"no answer within {timeout:g}s")
    if "err" in box:
        raise box["err"]  # type: ignore[misc]
    return box["be"]


def _active_names(backend) -> List[str]:
    return [i.name for i in backend.list(include_inactive=False)
            if i.state not in ("shutoff", "nostate", "gone", "saved")]


def cancel_stack(backend, name: str, mode: CancelMode, timeout: float = 20.0,
                 options: Optional[StackOptions] = None, *, level: int = 0,
                 path: Tuple[str, ...] = ()) -> CancelResult:
    """CANCEL ``name`` on ``backend``, the VMs inside it first (see module doc).  Errors of
    the VM itself raise as ``backend.cancel`` does; errors inside are recorded in the tree.
    ``path``: UUIDs of the VMs this one is inside of (a VM found inside itself is a loop)."""
    opts = options or StackOptions()
    mode = CancelMode(mode)
    started = time.time()
    notes: List[str] = []
    inner: List[CancelResult] = []
    inside: Optional[Inside] = None
    reached: Optional[bool] = None
    if not opts.propagate or mode not in PROPAGATED:
        pass
    elif level >= MAX_DEPTH:
        notes.append(f"stack deeper than {MAX_DEPTH} levels: the inside of {name} not tried "
                     "(a VM naming its own host?)")
    else:
        distrust = _untrusted_conf(backend, name)
        inside = inside_of(name, {} if distrust else domain_keys(backend, name), opts.site)
        if distrust:
            inside = None
            notes.append(f"inside of {name} not used: {distrust}; cancelled directly")
        elif inside.uri is None:
            notes.append(f"inside of {name} not known ({inside.reason}); cancelled directly")
        else:
            try:
                inner_be = open_inside(inside, opts.site.connect_timeout, opts.opener)
            except CtysTimeout as exc:
                reached = False
                notes.append(f"guest {name} does not answer at {inside.display}: "
                             f"{exc.one_line()}; cancelled directly")
            except CtysError as exc:
                # ssh may work where libvirt does not: ctys-libvirt inside, over the same ssh
                reached, inner, note = _over_ssh(name, inside, mode, timeout, opts, exc)
                notes.append(note)
            else:
                reached = True
                me = backend.lookup(name)
                try:
                    inner = _cancel_all(inner_be, mode, timeout, opts, level + 1,
                                        path + ((me.uuid,) if me is not None else ()))
                finally:
                    inner_be.close()
                notes.append(f"inside {name} ({inside.display}): "
                             + (f"{len(inner)} VM(s) cancelled first" if inner else "no running VM"))
    res = backend.cancel(name, mode, timeout)
    res.messages = notes + list(res.messages)
    res.uri = _strip(getattr(backend, "uri", None))
    res.inside = inside.display if inside is not None and inside.uri else None
    res.reached = reached
    res.inner = inner
    res.started = started
    res.finished = time.time()
    return res


def _over_ssh(name: str, inside: Inside, mode: CancelMode, timeout: float, opts: StackOptions,
              libvirt_error: CtysError):
    """(reached, inner results, note) of ctys-libvirt run inside the guest over ssh."""
    from ctys_libvirt.stack.remote import cancel_all_over_ssh

    why = libvirt_error.one_line()
    st = inside.ssh_target(opts.site)
    if st is None:
        return False, [], f"guest {name} does not answer at {inside.display}: {why}; cancelled directly"
    try:
        inner = cancel_all_over_ssh(st, mode, timeout, connect_timeout=opts.site.connect_timeout)
    except CtysError as exc:
        return False, [], (f"guest {name} does not answer at {inside.display}: {why}; nor does "
                           f"ctys-libvirt over ssh: {exc.one_line()}; cancelled directly")
    return True, inner, (f"inside {name}: no libvirt at {inside.display} ({why}); ctys-libvirt "
                         f"there cancelled {len(inner)} VM(s) first")


def _cancel_all(backend, mode: CancelMode, timeout: float, opts: StackOptions,
                level: int, path: Tuple[str, ...]) -> List[CancelResult]:
    """Every running VM on ``backend`` (the inside of a VM: all of them, as ctys did) but
    those the walk is inside of: a conf naming the hypervisor its VM runs on would have
    the VM stop itself from within, at every level down to MAX_DEPTH."""
    names = _active_names(backend)
    if not names:
        return []
    getattr(backend, "watcher", None)   # created once, before the threads share it

    def one(n: str) -> CancelResult:
        t0 = time.time()
        info = backend.lookup(n)
        if info is not None and info.uuid in path:
            return CancelResult(name=n, mode=mode, action="skipped", state=info.state,
                                messages=[f"{n} is the VM this hypervisor runs inside of (its conf "
                                          "names the hypervisor it runs on as its inside): left "
                                          "to the level above"],
                                uri=_strip(backend.uri), started=t0, finished=time.time())
        try:
            return cancel_stack(backend, n, mode, timeout, opts, level=level, path=path)
        except NotRunning:
            return CancelResult(name=n, mode=mode, action="gone", state="shut off",
                                messages=[f"{n} stopped meanwhile"], uri=_strip(backend.uri),
                                started=t0, finished=time.time())
        except CtysError as exc:
            return CancelResult(name=n, mode=mode, action="failed", state="unknown",
                                messages=[exc.one_line()], uri=_strip(backend.uri),
                                started=t0, finished=time.time())

    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(names))) as ex:
        return list(ex.map(one, names))


def walk(res: CancelResult, depth: int = 0):
    """(depth, result) for the whole tree, deepest levels first within each VM."""
    for child in res.inner:
        yield from walk(child, depth + 1)
    yield depth, res
