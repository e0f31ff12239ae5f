"""ENUMERATE records of this host's confs (the format is ``ctys/enum_record.py``): one record
per interface (``#@#MAC<n>``/``#@#IP<n>`` pair); a VM without interfaces gives one record."""
from __future__ import annotations

import grp
import os
import pwd
from typing import Dict, List, Optional, Tuple

from ctys_libvirt.inventory.scan import ConfHeader, classify, header_values, last_word
from ctys_libvirt.ctys.enum_record import (
    DEFAULT_CONSOLE, DEFAULT_HOSTS, F_MAC, F_TCP, F_VMSTATE, join_record,
)
from ctys_libvirt.util.memo import once


def record_lines(hdr: ConfHeader, *, host: Optional[str] = None) -> str:
    """``header_records`` of one conf as record lines, '\\n'-joined (the form the scan cache
    keeps and the records format prints)."""
    return "\n".join(join_record(r) for r in header_records(hdr, host=host))


# ---------------------------------------------------------------------------
# host facts (cached: the same for every record of a scan)
# ---------------------------------------------------------------------------

@once
def host_facts() -> Tuple[str, str, str]:
    """(hostname as ``uname -n``, user name, group name) of the scanning process."""
    uid, gid = os.getuid(), os.getgid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    try:
        group = grp.getgrgid(gid).gr_name
    except KeyError:
        group = str(gid)
    # uname's nodename is what gethostname() returns (glibc asks uname), without
    # importing socket on ENUMERATE's start-up path
    return (os.uname().nodename, user, group)


# ---------------------------------------------------------------------------
# header -> records
# ---------------------------------------------------------------------------

def _interfaces(keys: Dict[str, str]) -> List[Tuple[str, str, str]]:
    """[(index, mac, ip-entry)] sorted by index; MAC≡MAC'' (index '').  The keys are
    MAC<n>/IP<n> with n empty or decimal digits (what ``(MAC|IP)\\d*`` matches)."""
    idx: Dict[str, List[str]] = {}
    for k, v in keys.items():
        c = k[:1]                   # (most keys fail this one compare)
        if c == "M" and k.startswith("MAC"):
            n, slot = k[3:], 0
        elif c == "I" and k.startswith("IP"):
            n, slot = k[2:], 1
        else:
            continue
        if n and not n.isdecimal():
            continue
        pair = idx.get(n)
        if pair is None:
            idx[n] = pair = ["", ""]
        pair[slot] = last_word(v)
    order = sorted(idx, key=lambda s: (s != "", int(s) if s else -1)) if len(idx) > 1 else idx
    out = []
    for n in order:
        mac, ip = idx[n]
        if mac or ip:
            out.append((n, mac, ip))
    return out


def header_records(hdr: ConfHeader, *, host: Optional[str] = None) -> List[List[str]]:
    """All canonical 47-field records of one conf (one per interface)."""
    return _records(hdr.path, hdr.keys, hdr.shell, host)


def conf_lines(path: str, data: bytes, *, host: Optional[str] = None) -> Optional[Tuple[str, str]]:
    """(``record_lines(read_header(path, data=data, record_keys=True))``, the VMSTATE of its
    records) of a conf's bytes (``path`` absolute), None when it is no active QEMU conf: the
    cold ENUMERATE's per-conf work, without building a ConfHeader, and with the state its
    filter needs, so that nobody splits the lines again for it
    (tests/unit/inventory/test_inv_fastscan.py)."""
    if classify(data) is not True:
        return None
    keys, shell = header_values(data, record_keys=True)
    recs = _records(path, keys, shell, host)
    if len(recs) == 1:
        return join_record(recs[0]), recs[0][F_VMSTATE - 1]
    return "\n".join([join_record(r) for r in recs]), recs[0][F_VMSTATE - 1]


def _records(path: str, k: Dict[str, str], sh: Dict[str, str],
             host: Optional[str]) -> List[List[str]]:
    hname, user, group = host_facts()
    # every value is the last blank-separated word (legacy getters); the interface keys
    # are put aside on the way (most keys fail the first compare)
    w = {}
    ifkeys = None
    for key, v in k.items():
        w[key] = (v.split() or [""])[-1] if (" " in v or "\t" in v) else v
        c = key[:1]
        if (c == "M" and key.startswith("MAC")) or (c == "I" and key.startswith("IP")):
            if ifkeys is None:
                ifkeys = {}
            ifkeys[key] = v
    g = w.get
    label = k.get("LABEL")
    label = last_word(label) if label else ""
    # DIST/DISTREL/OS/OSREL: blanks become '_' (legacy)
    dist = k.get("DIST")
    distrel = k.get("DISTREL")
    os_ = k.get("OS")
    osrel = k.get("OSREL")
    base = [
        host if host is not None else hname,   # 1 host
        "QEMU",                                # 2 type
        label or path.rpartition("/")[2].split(".", 1)[0],   # 3 label (else the stem)
        path,                                  # 4 id
        g("UUID", "").replace("-", ""),        # 5 uuid
        "", "",                                # 6 mac, 7 tcp (per interface)
        g("VNCACCESSDISPLAY", ""),             # 8
        g("VNCACCESSPORT", ""),                # 9
        g("SPORT", ""),                        # 10
        g("VNCBASEPORT", ""),                  # 11
        "_".join(dist.split()) if dist else "",           # 12
        "_".join(distrel.split()) if distrel else "",     # 13
        "_".join(os_.split()) if os_ else "",             # 14
        "_".join(osrel.split()) if osrel else "",         # 15
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
    ifaces = _interfaces(ifkeys) if ifkeys else None
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
