"""The 47-field ENUMERATE record format (qemu-plugin-runtime.md §5.3/§5.4, ctys-cli.md §4.2):
field names and keys, joining and splitting record lines.

Records are kept in the *canonical* (MACHINE / enum.fdb) field order.  Escaping (§5.6 had
none, which corrupted records holding ``;``): a value's ``\\`` -> ``\\\\``, ``;`` -> ``\\;``,
newline -> ``\\n``.  Values without those characters are written raw, so records of ordinary
VMs are byte-identical to legacy ones and legacy enum.fdb files read back unchanged.  Readers
accept >= 43 fields and pad to 47.
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

from ctys_libvirt.ctys.escaping import escape, unescape

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
