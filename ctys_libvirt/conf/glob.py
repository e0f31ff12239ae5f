"""Shell glob patterns (case arms, ${X#pat}, ${X/pat/rep}) without any filesystem access.

A pattern is compiled once into one of three shapes, chosen for speed and for a hard bound
on work (hostile confs must not hang the reader):

* literal text            -> plain str operations;
* no '*' (fixed length)   -> one regex (linear, no backtracking);
* with '*'                -> a token list matched by the classic star-backtracking
                             algorithm (O(len(s) * len(pattern))) charged to a step budget.
"""
from __future__ import annotations

import re
from typing import List, Optional, Tuple

from ctys_libvirt.util.memo import Memo

STAR = object()
ANY = None

_CLASSES = {
    "alpha": "a-zA-Z", "digit": "0-9", "alnum": "a-zA-Z0-9", "upper": "A-Z",
    "lower": "a-z", "space": r" \t\n\r\f\v", "blank": r" \t", "xdigit": "0-9A-Fa-f",
    "punct": r"!-/:-@\[-`{-~", "word": r"\w", "print": r" -~", "graph": r"!-~",
    "cntrl": r"\x00-\x1f\x7f",
}


class BudgetExceeded(Exception):
    """Pattern matching needed more steps than a conf may spend."""


class Budget:
    __slots__ = ("left",)

    def __init__(self, steps: int):
        self.left = steps

    def charge(self, n: int) -> None:
        self.left -= n
        if self.left < 0:
            raise BudgetExceeded()


def _bracket(text: str, i: int) -> Tuple[Optional[str], int]:
    """Parse '[...]' starting at text[i] == '['; return (regex class, next index) or
    (None, i) when there is no closing bracket (then '[' is literal)."""
    j = i + 1
    neg = False
    if j < len(text) and text[j] in "!^":
        neg = True
        j += 1
    items: List[str] = []
    first = True
    n = len(text)
    while j < n:
        c = text[j]
        if c == "]" and not first:
            body = "".join(items)
            return ("[^" if neg else "[") + body + "]", j + 1
        first = False
        if c == "[" and j + 1 < n and text[j + 1] == ":":
            end = text.find(":]", j + 2)
            if end > 0:
                name = text[j + 2:end]
                items.append(_CLASSES.get(name, ""))
                j = end + 2
                continue
        if j + 2 < n and text[j + 1] == "-" and text[j + 2] != "]":
            lo, hi = c, text[j + 2]
            if lo <= hi:
                items.append(re.escape(lo) + "-" + re.escape(hi))
            j += 3
            continue
        items.append(re.escape(c))
        j += 1
    return None, i


def tokens_from(chunks: Tuple[Tuple[str, bool], ...]) -> tuple:
    """(text, is_literal) chunks -> pattern tokens (str char | ANY | STAR | regex-class str
    wrapped in a 1-tuple)."""
    out: list = []
    for text, literal in chunks:
        if literal:
            out.extend(text)
            continue
        i, n = 0, len(text)
        while i < n:
            c = text[i]
            if c == "*":
                if not out or out[-1] is not STAR:
                    out.append(STAR)
                i += 1
            elif c == "?":
                out.append(ANY)
                i += 1
            elif c == "[":
                cls, k = _bracket(text, i)
                if cls is None:
                    out.append("[")
                    i += 1
                else:
                    out.append((cls,))
                    i = k
            else:
                out.append(c)
                i += 1
    return tuple(out)


