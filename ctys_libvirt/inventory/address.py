"""Machine addresses (ctys-cli.md §3) -> the one conf file they name.

Accepted forms of an ADDRESS string:
  * a path to a ``.ctys`` file, or a VM directory (its ``<dirname>.ctys``, else its only
    active QEMU conf);
  * ctys address parts ``LABEL:/L:``, ``UUID:/U:`` (dashed or not), ``MAC:/M:`` (any case,
    ``:`` or ``-``), ``FILENAME:/F:``, ``BASEPATH:/B:``, ``ID:/I:/PNAME:/P:``, ``TCP:/T:``,
    ``DBRECORD:/DR:``, comma-joined (``L:vm1,B:/vm``);
  * a bare label.

Resolution: DBRECORD (wins over everything, like ctys) -> ID/PNAME path -> inventory DB ->
filesystem scan of the base paths (address B: parts + ``bases``; default ``$HOME``).
Every given part must match *exactly* (no substring hits: ``vm1`` never matches ``vm10``);
parts are evaluated in the documented precedence UUID > LABEL > TCP > MAC > FILENAME, and the
rest must agree with the first.  More than one VM left -> ``AmbiguousAddressError``.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple, Union

from ctys_libvirt.errors import AmbiguousAddressError, NotFoundError, UsageError
from ctys_libvirt.inventory.scan import (
    ConfHeader,
    last_word,
    normalize_base,
    read_header,
    scan,
    stem_of,
)
from ctys_libvirt.inventory.store import Store, default_db_path
from ctys_libvirt.ctys.address import MachineAddress, looks_like_address, parse_address

PathLike = Union[str, Path]

_HINT = "give the conf path, or --base DIR"
_MAC_RE = re.compile(r"^[0-9a-f]{2}([:-][0-9a-f]{2}){5}$", re.I)


# ---------------------------------------------------------------------------
# Normalisation of the comparable values
# ---------------------------------------------------------------------------

def norm_uuid(text: str) -> str:
    """Dashed or undashed, any case -> 32 lower-case hex digits (unchanged if not a UUID)."""
    return text.replace("-", "").strip().lower()


def norm_mac(text: str) -> str:
    return text.strip().lower().replace("-", ":")


def header_macs(hdr: ConfHeader) -> List[str]:
    return [norm_mac(last_word(v)) for k, v in hdr.keys.items()
            if re.fullmatch(r"MAC\d*", k) and last_word(v)]


def header_ips(hdr: ConfHeader) -> List[str]:
    out = []
    for k, v in hdr.keys.items():
        if re.fullmatch(r"IP\d*", k) and v.strip():
            for entry in last_word(v).split(","):
                ip = entry.split("%", 1)[0].strip()
                if ip:
                    out.append(ip)
    return out


def filename_matches(path: str, fname: str) -> bool:
    """FILENAME part, exact: the file name, its stem, the VM directory name, or a trailing
    path at component boundaries (``vm1/vm1.ctys``) - never an arbitrary substring."""
    fname = fname.rstrip("/")
    if not fname:
        return False
    if fname.startswith("/"):
        return os.path.abspath(fname) in (path, os.path.dirname(path))
    base = os.path.basename(path)
    if fname in (base, stem_of(path), os.path.basename(os.path.dirname(path))):
        return True
    return ("/" + path).endswith("/" + fname) or ("/" + os.path.dirname(path)).endswith("/" + fname)


# precedence of ctys-cli.md §3.2 step 2c
PRECEDENCE = ("uuid", "label", "tcp", "mac", "filename")


def header_matches(hdr: ConfHeader, part: str, value: str) -> bool:
    if part == "uuid":
        return norm_uuid(last_word(hdr.keys.get("UUID", ""))) == norm_uuid(value)
    if part == "label":
        return hdr.label == value
    if part == "tcp":
        return value in header_ips(hdr)
    if part == "mac":
        return norm_mac(value) in header_macs(hdr)
    if part == "filename":
        return filename_matches(hdr.path, value)
    return False


def address_parts(addr: MachineAddress) -> List[Tuple[str, str]]:
    """The identifying parts of ``addr`` in precedence order."""
    out = []
    for p in PRECEDENCE:
        v = getattr(addr, p)
        if v:
            out.append((p, v))
    return out


def validate_address(addr: MachineAddress) -> None:
    if addr.uuid and not re.fullmatch(r"[0-9a-f]{32}", norm_uuid(addr.uuid)):
        raise UsageError(f"U:{addr.uuid}: not a UUID",
                         hint="32 hex digits, dashes optional")
    if addr.mac and not _MAC_RE.match(addr.mac.strip()):
        raise UsageError(f"M:{addr.mac}: not a MAC address",
                         hint="six hex pairs like 00:50:56:13:11:40")


def match_headers(headers: Iterable[ConfHeader], addr: MachineAddress) -> List[ConfHeader]:
    parts = address_parts(addr)
    return [h for h in headers if all(header_matches(h, p, v) for p, v in parts)]


# ---------------------------------------------------------------------------
# Path forms
# ---------------------------------------------------------------------------

def conf_in_dir(d: str) -> Optional[str]:
    """A VM directory's conf: ``<dir>/<dirname>.ctys`` first, else the only QEMU conf in it."""
    cand = os.path.join(d, os.path.basename(os.path.normpath(d)) + ".ctys")
    if os.path.isfile(cand):
        from ctys_libvirt.conf.locate import own_magic

        legacy = cand[:-5] + ".conf"
        # 01.07 layout: the .conf next to the bash wrapper is the conf
        return legacy if os.path.isfile(legacy) and own_magic(Path(legacy)) else cand
    found = []
    try:
        with os.scandir(d) as it:
            for e in it:
                if e.name.endswith(".ctys") and e.is_file():
                    try:
                        if read_header(e.path) is not None:
                            found.append(e.path)
                    except OSError:
                        continue
    except OSError:
        return None
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise AmbiguousAddressError(
            f"directory {d} holds {len(found)} QEMU confs: {', '.join(sorted(found))}",
            sorted(found), hint="give the .ctys path")
    return None


