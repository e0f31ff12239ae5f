"""LIST / ENUMERATE display selectors (ctys-cli.md §2.4/§2.5/§5.1): columns, tables, sorting, sites."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from ctys_libvirt.errors import UsageError

from ctys_libvirt.ctys.grammar import Subopt, split_subopts


@dataclass
class TabColumn:
    index: int          # canonical field index (1-based)
    title: str
    width: int
    mode: str = ""      # '' clip right | 'L' keep rightmost | 'B' wrap


@dataclass
class CollectorSpec:
    """Display selectors shared by LIST and ENUMERATE (ctys-cli.md §2.4/§2.5/§5.1)."""

    fields: List[int] = field(default_factory=list)   # selected columns, canonical order
    machine: bool = False
    terse: bool = False
    title: str = ""                                   # '' | TITLE | TITLEIDX | TITLEIDXASC
    table: Optional[List[TabColumn]] = None           # TAB_GEN / TAB_TCP layout
    sort: bool = False
    sort_unique: bool = False
    sort_key: Optional[int] = None
    sort_reverse: bool = False
    site: str = "BOTH"
    ip: bool = False
    dns: bool = False
    basepaths: Tuple[str, ...] = ()                   # ENUMERATE B:
    matchvstat: Tuple[str, ...] = ()                  # ENUMERATE MATCHVSTAT:
    pkgs: Tuple[str, ...] = ()
    warnings: List[str] = field(default_factory=list)


# LIST 22-field keys (ctys-cli.md §2.4)
LIST_KEYS: Dict[str, int] = {}
for _i, _ks in ((1, "PM HOST"), (2, "TYPE ST STYPE"), (3, "LABEL L"), (4, "ID PATHNAME PNAME P I"),
                (5, "UUID U"), (6, "MAC M"), (7, "TCP T"), (8, "DISPLAY DISP"), (9, "CPORT"),
                (10, "SPORT"), (11, "PID"), (12, "USER UID"), (13, "GROUP GID"), (14, "SITE"),
                (15, "JOBID JID"), (16, "IFNAME IF"), (18, "CONTEXTSTRG CSTRG"),
                (19, "EXEPATH EXEP"), (20, "HYPERRELRUN HRELRUN HRELX HRX"),
                (21, "ACCELERATOR ACCEL"), (22, "ARCH")):
    for _k in _ks.split():
        LIST_KEYS[_k] = _i

_TAB_TCP_DEFAULT = (18, 17, 8, 17, 9, 5, 1, 10, 10)   # in column order (IF third)
_TAB_TCP_POS = {1: 0, 2: 1, 3: 3, 4: 4, 5: 5, 6: 6, 7: 7, 8: 8, 16: 2}  # TAB_TCP:<w..> position -> column
_VSTATES = {"ACTIVE", "ENABLED", "DISABLED", "BACKUP", "TEMPLATE", "TESTDUMMY", "IGNORE", "EMPTY",
            "PRESENT", "ALL", "CUSTOM"}


MAX_COLUMN_WIDTH = 1000


_SITE_ALIASES = {"SERVER": "SERVER", "S": "SERVER", "CLIENT": "CLIENT", "CLIENTS": "CLIENT",
                 "C": "CLIENT", "TUNNEL": "TUNNEL", "BOTH": "BOTH", "B": "BOTH"}


def tab_tcp_columns(widths: Sequence[int] = _TAB_TCP_DEFAULT, with_id: bool = False) -> List[TabColumn]:
    """The fixed LIST table TAB_TCP; ``with_id`` shows the ID (right part kept) instead of
    the label, as ``TAB_TCP,ID`` and the default LIST do."""
    w = list(widths)
    third = TabColumn(4, "id", w[3], "L") if with_id else TabColumn(3, "label", w[3])
    return [TabColumn(1, "TCP-container", w[0]), TabColumn(7, "TCP-guest", w[1]),
            TabColumn(16, "IF", w[2]), third, TabColumn(2, "stype", w[4]),
            TabColumn(21, "accel", w[5]), TabColumn(14, "c", w[6]), TabColumn(12, "user", w[7]),
            TabColumn(13, "group", w[8])]


def _parse_tab_gen(so: Subopt, nfields: int, keys: Optional[Dict[str, int]] = None) -> List[TabColumn]:
    """``<field>_<title>_<width>[_L|_B]`` columns; ``<field>`` is the canonical index or a
    field key (``LABEL``, ``uuid``...), title and width are optional."""
    cols = []
    for spec in so.values:
        spec = spec.strip()
        if not spec:
            continue
        parts = spec.split("_")
        try:
            head = parts[0].strip()
            if keys and head.upper() in keys:
                idx = keys[head.upper()]
                default_title = head.upper()
            else:
                idx = int(head)
                default_title = str(idx)
            title = parts[1] if len(parts) > 1 and parts[1] else default_title
            width = int(parts[2]) if len(parts) > 2 and parts[2] else 0
        except ValueError:
            raise UsageError(f"{so.key}: bad column {spec!r}",
                             hint="columns are <index>_<title>_<width>[_L|_B], '%'-separated") from None
        mode = parts[3].upper() if len(parts) > 3 else ""
        if not 1 <= idx <= nfields or mode not in ("", "L", "B"):
            raise UsageError(f"{so.key}: bad column {spec!r}",
                             hint=f"field index 1..{nfields}; optional flag _L or _B")
        if not 0 <= width <= MAX_COLUMN_WIDTH:     # a huge width would allocate that much padding
            raise UsageError(f"{so.key}: bad column {spec!r}: width {width} out of range",
                             hint=f"use a width 0..{MAX_COLUMN_WIDTH}")
        cols.append(TabColumn(idx, title, width, mode))
    if not cols:
        raise UsageError(f"{so.key} needs a column list", hint="e.g. TAB_GEN:3_label_20%4_id_40_L")
    return cols


def parse_collector(text: str, action: str) -> CollectorSpec:
    """LIST (22 fields) / ENUMERATE (47 fields) selectors -> CollectorSpec."""
    from ctys_libvirt.ctys.enum_record import FIELD_KEYS as ENUM_KEYS

    action = action.upper()
    keys = LIST_KEYS if action == "LIST" else ENUM_KEYS
    nfields = 22 if action == "LIST" else 47
    spec = CollectorSpec()
    tab_tcp = False
    sites: List[str] = []
    sel: List[int] = []
    for so in split_subopts(text or ""):
        k = so.key
        if k in keys and not (action == "ENUMERATE" and k in ("B",)):
            if not so.is_flag and k not in ("USER", "UID"):
                raise UsageError(f"{k} takes no argument: {so.raw!r}", hint=f"write just {k}")
            sel.append(keys[k])
        elif k == "ALL":
            sel.extend(range(1, nfields + 1))
        elif k == "NONE":
            sel = []
        elif k == "MACHINE":
            spec.machine = True
            spec.terse = True
        elif k == "MAXKEY":
            sel.extend((1, 2, 3, 4, 5, 6))
            spec.terse = True
        elif k == "TERSE":
            spec.terse = True
        elif k in ("TITLE", "TITLEIDX", "TITLEIDXASC"):
            spec.title = k
        elif k == "IP":
            spec.ip = True
        elif k in ("DNS", "D"):
            spec.dns = True
        elif k in _SITE_ALIASES and action == "LIST":
            if not so.is_flag:
                raise UsageError(f"{k} takes no argument: {so.raw!r}", hint=f"write just {k}")
            if _SITE_ALIASES[k] not in sites:
                sites.append(_SITE_ALIASES[k])
        elif k == "PKG":
            vals = tuple(v.strip().upper() for v in so.values if v.strip())
            if not vals:
                raise UsageError("PKG needs a type list", hint="PKG:QEMU")
            spec.pkgs = vals
        elif k == "SORT":
            spec.sort = True
            for v in (so.values or ()):
                v = v.strip().upper()
                if v in ("", "ALL", "EACH"):
                    continue
                if v == "UNIQUE":
                    spec.sort_unique = True
                elif v in ("REVERSE", "R"):
                    spec.sort_reverse = True
                elif v.isdigit() and 1 <= int(v) <= nfields:
                    spec.sort_key = int(v)
                else:
                    raise UsageError(f"SORT:{so.arg}: unknown sort flag {v!r}",
                                     hint=f"SORT[:ALL|EACH][%UNIQUE][%<field 1..{nfields}>]")
        elif k == "TAB_TCP" and action == "LIST":
            widths = list(_TAB_TCP_DEFAULT)
            for i, v in enumerate(so.values or ()):
                if v.strip():
                    if not v.strip().isdigit():
                        raise UsageError(f"TAB_TCP:{so.arg}: widths must be numbers",
                                         hint="TAB_TCP[:w1%w2%...] (container, guest, label, stype, accel, c, user, group)")
                    if int(v) > MAX_COLUMN_WIDTH:
                        raise UsageError(f"TAB_TCP:{so.arg}: width {int(v)} out of range",
                                         hint=f"use widths 0..{MAX_COLUMN_WIDTH}")
                    # ctys positions: 1 container, 2 guest, 3 label, 4 stype, 5 accel, 6 c,
                    # 7 user, 8 group; the IF column reads position 16
                    if i + 1 in _TAB_TCP_POS:
                        widths[_TAB_TCP_POS[i + 1]] = int(v)
            spec.table = tab_tcp_columns(widths)
            tab_tcp = True
        elif k in ("TAB_GEN", "TAB") or (k == "TAB_GEN"):
            if so.is_flag:
                raise UsageError(f"{k} needs a column list", hint="e.g. TAB_GEN:3_label_20%4_id_40_L")
            spec.table = _parse_tab_gen(so, nfields, keys)
            tab_tcp = False
        elif k in ("SPEC_GEN", "SPEC", "REC_GEN", "REC", "XML_GEN", "XML"):
            raise UsageError(f"{k} output is not supported",
                             hint="use MACHINE/TERSE records, TAB_GEN tables, or --format json")
        elif action == "ENUMERATE" and k in ("BASEPATH", "BASE", "B"):
            vals = tuple(v for v in (so.values or ()) if v.strip())
            if not vals:
                raise UsageError("Missing base for search: Check your path/file call-parameters.",
                                 hint="write B:<dir>[%<dir>...]")
            spec.basepaths = spec.basepaths + vals
        elif action == "ENUMERATE" and k == "MATCHVSTAT":
            vals = tuple(v.strip().upper() for v in (so.values or ()) if v.strip())
            if not vals:
                raise UsageError("MATCHVSTAT needs a state list", hint="MATCHVSTAT:ACTIVE%DISABLED%EMPTY")
            custom = False
            for v in vals:
                if v == "CUSTOM":
                    custom = True
                elif v not in _VSTATES and not custom:
                    raise UsageError(f"MATCHVSTAT: unknown state {v!r}",
                                     hint="ACTIVE ENABLED DISABLED BACKUP TEMPLATE TESTDUMMY IGNORE "
                                          "EMPTY PRESENT ALL, or CUSTOM%<word>...")
            spec.matchvstat = vals
        else:
            raise UsageError(f"Unknown sub-opts for {action}:{k}",
                             hint="field keys (LABEL, ID, UUID, MAC, TCP, ...), MACHINE, TERSE, TITLE, "
                                  "TAB_GEN:, SORT:" + (", B:, MATCHVSTAT:" if action == "ENUMERATE" else ""))
    if len(sites) > 1:
        raise UsageError("The following sub-opts are EXOR applicable only: SERVER|CLIENT|TUNNEL|BOTH",
                         hint="give one site filter")
    spec.site = sites[0] if sites else "BOTH"
    spec.fields = sorted(set(sel))  # output columns are always in canonical order
    if tab_tcp and 4 in spec.fields:    # TAB_TCP,ID: the label column shows the ID instead
        spec.table = [TabColumn(4, "id", c.width, "L") if c.index == 3 else c for c in spec.table]
    return spec