class Pattern:
    """A compiled glob; see module doc for the three shapes."""

    __slots__ = ("literal", "regex", "fixed_len", "toks", "classes")

    def __init__(self, toks: tuple, literal: Optional[str] = None):
        self.literal = literal          # given: toks are its characters
        self.regex = None
        self.toks = toks
        self.fixed_len = 0
        self.classes = None
        if literal is not None:
            pass
        elif all(type(t) is str for t in toks):
            self.literal = "".join(toks)
        elif STAR not in toks:
            self.regex = re.compile("".join(_tok_re(t) for t in toks), re.S)
            self.fixed_len = len(toks)
        else:
            self.classes = tuple(re.compile(t[0], re.S) if type(t) is tuple else t for t in toks)

    # -- whole-string match ------------------------------------------------------
    def fullmatch(self, s: str, budget: Budget) -> bool:
        if self.literal is not None:
            return s == self.literal
        if self.regex is not None:
            return self.regex.fullmatch(s) is not None
        return _star_match(self.classes, s, budget)

    # -- ${X#p} ${X##p} ${X%p} ${X%%p} -------------------------------------------
    def remove(self, s: str, op: str, budget: Budget) -> str:
        if self.literal is not None:
            lit = self.literal
            if op[0] == "#":
                return s[len(lit):] if s.startswith(lit) else s
            return s[:len(s) - len(lit)] if s.endswith(lit) else s
        if self.regex is not None:
            k = self.fixed_len
            if k > len(s):
                return s
            if op[0] == "#":
                return s[k:] if self.regex.fullmatch(s, 0, k) else s
            return s[:len(s) - k] if self.regex.fullmatch(s, len(s) - k) else s
        n = len(s)
        budget.charge(n)
        if op == "#":
            rng = range(0, n + 1)
        elif op == "##":
            rng = range(n, -1, -1)
        elif op == "%":
            rng = range(n, -1, -1)
        else:
            rng = range(0, n + 1)
        for k in rng:
            if op[0] == "#":
                if _star_match(self.classes, s[:k], budget):
                    return s[k:]
            elif _star_match(self.classes, s[k:], budget):
                return s[:k]
        return s

    # -- ${X/p/r} ${X//p/r} ${X/#p/r} ${X/%p/r} ----------------------------------
    def replace(self, s: str, op: str, rep: str, budget: Budget, limit: int) -> str:
        if op == "/#":
            k = self._prefix_len(s, budget)
            return s if k is None else rep + s[k:]
        if op == "/%":
            k = self._suffix_start(s, budget)
            return s if k is None else s[:k] + rep
        count = 1 if op == "/" else -1
        if self.literal is not None:
            if not self.literal:
                return s
            if count < 0 and len(rep) > len(self.literal):
                est = len(s) + s.count(self.literal) * (len(rep) - len(self.literal))
                if est > limit:
                    raise OverflowError()
            return s.replace(self.literal, rep, count)
        if self.regex is not None:
            out = self.regex.sub(lambda _m: rep, s, count=max(count, 0))
            if len(out) > limit:
                raise OverflowError()
            return out
        # star pattern: leftmost start, longest match, non-empty
        out: List[str] = []
        size = 0
        i, n = 0, len(s)
        last = 0
        while i < n:
            hit = None
            budget.charge(n - i)
            for j in range(n, i, -1):
                if _star_match(self.classes, s[i:j], budget):
                    hit = j
                    break
            if hit is None:
                i += 1
                continue
            out.append(s[last:i])
            out.append(rep)
            size += i - last + len(rep)
            if size > limit:
                raise OverflowError()
            last = i = hit
            if count == 1:
                break
        out.append(s[last:])
        return "".join(out)

    def _prefix_len(self, s: str, budget: Budget) -> Optional[int]:
        for k in range(len(s), -1, -1):
            if self.fullmatch(s[:k], budget):
                return k
            budget.charge(1)
        return None

    def _suffix_start(self, s: str, budget: Budget) -> Optional[int]:
        for k in range(0, len(s) + 1):
            if self.fullmatch(s[k:], budget):
                return k
            budget.charge(1)
        return None


def _tok_re(t) -> str:
    if t is ANY:
        return "."
    if type(t) is tuple:
        return t[0]
    return re.escape(t)


def _star_match(toks: tuple, s: str, budget: Budget) -> bool:
    """Glob full match with '*' backtracking to the last star: O(len(s) * len(toks))."""
    ti = si = 0
    star_ti = -1
    star_si = 0
    n, m = len(s), len(toks)
    steps = 0
    while si < n:
        steps += 1
        if ti < m:
            t = toks[ti]
            if t is STAR:
                star_ti, star_si = ti, si
                ti += 1
                continue
            ch = s[si]
            if t is ANY or (t == ch if type(t) is str else t.fullmatch(ch) is not None):
                ti += 1
                si += 1
                continue
        if star_ti >= 0:
            star_si += 1
            si = star_si
            ti = star_ti + 1
            if steps > 4096:
                budget.charge(steps)
                steps = 0
            continue
        budget.charge(steps)
        return False
    budget.charge(steps)
    while ti < m and toks[ti] is STAR:
        ti += 1
    return ti == m


_GLOB_CHARS = re.compile(r"[*?\[]")


# (text, is_literal) chunks -> Pattern: every case arm of every conf is a pattern, and
# confs of one template repeat them (compile_pattern about 5x faster on a hit;
# docs/architecture.md, Caches).  Patterns are immutable.
_PATTERNS = Memo("glob patterns", max_entries=1024)


def compile_pattern(chunks: Tuple[Tuple[str, bool], ...]) -> Pattern:
    """(text, is_literal) chunks -> Pattern."""
    hit = _PATTERNS.get(chunks)
    if hit is None:
        hit = _compile(chunks)
        _PATTERNS.put(chunks, hit)
    return hit


def _compile(chunks: Tuple[Tuple[str, bool], ...]) -> Pattern:
    if all(literal or not _GLOB_CHARS.search(text) for text, literal in chunks):
        # the usual case arm (x86_64|amd64): plain text, nothing to tokenize
        text = "".join([c[0] for c in chunks])
        return Pattern(tuple(text), literal=text)
    return Pattern(tokens_from(chunks))
