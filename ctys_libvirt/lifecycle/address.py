"""ADDRESS -> conf under one rule, stack addresses, and the domains an address names on a
backend (for cancel, console, CONNECT)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from ctys_libvirt.errors import NotFoundError
from ctys_libvirt.lifecycle.notify import Say, drop as _drop


def resolve_conf(address, bases: Sequence = (), *, db=None, use_db: bool = True,
                 scan_fs: bool = True, warn: Say = _drop) -> Path:
    """ADDRESS (conf path, VM directory, label, ctys machine address text, or a parsed
    ``MachineAddress``) -> absolute conf path.  A path stays as addressed (absolute, symlinks
    not resolved: CTYSWRAPPERPATH is the directory as given, as conf.locate keeps it).
    ``warn`` gets non-fatal findings (an unusable inventory DB that was set aside)."""
    if isinstance(address, str):
        direct = os.path.expanduser(address)
        if os.path.isfile(direct):      # the common case needs no inventory imports
            return Path(os.path.abspath(direct))
    from ctys_libvirt.inventory.address import parse_address_text, resolve_address

    if isinstance(address, str):
        path, addr = parse_address_text(address)
        if path is not None:
            return path
    else:
        addr = address
    notes: List[str] = []
    try:
        return resolve_address(addr, tuple(bases or ()), db=db, use_db=use_db, scan_fs=scan_fs,
                               warnings=notes)
    finally:
        for n in notes:
            warn(n)


def load_vm(address, bases: Sequence = (), *, warn: Say = _drop, **kw):
    """ADDRESS -> the loaded ``VmConfig`` (``resolve_conf`` then ``conf.load_conf``)."""
    from ctys_libvirt.conf import load_conf

    return load_conf(resolve_conf(address, bases, warn=warn, **kw))


def stack_address(address: str, uri: Optional[str]) -> Optional[Tuple[str, str]]:
    """``host[vm1]...[vmN]`` -> (URI of the hypervisor vmN runs on, vmN), walking the
    levels before it (ctys_libvirt.stack); None for any other address."""
    if "[" not in address or Path(address).expanduser().exists():
        return None
    from dataclasses import replace

    from ctys_libvirt.ctys.targets import parse_target, target_uri
    from ctys_libvirt.stack.address import stack_uri

    t = parse_target(address)
    if not t.stack:
        return None
    *inner, last = t.stack
    on = replace(t, stack=tuple(inner))
    local = uri if on.base.is_local else None
    where = stack_uri(on, local_uri=local).uri if inner else target_uri(on, local_uri=local)
    return where, last


def stack_vm(be, label: str) -> str:
    """The domain name of VM ``label`` on the hypervisor ``be`` of a stack level."""
    from ctys_libvirt.stack.address import find_vm

    info = find_vm(be, label)
    if info is None:
        raise NotFoundError(f"no VM {label} on {be.uri.split('?', 1)[0]}",
                            hint="the last level of a stack address is a VM on the hypervisor "
                                 "inside the level before it")
    return info.name


def domain_names(be, addresses: Sequence[str], bases: Sequence = (), *, all_: bool = False,
                 include_foreign: bool = False, resume: bool = False,
                 warn: Say = _drop) -> List[str]:
    """Domains of ``be`` to act on: explicit names/UUIDs/conf addresses, or ``all_`` (ours
    unless ``include_foreign``): the running ones, or for RESUME the paused and shut-off
    ones (a shut-off one may hold a saved state).  An address that is neither a domain nor
    a conf with a domain -> NotFoundError."""
    if all_:
        if resume:
            return [i.name for i in be.list(include_inactive=True)
                    if (i.ours or include_foreign) and i.state in ("paused", "shutoff", "saved")]
        return [i.name for i in be.list(include_inactive=False) if i.ours or include_foreign]
    names = []
    for a in addresses:
        if be.lookup(a) is not None:
            names.append(a)
            continue
        vm = load_vm(a, bases, warn=warn)
        found = next((c for c in (vm.label, vm.uuid) if c and be.lookup(c) is not None), None)
        if found is None:
            raise NotFoundError(f"{vm.label} ({vm.source_path}) has no domain",
                                hint=f"start it with `ctys-libvirt create {a}`")
        names.append(found)
    return names
