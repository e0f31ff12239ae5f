"""The ctys suboption grammar (ctys-cli.md §1.4): ``KEY[:ARG]{,KEY[:ARG]}``.

Escapes: ``,,`` / ``\\,`` -> literal ``,``; ``::`` / ``\\:`` -> literal ``:``; ``%`` separates
values inside one argument; ``%%`` -> literal ``%``.  Keys are case-insensitive.

Deliberate difference from the legacy tokenizer: text after a second unescaped ``:`` is kept
(legacy silently dropped it), so ``M:00:50:56:13:11:39`` and ``CONSOLE:VNC:5901`` work without
escaping and nothing the user typed is lost.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

from ctys_libvirt.errors import UsageError



# Private-use placeholders for escaped separators while splitting.
_COMMA = "\ue000"
_COLON = "\ue001"
_PCT = "\ue002"


@dataclass(frozen=True)
class Subopt:
    """One ``KEY[:ARG]`` item.  ``values`` is ARG split at single ``%`` (escapes resolved);
    ``arg`` is ARG with escapes resolved and ``%`` kept as the separator-free join (legacy:
    ``%`` becomes a blank).  ``arg is None`` for a flag."""

    key: str
    arg: Optional[str]
    values: Tuple[str, ...] = ()
    raw: str = ""

    @property
    def is_flag(self) -> bool:
        return self.arg is None


def _protect(text: str) -> str:
    # Order matters: backslash escapes first, then doubled characters left to right.
    text = text.replace("\\,", _COMMA).replace("\\:", _COLON).replace("\\%", _PCT)
    text = text.replace(",,", _COMMA).replace("::", _COLON)
    text = text.replace("%%", _PCT)
    return text


def _restore(text: str) -> str:
    return text.replace(_COMMA, ",").replace(_COLON, ":").replace(_PCT, "%")


def _strip_trailing_quote(arg: str) -> str:
    # Legacy: a single unmatched trailing quote (a shell-quoting leftover) is dropped.
    if arg and arg[-1] in "'\"" and arg.count(arg[-1]) == 1:
        return arg[:-1]
    return arg


def split_subopts(text: str) -> List[Subopt]:
    """Tokenize a suboption string into ordered ``Subopt`` items (no validation of keys)."""
    if text is None:
        return []
    prot = _protect(text)
    items: List[Subopt] = []
    for part in prot.split(","):
        if part == "":
            if prot.strip() == "":
                continue
            raise UsageError(
                f"empty suboption in {text!r}",
                hint="remove the stray ',' or write ',,' for a literal comma",
            )
        raw = _restore(part)
        if ":" in part:
            key_p, rest = part.split(":", 1)
            # a further single ':' is kept literally (legacy dropped the rest: a defect)
            rest = _strip_trailing_quote(rest)
            values = tuple(_restore(v) for v in rest.split("%"))
            arg = _restore(rest)
            arg_join = " ".join(values) if "%" in rest else arg
            key = _restore(key_p).strip().upper()
            if not key:
                raise UsageError(f"suboption without key: {raw!r}", hint="write KEY:VALUE")
            items.append(Subopt(key=key, arg=arg_join, values=values, raw=raw))
        else:
            key = _restore(part).strip().upper()
            items.append(Subopt(key=key, arg=None, values=(), raw=raw))
    return items


def split_action(value: str) -> Tuple[str, str]:
    """``-a ACTION[=SUBOPTS]`` -> (ACTION upper-cased, raw suboption string)."""
    if "=" in value:
        act, sub = value.split("=", 1)
    else:
        act, sub = value, ""
    return act.strip().upper(), sub


def escape_value(text: str) -> str:
    """Inverse of the tokenizer for one argument value: protect ``, : %``."""
    return text.replace("%", "%%").replace(",", ",,").replace(":", "::")


