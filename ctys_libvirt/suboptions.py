"""The ctys suboption grammar (ctys-cli.md §1.4): ``KEY[:ARG]{,KEY[:ARG]}``.

Escapes: ``,,`` / ``\\,`` -> literal ``,``; ``::`` / ``\\:`` -> literal ``:``; ``%`` separates
values inside one argument; ``%%`` -> literal ``%``.  Keys are case-insensitive.

Deliberate difference from the legacy tokenizer: text after a second unescaped ``:`` is kept
(legacy silently dropped it), so ``M:00:50:56:13:11:39`` and ``CONSOLE:VNC:5901`` work without
escaping and nothing the user typed is lost.

This module is library code: it returns dataclasses and raises ``UsageError``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from ctys_libvirt.errors import UsageError

# Private-use placeholders for escaped separators while splitting.
_COMMA = "\ue000"
_COLON = "\ue001"
_PCT = "\ue002"


@dataclass(frozen=True)
class Subopt:
    """One ``KEY[:ARG]`` item.  ``values`` is ARG split at single ``%`` (escapes resolved);
    ``arg`` is ARG with escapes resolved and ``%`` kept as the separator-free join (legacy:
    ``%`` becomes a blank).  ``arg is None`` for a flag."""

    key: str
    arg: Optional[str]
    values: Tuple[str, ...] = ()
    raw: str = ""

    @property
    def is_flag(self) -> bool:
        return self.arg is None


def _protect(text: str) -> str:
    # Order matters: backslash escapes first, then doubled characters left to right.
    text = text.replace("\\,", _COMMA).replace("\\:", _COLON).replace("\\%", _PCT)
    text = text.replace(",,", _COMMA).replace("::", _COLON)
    text = text.replace("%%", _PCT)
    return text


def _restore(text: str) -> str:
    return text.replace(_COMMA, ",").replace(_COLON, ":").replace(_PCT, "%")


def _strip_trailing_quote(arg: str) -> str:
    # Legacy: a single unmatched trailing quote (a shell-quoting leftover) is dropped.
    if arg and arg[-1] in "'\"" and arg.count(arg[-1]) == 1:
        return arg[:-1]
    return arg


def split_subopts(text: str) -> List[Subopt]:
    """Tokenize a suboption string into ordered ``Subopt`` items (no validation of keys)."""
    if text is None:
        return []
    prot = _protect(text)
    items: List[Subopt] = []
    for part in prot.split(","):
        if part == "":
            if prot.strip() == "":
                continue
            raise UsageError(
                f"empty suboption in {text!r}",
                hint="remove the stray ',' or write ',,' for a literal comma",
            )
        raw = _restore(part)
        if ":" in part:
            key_p, rest = part.split(":", 1)
            # a further single ':' is kept literally (legacy dropped the rest: a defect)
            rest = _strip_trailing_quote(rest)
            values = tuple(_restore(v) for v in rest.split("%"))
            arg = _restore(rest)
            arg_join = " ".join(values) if "%" in rest else arg
            key = _restore(key_p).strip().upper()
            if not key:
                raise UsageError(f"suboption without key: {raw!r}", hint="write KEY:VALUE")
            items.append(Subopt(key=key, arg=arg_join, values=values, raw=raw))
        else:
            key = _restore(part).strip().upper()
            items.append(Subopt(key=key, arg=None, values=(), raw=raw))
    return items


def split_action(value: str) -> Tuple[str, str]:
    """``-a ACTION[=SUBOPTS]`` -> (ACTION upper-cased, raw suboption string)."""
    if "=" in value:
        act, sub = value.split("=", 1)
    else:
        act, sub = value, ""
    return act.strip().upper(), sub


def escape_value(text: str) -> str:
    """Inverse of the tokenizer for one argument value: protect ``, : %``."""
    return text.replace("%", "%%").replace(",", ",,").replace(":", "::")


# ---------------------------------------------------------------------------
# Machine-address parts (ctys-cli.md §3.1)
# ---------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------
# Action specs (what ctys-qemu maps onto the library)
# ---------------------------------------------------------------------------

ACTIONS = ("CREATE", "CANCEL", "LIST", "ENUMERATE", "INFO", "SHOW", "GETCLIENTPORT", "ISACTIVE")


def _need_arg(so: Subopt) -> str:
    if so.arg is None or so.arg.strip() == "":
        raise UsageError(f"Erroneous KEY:{so.key}", hint=f"Required syntax <{so.key}>:<ARG>")
    return so.arg


def _pct(so: Subopt) -> str:
    """The argument with its '%' value separators kept (for BOOTMODE/INSTMODE/KERNEL parsers)."""
    return "%".join(so.values) if so.values else (so.arg or "")


def _int_arg(so: Subopt, what: str) -> int:
    val = _need_arg(so).strip()
    if not val.isdigit():
        raise UsageError(f"{so.key}:{val}: {what} has to be numeric",
                         hint=f"write {so.key}:<seconds> with an integer")
    return int(val)


@dataclass(frozen=True)
class PingSpec:
    enabled: bool = False
    count: int = 20
    sleep: int = 2


def _parse_ping(so: Subopt) -> PingSpec:
    vals = [v.strip() for v in so.values if v.strip() != ""] if so.values else []
    if len(vals) == 1 and vals[0].upper() in ("ON", "OFF"):
        return PingSpec(enabled=vals[0].upper() == "ON")
    # '<cnt>%<sleep>' works as written (legacy needed '%%', a defect); the legacy
    # workaround '<cnt>%%<sleep>' (one value '20%2') is still understood
    if len(vals) == 1 and (" " in vals[0] or "%" in vals[0]):
        vals = vals[0].replace("%", " ").split()
    if len(vals) != 2:
        raise UsageError(f"{so.key}:{so.arg}: Both are mandatory:<#cnt>+<sleep>",
                         hint=f"write {so.key}:ON, {so.key}:OFF or {so.key}:<count>%<sleep>")
    if not (vals[0].isdigit() and vals[1].isdigit()):
        raise UsageError(f"{so.key}:{so.arg}: Non-Numeric count or sleep",
                         hint=f"write {so.key}:<count>%<sleep> with integers")
    return PingSpec(True, int(vals[0]), int(vals[1]))


def _bootmode(spec: "CreateSpec", so: Subopt) -> None:
    """BOOTMODE:<mode>[%<path>], plus the modes only the ctys manual lists (ctys-cli.md §2.2):
    ``ISO%<iso>`` = ``CD%<iso>``, ``INSTALL[%<src>]`` = ``INSTMODE:DEFAULT[%<src>]`` (conf
    defaults for the rest), ``KERNEL%<img>[%<initrd>[%<append>]]`` = ``KERNEL:<img>...``."""
    raw = _pct(so)
    mode, sep, rest = raw.partition("%")
    m = mode.strip().upper()
    if m == "ISO":
        spec.bootmode = "CD" + sep + rest
    elif m == "INSTALL":
        spec.instmode = "DEFAULT" + (sep + rest if rest.strip() else "")
    elif m == "KERNEL" and rest.strip():
        spec.bootmode = "KERNEL"
        spec.kernel = rest
    else:
        spec.bootmode = raw


@dataclass
class CreateSpec:
    """``-a CREATE=...`` after validation."""

    address: MachineAddress
    attach: Optional[str] = None        # CONNECT | REUSE | RECONNECT | RESUME
    console: Optional[str] = None       # raw CONSOLE value ('VNC:5901', 'NONE', ...)
    bootmode: Optional[str] = None      # raw 'MODE[%PATH]'
    instmode: Optional[str] = None      # raw; '' = all defaults; None = no install
    kernel: Optional[str] = None        # raw 'img[%initrd[%append]]'
    argsadd: Tuple[str, ...] = ()       # server args (ARGSADD:S%...), shell-word split later
    user: Optional[str] = None
    waitc: Optional[int] = None
    waits: Optional[int] = None
    ping: PingSpec = field(default_factory=PingSpec)
    sshping: PingSpec = field(default_factory=PingSpec)
    callopts: Optional[str] = None
    xopts: Optional[str] = None
    stackcheck: Optional[str] = None
    warnings: List[str] = field(default_factory=list)


_CREATE_FLAGS = {"CONNECT", "REUSE", "RECONNECT", "RESUME", "INSTMODE"}
_ATTACH = ("CONNECT", "REUSE", "RECONNECT", "RESUME")
_STACKCHECK = {"OFF", "CONTEXT", "NOCONTEXT", "HWCAP", "NOHWCAP", "STACKCAP", "NOSTACKCAP"}


def parse_create(text: str) -> CreateSpec:
    """Validate ``CREATE`` suboptions (qemu-plugin-runtime.md §2.2, ctys-cli.md §2.2)."""
    items = split_subopts(text)
    attach: List[str] = []
    spec = CreateSpec(address=MachineAddress())
    consoles = 0
    argsadd: List[str] = []
    for so in items:
        k = so.key
        if k in ADDRESS_KEYS:
            continue
        if so.is_flag and k not in _CREATE_FLAGS:
            if k in ("CONSOLE", "BOOTMODE", "KERNEL", "ARGSADD", "USER", "WAITC", "WAITS", "PING",
                     "SSHPING", "CALLOPTS", "C", "XOPTS", "X", "STACKCHECK"):
                _need_arg(so)
            raise UsageError(f"Unknown sub-opts for QEMU:{k}",
                             hint="CREATE takes an address (L:, U:, M:, F:, P:, T:, DR:, B:) and "
                                  "CONNECT, REUSE, RECONNECT, RESUME, CONSOLE:, BOOTMODE:, INSTMODE[:], "
                                  "KERNEL:, ARGSADD:S%.., USER:, WAITC:, WAITS:, PING:, SSHPING:")
        if k in _ATTACH:
            if not so.is_flag:
                raise UsageError(f"{k} takes no argument: {so.raw!r}", hint=f"write just {k}")
            if k not in attach:
                attach.append(k)
        elif k == "CONSOLE":
            consoles += 1
            if consoles > 1:
                raise UsageError("CONSOLE has to be unique.",
                                 hint="give CONSOLE: only once")
            spec.console = _need_arg(so)
        elif k == "BOOTMODE":
            _need_arg(so)
            _bootmode(spec, so)
        elif k == "INSTMODE":
            spec.instmode = "" if so.is_flag else _pct(so)
        elif k == "KERNEL":
            _need_arg(so)
            spec.kernel = _pct(so)
        elif k == "ARGSADD":
            _need_arg(so)
            tgt = so.values[0].strip().upper() if so.values else ""
            if tgt not in ("S", "C", "B"):
                raise UsageError(f"Missing target for additional arguments:{so.arg}",
                                 hint="write ARGSADD:S%<qemu args> (S = server)")
            if tgt != "S":
                raise UsageError(f"Only valid target for additional arguments is 'S':{so.arg}",
                                 hint="write ARGSADD:S%<qemu args>; client arguments are not supported")
            args = " ".join(so.values[1:]).strip()
            if not args:
                raise UsageError("ARGSADD:S without arguments",
                                 hint="write ARGSADD:S%<qemu args>, '%' separating words")
            argsadd.append(args)
        elif k == "USER":
            spec.user = _need_arg(so).split(" ", 1)[0]
        elif k == "WAITC":
            spec.waitc = _int_arg(so, "WAITC")
        elif k == "WAITS":
            spec.waits = _int_arg(so, "WAITS")
        elif k == "PING":
            _need_arg(so)
            spec.ping = _parse_ping(so)
        elif k == "SSHPING":
            _need_arg(so)
            spec.sshping = _parse_ping(so)
        elif k in ("CALLOPTS", "C"):
            spec.callopts = _need_arg(so)
            spec.warnings.append(f"{k} has no effect for QEMU VMs (ignored)")
        elif k in ("XOPTS", "X"):
            spec.xopts = _need_arg(so)
            spec.warnings.append(f"{k} has no effect for QEMU VMs (ignored)")
        elif k == "STACKCHECK":
            words = {v.strip().upper() for v in so.values if v.strip()}
            bad = words - _STACKCHECK
            if not words or bad:
                raise UsageError(f"STACKCHECK:{so.arg}: unknown value {', '.join(sorted(bad)) or '(empty)'}",
                                 hint="use OFF or CONTEXT|NOCONTEXT%HWCAP|NOHWCAP%STACKCAP|NOSTACKCAP")
            spec.stackcheck = "%".join(sorted(words))
        else:
            raise UsageError(f"Unknown sub-opts for QEMU:{k}",
                             hint="see 'ctys-qemu --help' for the CREATE suboptions")
    if len(attach) > 1:
        raise UsageError("The following sub-opts are EXOR applicable only: "
                         + " ".join(attach),
                         hint="use one of CONNECT, REUSE, RECONNECT, RESUME")
    spec.attach = attach[0] if attach else None
    if spec.console and spec.console.strip().upper() == "SDL" and spec.attach in ("CONNECT", "REUSE", "RECONNECT"):
        raise UsageError(f"SDL could be used as initial CONSOLE only: omit '{spec.attach.lower()}'",
                         hint="use CONSOLE:VNC to attach to a running VM")
    spec.argsadd = tuple(argsadd)
    addrs = collect_addresses(items)
    if not addrs or addrs[0].is_empty():
        raise UsageError("Missing parameter for target entity of action",
                         hint="CREATE needs an address: L:<label>, U:<uuid>, M:<mac>, F:<file>, "
                              "P:<conf path>, T:<ip> or DR:<index>")
    spec.address = addrs[0]
    if spec.address.dbrecord is not None and len(address_parts_given(spec.address)) > 1:
        spec.warnings.append("DBRECORD has priority over the other address parts")
    return spec


def address_parts_given(a: MachineAddress) -> List[str]:
    return [n for n in ("label", "id", "pname", "filename", "uuid", "mac", "tcp", "dbrecord")
            if getattr(a, n) not in (None, "")]


@dataclass
class CancelSpec:
    addresses: List[MachineAddress] = field(default_factory=list)
    all: bool = False
    method: str = "POWEROFF"            # POWEROFF | RESET | REBOOT | PAUSE | SUSPEND | RESUME | INIT
    delay: Optional[int] = None         # POWEROFF:<delay> seconds before the kill
    timeout: Optional[int] = None       # TIMEOUT:<sec> (overrides the delay)
    force: bool = False
    stack: bool = False
    include_self: bool = False          # SELF: then the machine itself (a VM of a stack target)
    scope: str = "SERVER"               # CLIENT | SERVER | BOTH
    init_state: Optional[str] = None
    user: Optional[str] = None
    basepaths: Tuple[str, ...] = ()
    warnings: List[str] = field(default_factory=list)

    @property
    def wait_seconds(self) -> int:
        """How long POWEROFF waits before the kill (TIMEOUT wins, default 20)."""
        if self.timeout is not None:
            return self.timeout
        if self.delay is not None:
            return self.delay
        return 20


_METHODS = {"POWEROFF": "POWEROFF", "S5": "POWEROFF", "RESET": "RESET", "REBOOT": "REBOOT",
            "PAUSE": "PAUSE", "S3": "PAUSE", "SUSPEND": "SUSPEND", "S4": "SUSPEND",
            "RESUME": "RESUME", "INIT": "INIT"}


def parse_cancel(text: str) -> CancelSpec:
    """Validate ``CANCEL`` suboptions (qemu-plugin-runtime.md §3.1).  Bare REBOOT/PAUSE are
    accepted (a legacy defect rejected them)."""
    items = split_subopts(text)
    spec = CancelSpec()
    methods: List[str] = []
    scopes: List[str] = []
    for so in items:
        k = so.key
        if k in ADDRESS_KEYS:
            continue
        if k in _METHODS:
            m = _METHODS[k]
            if m not in methods:
                methods.append(m)
            if m == "POWEROFF" and not so.is_flag:
                spec.delay = _int_arg(so, "POWEROFF delay")
            elif m == "INIT":
                spec.init_state = _need_arg(so)
            elif not so.is_flag:
                raise UsageError(f"{k} takes no argument: {so.raw!r}", hint=f"write just {k}")
        elif k == "FORCE":
            spec.force = True
        elif k == "STACK":
            spec.stack = True
        elif k == "SELF":
            # the executing machine itself: only a VM (the last level of a stack target)
            spec.include_self = True
        elif k == "ALL":
            spec.all = True
        elif k in ("CLIENT", "SERVER", "BOTH"):
            if k not in scopes:
                scopes.append(k)
        elif k == "TIMEOUT":
            if so.is_flag:
                raise UsageError("TIMEOUT requires a value", hint="write TIMEOUT:<seconds>")
            spec.timeout = _int_arg(so, "TIMEOUT")
        elif k == "USER":
            spec.user = _need_arg(so).split(" ", 1)[0]
        else:
            raise UsageError(f"Unknown sub-opts for QEMU:{k}",
                             hint="CANCEL takes addresses or ALL and POWEROFF[:delay], FORCE, RESET, "
                                  "REBOOT, PAUSE, SUSPEND, RESUME, TIMEOUT:<sec>, USER:")
        for flagkey in ("FORCE", "STACK", "SELF", "ALL", "CLIENT", "SERVER", "BOTH"):
            if k == flagkey and not so.is_flag:
                raise UsageError(f"{k} takes no argument: {so.raw!r}", hint=f"write just {k}")
    if len(methods) > 1:
        raise UsageError("The following sub-opts are EXOR applicable only: "
                         "REBOOT|RESET|PAUSE|SUSPEND|POWEROFF|INIT (got " + ",".join(methods) + ")",
                         hint="give one stop method")
    if len(scopes) > 1:
        raise UsageError("The following sub-opts are EXOR applicable only: CLIENT|SERVER|BOTH",
                         hint="give one scope")
    spec.method = methods[0] if methods else "POWEROFF"
    spec.scope = scopes[0] if scopes else "SERVER"
    if spec.scope == "CLIENT" and spec.method in ("SUSPEND", "RESET", "POWEROFF") and methods:
        raise UsageError(f"CLIENT cannot be combined with {spec.method}",
                         hint="CLIENT only closes console clients")
    if spec.method == "INIT":
        raise UsageError("INIT:<state> is a pure guest-OS function; the hypervisor is not used",
                         hint="log into the guest and run init there, or use POWEROFF/REBOOT")
    spec.addresses = collect_addresses(items, multiple=True)
    spec.addresses = [a for a in spec.addresses if not a.is_empty()]
    bases = [b for a in collect_addresses(items) for b in a.basepaths]
    spec.basepaths = tuple(dict.fromkeys(bases))
    if not spec.addresses and not spec.all:
        raise UsageError("Missing address parameter.",
                         hint="CANCEL needs L:<label> (U:, M:, F:, P:, T:, DR:) or ALL")
    return spec


# ---------------------------------------------------------------------------
# LIST / ENUMERATE selectors
# ---------------------------------------------------------------------------

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
    from ctys_libvirt.inventory.record import FIELD_KEYS as ENUM_KEYS

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
