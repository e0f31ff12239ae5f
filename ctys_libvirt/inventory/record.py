"""The 47-field ENUMERATE record (qemu-plugin-runtime.md §5.3/§5.4, ctys-cli.md §4.2).

Records are kept in the *canonical* (MACHINE / enum.fdb) field order.  One record per
interface (``#@#MAC<n>``/``#@#IP<n>`` pair); a VM without interfaces gives one record.

Escaping (§5.6 had none, which corrupted records holding ``;``): a value's ``\\`` -> ``\\\\``,
``;`` -> ``\\;``, newline -> ``\\n``.  Values without those characters are written raw, so
records of ordinary VMs are byte-identical to legacy ones and legacy enum.fdb files read back
unchanged.  Readers accept >= 43 fields and pad to 47.
"""
from __future__ import annotations

import grp
import os
import pwd
import re
import socket
from typing import Dict, List, Optional, Sequence, Tuple

from ctys_libvirt.inventory.scan import ConfHeader, last_word
# one escaping for LIST and ENUMERATE records, kept in the light module the LIST path loads
from ctys_libvirt.records import escape, unescape  # noqa: F401  (re-exported)

NFIELDS = 47

# canonical field names (TITLE names, ctys-cli.md §4.2); 1-based index = position + 1
FIELD_NAMES: Tuple[str, ...] = (
    "ContainingMachine", "SessionType", "Label", "ID", "UUID", "MAC", "TCP", "DISPLAY",
    "ClientAccessPort", "ServerAccessPort", "VNCbasePort", "Distro", "Distrorel", "OS", "OSrel",
    "VersNo", "SerialNo", "Category", "VMstate", "hyperrel", "StackCap", "StackReq", "HWCAP",
    "HWREQ", "ExecLocation", "RelocationCapacity", "SSHport", "netname", "hyperrelrun",
    "accelerator", "exepath", "rsrv", "IFname", "CTYSRelease", "netmask", "gateway", "relay",
    "Arch", "Platform", "VRAM", "VCPU", "ContextStg", "UserStrg", "UID", "GID", "DefHOSTs",
    "DefCONSOLE",
)
assert len(FIELD_NAMES) == NFIELDS

# ENUMERATE column keys (ctys-cli.md §2.5) -> 1-based canonical field index
FIELD_KEYS: Dict[str, int] = {}
for _idx, _keys in (
    (1, "PM HOST H"), (2, "TYPE STYPE ST"), (3, "LABEL L"), (4, "IDS ID I PNAME P"),
    (5, "UUID U"), (6, "MAC M"), (7, "TCP T"), (8, "VNCDISPLAY DISP DISPLAY"),
    (9, "VNCPORT CPORT"), (10, "SERVERACCESS SPORT S"), (11, "VNCBASE"), (12, "DIST"),
    (13, "DISTREL"), (14, "OS O"), (15, "OSREL"), (16, "VERSION VERNO VER"),
    (17, "SERIALNUMBER SERNO"), (18, "CATEGORY CAT"), (19, "VMSTATE VSTAT"),
    (20, "HYPERREL HYREL"), (21, "STACKCAP SCAP"), (22, "STACKREQ SREQ"), (23, "HWCAP"),
    (24, "HWREQ"), (25, "EXECLOCATION"), (26, "RELOCCAP"), (27, "SSHPORT"), (28, "NETNAME"),
    (29, "HYPERRELRUN HRELRUN HRELX HRX HYRELRUN"), (30, "ACCELERATOR ACCEL"),
    (31, "EXEPATH EXEP"), (32, "INDEX"), (33, "IFNAME IF"), (34, "CTYSRELEASE"), (35, "NETMASK"),
    (36, "GATEWAY GW"), (37, "RELAY"), (38, "ARCH"), (39, "PLATFORM PFORM"), (40, "VRAM"),
    (41, "VCPU"), (42, "CONTEXTSTRING CSTRG"), (43, "USERSTRING USTRG"), (44, "USERID UID"),
    (45, "GROUPID GID"), (46, "DEFAULTHOSTS DEFHOSTS DEFH"),
    (47, "DEFAULTCONSOLE DEFCON DEFC"),
):
    for _k in _keys.split():
        FIELD_KEYS[_k] = _idx

