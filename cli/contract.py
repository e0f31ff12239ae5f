"""The JSON contract of ``--format json`` (docs/json.md; schemas in ctys_libvirt/schema/):
snake_case keys, typed values, one set of state names.  The library's dataclasses are
the source; this module only shapes them, so every command prints the same vocabulary."""
from __future__ import annotations

import dataclasses
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

_STATE_REASON = re.compile(r"^(\S+) \((.+)\)$")


# libvirt's state names; "gone": a transient domain that no longer exists
STATES = ("nostate", "running", "blocked", "paused", "shutdown", "shutoff", "crashed",
          "pmsuspended", "gone")


def split_state(text: Optional[str]) -> Tuple[Optional[str], Optional[str]]:
    """"shutoff (shutdown)" -> ("shutoff", "shutdown"): list's state name plus the reason.
    The direct backend's "saved" (a SUSPEND state file) is libvirt's shutoff (saved)."""
    if not text:
        return text, None
    if text == "saved":
        return "shutoff", "saved"
    m = _STATE_REASON.match(text)
    return (m.group(1), m.group(2)) if m else (text, None)


def domain(info) -> Dict[str, Any]:
    """One LIST entry (a DomainInfo)."""
    d = dataclasses.asdict(info)
    d["state"], d["reason"] = split_state(d["state"])
    d["extra"] = {str(k): str(v) for k, v in (d.get("extra") or {}).items()}
    return d


def cancel(result) -> Dict[str, Any]:
    d = dataclasses.asdict(result)
    d["mode"] = result.mode.value
    d["state"], d["reason"] = split_state(result.state)
    return d


def create(result) -> Dict[str, Any]:
    d = dataclasses.asdict(result)
    d["state"], d["reason"] = split_state(result.state)
    return d


# ENUMERATE: the 47 ctys field names in snake_case, in the canonical record order
ENUM_KEYS: Tuple[str, ...] = (
    "containing_machine", "session_type", "label", "id", "uuid", "mac", "tcp", "display",
    "client_access_port", "server_access_port", "vnc_base_port", "distro", "distro_rel", "os",
    "os_rel", "vers_no", "serial_no", "category", "vm_state", "hyperrel", "stack_cap",
    "stack_req", "hwcap", "hwreq", "exec_location", "relocation_capacity", "ssh_port", "netname",
    "hyperrel_run", "accelerator", "exepath", "rsrv", "ifname", "ctys_release", "netmask",
    "gateway", "relay", "arch", "platform", "vram", "vcpu", "context_stg", "user_strg", "uid",
    "gid", "def_hosts", "def_console",
)
# integer fields; a value that is not a number becomes null (the records format keeps it)
ENUM_INTS = frozenset({"display", "client_access_port", "vnc_base_port", "ssh_port", "vram", "vcpu"})
_MEM = re.compile(r"^(\d+)\s*([KMGT]?)i?B?$", re.I)
_MIB = {"K": 1 / 1024, "": 1, "M": 1, "G": 1024, "T": 1024 * 1024}


def _int(key: str, value: str) -> Optional[int]:
    v = value.strip()
    if key == "vram":                       # MEMSIZE: MiB, or with a K/M/G/T suffix
        m = _MEM.match(v)
        return int(int(m.group(1)) * _MIB[m.group(2).upper()]) if m else None
    return int(v) if v.isdigit() else None


def enum_record(fields: Sequence[str]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for key, value in zip(ENUM_KEYS, fields):
        if key in ENUM_INTS:
            out[key] = _int(key, value)
        else:
            out[key] = value if value != "" else None
    return out


def enum_records(records: Sequence[Sequence[str]]) -> List[Dict[str, Any]]:
    return [enum_record(r) for r in records]
