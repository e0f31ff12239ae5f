"""Escaping of ``;`` record values (LIST and ENUMERATE records alike, ctys/records.py
explains it): its own module so that ENUMERATE's record format (ctys/enum_record.py) does not
import the LIST record's dataclasses (``dataclasses`` imports ``inspect``: ~8 ms of start-up)."""
from __future__ import annotations

import re


def escape(value: str) -> str:
    # \r too: a bare CR inside a value would end the record for CRLF-aware readers
    if "\\" in value or ";" in value or "\n" in value or "\r" in value:
        value = (value.replace("\\", "\\\\").replace(";", "\\;").replace("\n", "\\n")
                 .replace("\r", "\\r"))
    return value


_UNESC = re.compile(r"\\(.)", re.S)
_UNESC_MAP = {"n": "\n", "r": "\r"}


def unescape(value: str) -> str:
    if "\\" not in value:
        return value
    return _UNESC.sub(lambda m: _UNESC_MAP.get(m.group(1), m.group(1)), value)
