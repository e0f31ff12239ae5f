"""Helpers for the inventory tests: write small ctys confs into a tree."""
from __future__ import annotations

from pathlib import Path
from typing import Optional


def write_conf(base: Path, label: str, *, uuid: Optional[str] = None, mac: Optional[str] = None,
               ip: Optional[str] = None, magic: str = "#@#MAGICID-QEMU", extra: str = "",
               dirname: Optional[str] = None, stem: Optional[str] = None,
               body: str = "") -> Path:
    """<base>/<dirname or label>/<stem or label>.ctys with the usual #@# header."""
    d = base / (dirname or label)
    d.mkdir(parents=True, exist_ok=True)
    lines = ["#  -*- mode: conf; -*-", magic, f'#@#LABEL = "{label}"', f'LABEL="{label}"']
    if uuid:
        lines.append(f'#@#UUID = "{uuid}"')
    if mac:
        lines.append(f'#@#MAC0 = "{mac}"')
    if ip:
        lines.append(f'#@#IP0 = "{ip}"')
    if extra:
        lines.append(extra)
    if body:
        lines.append(body)
    p = d / f"{stem or label}.ctys"
    p.write_text("\n".join(lines) + "\n")
    return p


def uuid_of(n: int) -> str:
    return f"{n:032x}"


def mac_of(n: int) -> str:
    h = f"{n:012x}"
    return ":".join(h[i:i + 2] for i in range(0, 12, 2))