F_HOST, F_TYPE, F_LABEL, F_ID, F_UUID, F_MAC, F_TCP = 1, 2, 3, 4, 5, 6, 7
F_VMSTATE = 19

DEFAULT_HOSTS = "VNC"
DEFAULT_CONSOLE = "VNC"


def join_record(fields: Sequence[str]) -> str:
    line = ";".join(fields)
    # fast path (almost every record): nothing to escape
    if line.count(";") == len(fields) - 1 and "\\" not in line and "\n" not in line \
            and "\r" not in line:
        return line
    return ";".join(escape(f) for f in fields)


def split_record(line: str) -> List[str]:
    """One ``;`` record line -> fields (escapes resolved; 43..46 fields padded to 47).

    Raises ValueError for a line with fewer than 43 fields."""
    line = line.rstrip("\r\n")
    if "\\" in line:
        parts: List[str] = []
        cur: List[str] = []
        i = 0
        while i < len(line):
            c = line[i]
            if c == "\\" and i + 1 < len(line):
                cur.append(line[i:i + 2])
                i += 2
                continue
            if c == ";":
                parts.append(unescape("".join(cur)))
                cur = []
            else:
                cur.append(c)
            i += 1
        parts.append(unescape("".join(cur)))
    else:
        parts = line.split(";")
    # legacy writers may end a record with ';' (48 fields, the last empty)
    while len(parts) > NFIELDS and parts[-1] == "":
        parts.pop()
    if len(parts) < 43 or len(parts) > NFIELDS:
        raise ValueError(f"record has {len(parts)} fields (expected 43..{NFIELDS})")
    return parts + [""] * (NFIELDS - len(parts))


def fields_of(line: str) -> List[str]:
    """``split_record`` of a line ``join_record`` wrote: without an escape it splits into
    exactly NFIELDS fields (4x cheaper for the 10,000 lines of a big ENUMERATE)."""
    if "\\" not in line and "\r" not in line:
        parts = line.split(";")
        if len(parts) == NFIELDS:
            return parts
    return split_record(line)


def vmstate_of(line: str) -> str:
    """Field 19 (VMSTATE) of a record line, without splitting the rest of it."""
    if "\\" not in line:
        parts = line.split(";", F_VMSTATE)
        if len(parts) > F_VMSTATE:
            return parts[F_VMSTATE - 1]
    return split_record(line)[F_VMSTATE - 1]


def record_lines(hdr: ConfHeader, *, host: Optional[str] = None) -> str:
    """``header_records`` of one conf as record lines, '\\n'-joined (the form the scan cache
    keeps and the records format prints)."""
    return "\n".join(join_record(r) for r in header_records(hdr, host=host))


# ---------------------------------------------------------------------------
# host facts (cached: the same for every record of a scan)
# ---------------------------------------------------------------------------

_HOST_FACTS: Optional[Tuple[str, str, str]] = None


def host_facts() -> Tuple[str, str, str]:
    """(hostname as ``uname -n``, user name, group name) of the scanning process."""
    global _HOST_FACTS
    if _HOST_FACTS is None:
        uid, gid = os.getuid(), os.getgid()
        try:
            user = pwd.getpwuid(uid).pw_name
        except KeyError:
            user = str(uid)
        try:
            group = grp.getgrgid(gid).gr_name
        except KeyError:
            group = str(gid)
        _HOST_FACTS = (socket.gethostname(), user, group)
    return _HOST_FACTS


# ---------------------------------------------------------------------------
# header -> records
# ---------------------------------------------------------------------------

_IFACE_RE = re.compile(r"(MAC|IP)(\d*)")


