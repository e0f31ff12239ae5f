"""The one table renderer of ctys-libvirt's human output (list, enumerate, info): columns
padded to the widest cell, two blanks apart, no trailing blanks.  Control characters in a
cell (a foreign domain named with an ESC sequence) are shown as '?', never sent to the
terminal.  Own code rather than rich: importing rich costs more than a whole `list` run.
(ctys-qemu's TAB_GEN/TAB_TCP tables follow the ctys format and stay in inventory.output.)"""
from __future__ import annotations

import re
from typing import Iterable, Sequence, Tuple

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def _cell(value) -> str:
    text = "" if value is None else str(value)
    # isprintable() is False for every control character: most cells skip the regex
    return text if text.isprintable() else _CONTROL.sub("?", text)


def columns(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    table = [[_cell(v) for v in header]] + [[_cell(v) for v in r] for r in rows]
    widths = [max(map(len, col)) for col in zip(*table)]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in table)


def pairs(items: Iterable[Tuple[str, object]]) -> str:
    """``Key:  value`` lines, the values aligned."""
    items = [(_cell(k) + ":", _cell(v)) for k, v in items]
    width = max((len(k) for k, _ in items), default=0)
    return "\n".join(f"{k:{width}} {v}".rstrip() for k, v in items)
