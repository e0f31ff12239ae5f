"""The ctys action specs (CREATE, CANCEL, ...): suboption lists -> typed specs the front end maps onto the library."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from ctys_libvirt.errors import UsageError

from ctys_libvirt.ctys.address import ADDRESS_KEYS, MachineAddress, collect_addresses
from ctys_libvirt.ctys.grammar import Subopt, split_subopts


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


