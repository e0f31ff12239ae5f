"""Machine addresses (ctys-cli.md §3.1): the identifying parts ``LABEL:``, ``ID:``, ``UUID:``, ``MAC:`` ... of one ``<machine-address>``."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from ctys_libvirt.errors import UsageError

from ctys_libvirt.ctys.grammar import Subopt, split_subopts


ADDRESS_KEYS: Dict[str, str] = {
    "LABEL": "LABEL", "L": "LABEL",
    "ID": "ID", "I": "ID",
    "PATHNAME": "PNAME", "PNAME": "PNAME", "P": "PNAME",
    "FILENAME": "FILENAME", "FNAME": "FILENAME", "F": "FILENAME",
    "BASEPATH": "BASEPATH", "BASE": "BASEPATH", "B": "BASEPATH",
    "UUID": "UUID", "U": "UUID",
    "MAC": "MAC", "M": "MAC",
    "TCP": "TCP", "T": "TCP",
    "DBRECORD": "DBRECORD", "DBREC": "DBRECORD", "DR": "DBRECORD",
}


@dataclass
class MachineAddress:
    """The identifying parts of one ``<machine-address>``; empty fields are unset."""

    label: Optional[str] = None
    id: Optional[str] = None           # ID / I (a conf path for QEMU)
    pname: Optional[str] = None        # PNAME / P: absolute conf path
    filename: Optional[str] = None
    uuid: Optional[str] = None
    mac: Optional[str] = None
    tcp: Optional[str] = None
    dbrecord: Optional[int] = None
    basepaths: Tuple[str, ...] = ()

    def is_empty(self) -> bool:
        return not any((self.label, self.id, self.pname, self.filename, self.uuid, self.mac,
                        self.tcp, self.dbrecord is not None))

    def describe(self) -> str:
        parts = []
        for name, val in (("L", self.label), ("I", self.id), ("P", self.pname),
                          ("F", self.filename), ("U", self.uuid), ("M", self.mac),
                          ("T", self.tcp), ("DR", self.dbrecord)):
            if val is not None and val != "":
                parts.append(f"{name}:{val}")
        if self.basepaths:
            parts.append("B:" + "%".join(self.basepaths))
        return ",".join(parts) or "(empty address)"


def _set_part(addr: MachineAddress, canon: str, so: Subopt) -> None:
    if so.arg is None or so.arg == "":
        raise UsageError(
            f"address part {so.key} needs a value",
            hint=f"Required syntax <{so.key}>:<ARG>",
        )
    val = raw = so.arg
    if canon == "LABEL":
        addr.label = val
    elif canon == "ID":
        addr.id = raw
    elif canon == "PNAME":
        if not raw.startswith("/"):
            raise UsageError(
                f"P:{raw}: PNAME must be an absolute conf path",
                hint="give the full path of the .ctys file starting with '/'",
            )
        addr.pname = raw
    elif canon == "FILENAME":
        addr.filename = raw
    elif canon == "UUID":
        addr.uuid = val
    elif canon == "MAC":
        addr.mac = raw
    elif canon == "TCP":
        addr.tcp = val
    elif canon == "DBRECORD":
        try:
            addr.dbrecord = int(val)
        except ValueError:
            raise UsageError(f"DBRECORD:{val}: not a record index",
                             hint="DBRECORD takes the integer index of an inventory record") from None
    elif canon == "BASEPATH":
        addr.basepaths = tuple(v for v in so.values if v)


def address_canon_key(key: str) -> Optional[str]:
    return ADDRESS_KEYS.get(key.upper())


def collect_addresses(items: Sequence[Subopt], *, multiple: bool = False) -> List[MachineAddress]:
    """Group the address parts of ``items`` into machine addresses.

    With ``multiple`` (CANCEL), a repeated identifying key starts a new address
    (``l:a,l:b`` -> two); BASEPATH applies to all.  Otherwise a repeated key overrides
    (legacy "last wins")."""
    addrs: List[MachineAddress] = []
    cur = MachineAddress()
    seen: set = set()
    bases: Tuple[str, ...] = ()
    for so in items:
        canon = ADDRESS_KEYS.get(so.key)
        if canon is None:
            continue
        if canon == "BASEPATH":
            tmp = MachineAddress()
            _set_part(tmp, canon, so)
            bases = bases + tmp.basepaths
            continue
        if multiple and canon in seen:
            addrs.append(cur)
            cur = MachineAddress()
            seen = set()
        _set_part(cur, canon, so)
        seen.add(canon)
    if not cur.is_empty():
        addrs.append(cur)
    for a in addrs:
        a.basepaths = bases
    if not addrs and bases:
        addrs.append(MachineAddress(basepaths=bases))
    return addrs


_ADDR_HEAD = re.compile(r"^\s*([A-Za-z]+)\s*:")


def looks_like_address(text: str) -> bool:
    """True if ``text`` starts with a known address key (``L:``, ``uuid:`` ...)."""
    m = _ADDR_HEAD.match(text)
    return bool(m and m.group(1).upper() in ADDRESS_KEYS)


def parse_address(text: str) -> MachineAddress:
    """``L:vm1,B:/vm`` (or any mix of address parts) -> one ``MachineAddress``."""
    items = split_subopts(text)
    for so in items:
        if so.key not in ADDRESS_KEYS:
            raise UsageError(
                f"unknown machine-address part {so.key!r} in {text!r}",
                hint="use LABEL|L, UUID|U, MAC|M, FILENAME|F, BASEPATH|B, ID|I|PNAME|P, TCP|T, DBRECORD|DR",
            )
    addrs = collect_addresses(items)
    if not addrs or addrs[0].is_empty():
        raise UsageError(f"machine address {text!r} names no VM",
                         hint="give at least one of L:, U:, M:, F:, T:, P:/I: or DR:")
    return addrs[0]


