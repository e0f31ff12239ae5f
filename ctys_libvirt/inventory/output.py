"""Rendering of LIST/ENUMERATE records (lists of field strings) as ctys output:
TERSE/MACHINE ``;`` records, TITLE lines, TAB_GEN/TAB_TCP tables, SORT (ctys-cli.md §5.1),
plus the plain table and JSON shapes of ``--format``.  Returns text; never prints."""
from __future__ import annotations

import json
from typing import Dict, List, Sequence

from ctys_libvirt.ctys.records import escape
from ctys_libvirt.ctys.columns import CollectorSpec, TabColumn


def _col_letters(i: int) -> str:
    s = ""
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(65 + r) + s
    return s


def title(names: Sequence[str], idxs: Sequence[int], kind: str) -> str:
    out = []
    for i in idxs:
        n = names[i - 1]
        if kind == "TITLEIDX":
            n = f"{n}({i})"
        elif kind == "TITLEIDXASC":
            n = f"{n}({_col_letters(i)}-{i})"
        out.append(n)
    return ";".join(out)


def sort_records(records: List[List[str]], spec: CollectorSpec) -> List[List[str]]:
    if not spec.sort:
        return records
    k = (spec.sort_key or 0) - 1
    if k >= 0:
        # numbers sort numerically (VRAM, ports), everything else as text
        def key(r):
            v = r[k]
            return ((0, int(v), "") if v.isdigit() else (1, 0, v)), r

        out = sorted(records, key=key, reverse=spec.sort_reverse)
    else:
        out = sorted(records, reverse=spec.sort_reverse)
    if spec.sort_unique:
        seen, uniq = set(), []
        for r in out:
            t = tuple(r)
            if t not in seen:
                seen.add(t)
                uniq.append(r)
        out = uniq
    return out


def _cell(value: str, col: TabColumn) -> List[str]:
    w = col.width
    if w <= 0 or len(value) <= w:
        return [value]
    if col.mode == "L":
        return [value[-w:]]
    if col.mode == "B":
        return [value[i:i + w] for i in range(0, len(value), w)]
    return [value[:w]]


def render_table(records: Sequence[Sequence[str]], cols: Sequence[TabColumn]) -> str:
    widths = [c.width if c.width > 0 else max([len(c.title)] + [len(r[c.index - 1]) for r in records])
              for c in cols]
    lines = ["|".join(c.title[:w].ljust(w) for c, w in zip(cols, widths)).rstrip(),
             "+".join("-" * w for w in widths)]
    for r in records:
        cells = [_cell(r[c.index - 1], TabColumn(c.index, c.title, w, c.mode))
                 for c, w in zip(cols, widths)]
        for n in range(max(len(x) for x in cells)):
            lines.append("|".join((x[n] if n < len(x) else "").ljust(w)
                                  for x, w in zip(cells, widths)).rstrip())
    return "\n".join(lines)


def render_ctys(records: List[List[str]], spec: CollectorSpec, names: Sequence[str],
                default_cols: Sequence[TabColumn]) -> str:
    """ctys-style output of ``records`` according to the selectors in ``spec``."""
    nf = len(names)
    records = sort_records(records, spec)
    if spec.table is not None:
        return render_table(records, spec.table)
    if spec.machine:
        idxs = list(range(1, nf + 1))
    elif spec.fields:
        idxs = list(spec.fields)
    elif spec.terse:
        idxs = [c.index for c in default_cols]
    else:
        cols = list(default_cols)
        return render_table(records, cols)
    lines = []
    if spec.title:
        lines.append(title(names, idxs, spec.title))
    if spec.terse or spec.machine:
        lines.extend(";".join(escape(r[i - 1]) for i in idxs) for r in records)
        return "\n".join(lines)
    cols = [TabColumn(i, names[i - 1], 0) for i in idxs]
    return render_table(records, cols)


def records_json(records: Sequence[Sequence[str]], names: Sequence[str]) -> str:
    return json.dumps([dict(zip(names, r)) for r in records], indent=2)


def as_dicts(records: Sequence[Sequence[str]], names: Sequence[str]) -> List[Dict[str, str]]:
    return [dict(zip(names, r)) for r in records]
