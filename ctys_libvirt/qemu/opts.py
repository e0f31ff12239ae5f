"""QEMU's "a,b=c" option values: one splitter for every reader of them."""
from __future__ import annotations

from typing import List


def split_commas(value: str) -> List[str]:
    """'a,b=c,,d' -> ['a', 'b=c,d']: the fields of a QEMU option value (',,' is a comma)."""
    parts, cur, i = [], [], 0
    while i < len(value):
        c = value[i]
        if c == ",":
            if value[i + 1:i + 2] == ",":
                cur.append(",")
                i += 2
                continue
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    return parts
