"""The ctys LIST record (22 fields, ``;``-separated; qemu-plugin-runtime.md §4.5).

``--format records`` prints the canonical MACHINE order that ctys LIST shows and
CANCEL consumes::

     1 host         ContainingMachine: this host's name
     2 type         QEMU
     3 label        domain name (== LABEL for our domains)
     4 id           conf path (ours only; empty for foreign domains)
     5 uuid         32 lower-case hex digits, no dashes (the legacy LIST spelling)
     6 mac          first interface MAC
     7 tcp          #@#IP0 of the conf (ours only)
     8 display      VNC display N (port 5900+N), when the domain has VNC graphics
     9 cport        VNC TCP port
    10 sport        serial console device (pty path) — libvirt owns QEMU's monitor, so
                    the console pty is the server access point a client attaches to
    11 pid          QEMU pid (running domains)
    12 uid          user QEMU runs as
    13 gid          group QEMU runs as
    14 site         SERVER
    15 jid          EMPTY under libvirt: no ctys job started the domain
    16 ifn          host-side interface of the first NIC (vnetN), when libvirt made one
    17 res1         EMPTY (reserved in ctys)
    18 cstrg        EMPTY (ctys context string; no meaning under libvirt)
    19 exep         emulator binary from the domain XML
    20 hrx          running hypervisor release, ``qemu-<version>``
    21 acc          KVM (domain type kvm) or QEMU (TCG)
    22 arch         guest architecture from ``<os><type arch=>``

Fields without a value are empty strings; backslash, ``;``, CR and newline inside a value
are backslash-escaped (``escape``; ENUMERATE records use the same), so
a record always splits into exactly 22 fields and the values can be read back.  ``plugin_order`` gives the raw
plugin form (host;label;id;uuid;mac;disp;cport;sport;pid;uid;gid;type;site;tcp;jid;
ifn;res1;cstrg;exep;hrx;acc;arch)."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, List

from ctys_libvirt.ctys.escaping import escape, unescape  # noqa: F401 - this module's API

if TYPE_CHECKING:   # ENUMERATE imports this module for escape/unescape only
    from ctys_libvirt.model import DomainInfo

TITLES = (
    "ContainingMachine", "SessionType", "Label", "ID", "UUID", "MAC", "TCP", "DISPLAY",
    "ClientAccessPort", "ServerAccessPort", "PID", "UID", "GUID", "C/S-Type", "JobID",
    "IFNAME", "RESERVED1", "CONTEXTSTRG", "EXECPATH", "HYPERRELRUN", "ACCELERATOR", "ARCH",
)


@dataclass(frozen=True)
class ListRecord:
    host: str = ""
    type: str = "QEMU"
    label: str = ""
    id: str = ""
    uuid: str = ""
    mac: str = ""
    tcp: str = ""
    display: str = ""
    cport: str = ""
    sport: str = ""
    pid: str = ""
    uid: str = ""
    gid: str = ""
    site: str = "SERVER"
    jid: str = ""
    ifn: str = ""
    res1: str = ""
    cstrg: str = ""
    exep: str = ""
    hrx: str = ""
    acc: str = ""
    arch: str = ""

    def values(self) -> List[str]:
        return [_clean(getattr(self, n)) for n in _NAMES]

    def canonical(self) -> str:
        """The MACHINE form, fields in canonical order (what ``--format records`` prints)."""
        return ";".join(self.values())

    def plugin_order(self) -> str:
        v = dict(zip(_NAMES, self.values()))
        order = ("host", "label", "id", "uuid", "mac", "display", "cport", "sport", "pid",
                 "uid", "gid", "type", "site", "tcp", "jid", "ifn", "res1", "cstrg", "exep",
                 "hrx", "acc", "arch")
        return ";".join(v[k] for k in order)


_NAMES = tuple(f.name for f in fields(ListRecord))  # canonical order, computed once




def _clean(value) -> str:
    if value is None:
        return ""
    return escape(str(value))


def _s(value) -> str:
    return "" if value is None else str(value)


def list_record(info: DomainInfo) -> ListRecord:
    """The LIST record of one domain/VM as LIST sees it."""
    x = info.extra
    return ListRecord(
        host=info.host,
        type=info.hypervisor or "QEMU",
        label=info.label or info.name,
        id=_s(info.conf_path) if info.ours else "",
        uuid=(info.uuid or "").replace("-", "").lower(),
        mac=_s(info.mac),
        tcp=_s(info.ip) if info.ours else "",
        display=_s(info.vnc_display),
        cport=_s(info.vnc_port),
        sport=x.get("sport", ""),
        pid=_s(info.pid),
        uid=_s(info.user),
        gid=x.get("group", ""),
        site="SERVER",
        jid="",
        ifn=x.get("ifname", ""),
        exep=x.get("emulator", ""),
        hrx=x.get("hyperrelrun", ""),
        acc=_s(info.accelerator),
        arch=_s(info.arch),
    )


def format_records(infos) -> str:
    return "\n".join(list_record(i).canonical() for i in infos)