def _path_form(text: str) -> Optional[Path]:
    p = os.path.expanduser(text)
    if os.path.isfile(p):
        return Path(os.path.abspath(p))
    if os.path.isdir(p):
        c = conf_in_dir(p)
        if c is None:
            raise NotFoundError(f"directory {os.path.abspath(p)} holds no QEMU conf (*.ctys with "
                                f"#@#MAGICID-QEMU)", hint=_HINT)
        return Path(os.path.abspath(c))
    return None


# ---------------------------------------------------------------------------
# Resolution
# ---------------------------------------------------------------------------

def _under(path: str, bases: Sequence[str]) -> bool:
    return not bases or any(path == b or path.startswith(b.rstrip("/") + "/") for b in bases)


def _from_inventory(addr: MachineAddress, bases: Sequence[str], db,
                    warnings: Optional[List[str]] = None) -> Optional[List[ConfHeader]]:
    """Candidates from the inventory DB (verified against the files), or None if the DB has no
    opinion (missing, unusable, or every hit is stale) and the filesystem must be scanned.
    An unusable DB file is set aside and rebuilt empty, with a warning."""
    path = Path(db) if db is not None else default_db_path()
    if not path.exists():
        return None
    store = Store.open_existing(path)
    if store is None:
        try:
            rebuilt = Store(path)
            rebuilt.close()
            msgs = rebuilt.warnings
        except Exception as exc:  # cannot even set it aside: say so, keep resolving
            msgs = [f"inventory database {path} is unusable and was ignored: {exc}"]
        if warnings is not None:
            warnings.extend(msgs)
        return None
    try:
        paths = store.find(uuid=addr.uuid, label=addr.label, tcp=addr.tcp, mac=addr.mac,
                           filename=addr.filename, under=bases)
    finally:
        store.close()
    if not paths:
        return None
    hits = []
    for p in paths:
        try:
            hdr = read_header(p)
        except OSError:
            continue
        if hdr is not None and all(header_matches(hdr, k, v) for k, v in address_parts(addr)):
            hits.append(hdr)
    return hits or None


