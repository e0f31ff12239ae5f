"""Shell-word splitting of conf values (ARGSADD, TIMEOPT): ``shlex.split`` semantics."""
from __future__ import annotations

import re
import shlex
from typing import List

# No quote, no backslash and only ASCII blanks between words: shlex.split gives exactly
# str.split().  shlex is pure Python (about 25 us for a short ARGSADD); most values are
# plain words.
_PLAIN = re.compile(r"[^'\"\\\s]*(?:[ \t\r\n]+[^'\"\\\s]*)*")


def split_words(text: str) -> List[str]:
    """``shlex.split(text)`` (raises its ValueError for unbalanced quotes)."""
    if _PLAIN.fullmatch(text):
        return text.split()
    return shlex.split(text)