def _interfaces(keys: Dict[str, str]) -> List[Tuple[str, str, str]]:
    """[(index, mac, ip-entry)] sorted by index; MAC≡MAC'' (index '')."""
    idx: Dict[str, List[str]] = {}
    for k, v in keys.items():
        if k[:1] not in ("M", "I"):
            continue
        m = _IFACE_RE.fullmatch(k)
        if not m:
            continue
        slot = idx.setdefault(m.group(2), ["", ""])
        slot[0 if m.group(1) == "MAC" else 1] = last_word(v)
    out = []
    for n in sorted(idx, key=lambda s: (s != "", int(s) if s else -1)):
        mac, ip = idx[n]
        if mac or ip:
            out.append((n, mac, ip))
    return out


def _u(keys: Dict[str, str], k: str) -> str:
    """DIST/DISTREL/OS/OSREL: blanks become '_' (legacy)."""
    return "_".join(keys.get(k, "").split())


def header_records(hdr: ConfHeader, *, host: Optional[str] = None) -> List[List[str]]:
    """All canonical 47-field records of one conf (one per interface)."""
    hname, user, group = host_facts()
    k = hdr.keys
    sh = hdr.shell
    # every value is the last blank-separated word (legacy getters)
    w = {key: (v.split() or [""])[-1] if (" " in v or "\t" in v) else v for key, v in k.items()}
    g = w.get
    base = [
        host if host is not None else hname,   # 1 host
        "QEMU",                                # 2 type
        hdr.label,                             # 3 label
        hdr.path,                              # 4 id
        g("UUID", "").replace("-", ""),        # 5 uuid
        "", "",                                # 6 mac, 7 tcp (per interface)
        g("VNCACCESSDISPLAY", ""),             # 8
        g("VNCACCESSPORT", ""),                # 9
        g("SPORT", ""),                        # 10
        g("VNCBASEPORT", ""),                  # 11
        _u(k, "DIST"), _u(k, "DISTREL"), _u(k, "OS"), _u(k, "OSREL"),   # 12-15
        g("VERSION", ""), g("SERNO", ""),      # 16, 17
        "VM",                                  # 18 category
        g("VMSTATE", ""),                      # 19
        g("INST_HYPERREL", ""),                # 20
        g("STACKCAP", ""), g("STACKREQ", ""), g("HWCAP", ""), g("HWREQ", ""),   # 21-24
        g("EXECLOCATION", ""), g("RELOCCAP", ""),                               # 25, 26
        "", "",                                # 27 sshport, 28 netname (per interface)
        "",                                    # 29 hyperrelrun: needs probing; not during a scan
        g("INST_ACCELERATOR") or sh.get("ACCELERATOR", ""),   # 30
        g("STARTERCALL") or sh.get("STARTERCALL", ""),        # 31
        "",                                    # 32 reserved
        "",                                    # 33 ifname (per interface)
        g("CTYSREL") or g("CTYSRELEASE", ""),  # 34
        "", "", "",                            # 35 netmask, 36 gateway, 37 relay
        g("ARCH") or sh.get("ARCH", ""),       # 38
        g("PLATFORM", ""),                     # 39
        g("VRAM") or sh.get("MEMSIZE") or "128",   # 40
        g("VCPU") or sh.get("SMP") or "1",         # 41
        g("CSTRG", ""), g("USTRG", ""),        # 42, 43
        user, group,                           # 44, 45
        g("DEFAULTHOSTS") or DEFAULT_HOSTS,    # 46
        g("DEFAULTCONSOLE") or DEFAULT_CONSOLE,  # 47
    ]
    ifaces = _interfaces(k)
    if not ifaces:
        return [base]
    recs = []
    for n, mac, ipentry in ifaces:
        r = list(base)
        sub = (ipentry.split(",", 1)[0].split("%") + [""] * 6)[:6]
        ip, netmask, relay, ifname, sshport, gateway = sub
        r[F_MAC - 1] = mac.upper() if mac else ""
        r[F_TCP - 1] = ip
        r[27 - 1] = sshport
        r[33 - 1] = ifname or n
        r[35 - 1] = netmask
        r[36 - 1] = gateway
        r[37 - 1] = relay
        recs.append(r)
    return recs