def resolve_address(addr: MachineAddress, bases: Sequence[PathLike] = (), *, db=None,
                    use_db: bool = True, scan_fs: bool = True,
                    warnings: Optional[List[str]] = None) -> Path:
    """One ``MachineAddress`` -> absolute conf path.  ``warnings`` (if given) collects
    non-fatal findings (an unusable inventory DB that was rebuilt)."""
    validate_address(addr)
    if addr.dbrecord is not None:
        dbp = Path(db) if db is not None else default_db_path()
        store = Store.open_existing(dbp) if dbp.exists() else None
        if store is None:
            raise NotFoundError(f"DR:{addr.dbrecord}: no inventory database at {dbp}",
                                hint="run 'ctys-libvirt enumerate --update-db' first")
        try:
            p = store.path_of_record(addr.dbrecord)
        finally:
            store.close()
        if p is None:
            raise NotFoundError(f"DR:{addr.dbrecord}: no such inventory record in {dbp}",
                                hint="list the records with 'ctys-libvirt enumerate --format records'")
        return Path(p)
    for direct in (addr.pname, addr.id):
        if direct:
            p = _path_form(direct)
            if p is None:
                raise NotFoundError(f"{'P' if direct == addr.pname else 'I'}:{direct}: no such conf file",
                                    hint=_HINT)
            hdr = read_header(p)
            if hdr is not None and not all(header_matches(hdr, k, v) for k, v in address_parts(addr)):
                raise NotFoundError(
                    f"{p}: does not match {addr.describe()} (conf LABEL={hdr.label!r})",
                    hint="drop the contradicting address part")
            return p

    blist = [normalize_base(b) for b in (tuple(addr.basepaths) or tuple(bases))]
    for b in blist:
        if not os.path.exists(b):
            raise NotFoundError(f"base path {b} does not exist", hint="check B:/--base")
    hits: Optional[List[ConfHeader]] = None
    if use_db:
        hits = _from_inventory(addr, blist, db, warnings)
    if hits is None and scan_fs:
        res = scan(blist or [os.path.expanduser("~")])
        hits = match_headers(res.headers, addr)
        if not hits and addr.label and not (addr.uuid or addr.mac or addr.tcp or addr.filename):
            # a label that is only the file stem (conf without #@#LABEL mismatch tolerated)
            hits = [h for h in res.headers if h.stem == addr.label and not h.keys.get("LABEL")]
    searched = ", ".join(blist) if blist else os.path.expanduser("~")
    if not hits:
        raise NotFoundError(f"no QEMU VM matches {addr.describe()} (searched: {searched})",
                            hint=_HINT)
    if len(hits) > 1:
        cands = sorted(h.path for h in hits)
        raise AmbiguousAddressError(
            f"{addr.describe()} is ambiguous: {len(cands)} VMs match: {', '.join(cands)}",
            cands, hint="add U:, F: or B: to pick one, or give the conf path")
    return Path(hits[0].path)


def parse_address_text(address: str) -> Tuple[Optional[Path], Optional[MachineAddress]]:
    """ADDRESS string -> (existing path) or (parsed machine address)."""
    text = address.strip()
    if not text:
        raise UsageError("empty machine address", hint=_HINT)
    p = _path_form(text)
    if p is not None:
        return p, None
    if looks_like_address(text):
        return None, parse_address(text)
    if "/" in text or text.endswith(".ctys"):
        full = os.path.expanduser(text)
        if os.path.lexists(full) and not os.path.exists(full):
            raise NotFoundError(f"{text}: dangling symlink or symlink loop, not a conf file",
                                hint="point the link at the real .ctys file")
        if os.path.exists(full):    # a FIFO, socket or device: never opened (a FIFO would block)
            raise NotFoundError(f"{text}: not a regular file", hint=_HINT)
        raise NotFoundError(f"{text}: no such conf file or VM directory", hint=_HINT)
    if ":" in text or "," in text:
        # no label holds ':' or ',' (LABEL must be a domain name): a mistyped address key
        return None, parse_address(text)
    return None, MachineAddress(label=text)


def resolve_conf_path(address: str, bases: Sequence[PathLike] = (), *, db=None,
                      use_db: bool = True, warnings: Optional[List[str]] = None) -> Path:
    """ADDRESS (conf path, VM dir, label or ctys machine address) -> absolute conf path.

    ``bases``: directories searched for labels and address parts (default ``$HOME``).
    Raises NotFoundError (exit 2) / AmbiguousAddressError (exit 2) / UsageError (exit 1)."""
    path, addr = parse_address_text(address)
    if path is not None:
        return path
    assert addr is not None
    return resolve_address(addr, bases, db=db, use_db=use_db, warnings=warnings)


# ---------------------------------------------------------------------------
# Matching running/defined domains (CANCEL, CONNECT) against an address
# ---------------------------------------------------------------------------

def domain_matches(info, addr: MachineAddress, conf_path: Optional[str] = None) -> bool:
    """Exact match of a ``DomainInfo`` against every given address part.  ``conf_path`` is the
    resolved path for P:/I:/DR: parts."""
    label = info.label or info.name
    checks = []
    if addr.uuid:
        checks.append(norm_uuid(info.uuid or "") == norm_uuid(addr.uuid))
    if addr.label:
        checks.append(label == addr.label or info.name == addr.label)
    if addr.tcp:
        checks.append((info.ip or "") == addr.tcp)
    if addr.mac:
        checks.append(norm_mac(info.mac or "") == norm_mac(addr.mac))
    if addr.filename:
        checks.append(bool(info.conf_path) and filename_matches(info.conf_path, addr.filename))
    if conf_path:
        checks.append(bool(info.conf_path)
                      and os.path.abspath(info.conf_path) == os.path.abspath(conf_path))
    return bool(checks) and all(checks)


def match_domains(infos, addr: MachineAddress, conf_path: Optional[str] = None) -> list:
    return [i for i in infos if domain_matches(i, addr, conf_path)]
