"""Evaluate the conf AST (shell.py) over an explicit variables dict.

Semantics follow bash for the subset: ``:-`` treats empty as unset, assignments are not
word-split, later assignments win, ``case`` takes the first matching arm, unset variables
expand to "".  Unquoted expansions in ``[ ... ]`` arguments are field-split on blanks (so
``[ -n $X ]`` behaves as in bash); pathname expansion never happens (no filesystem access).
"""
from __future__ import annotations

import re
from typing import Dict, List

from ctys_libvirt.conf.glob import Budget, BudgetExceeded, compile_pattern
from ctys_libvirt.conf.shell import (ANDOR, ASSIGN, CASE, G_LIT, G_PARAM, G_WORD, IF, LIT, NOT,
                                      TEST, _Src)
from ctys_libvirt.errors import ConfError

MAX_VALUE = 64 * 1024          # longest value a variable may hold
MATCH_STEPS = 2_000_000        # glob-matching work allowed per conf

_LITERAL_PATTERNS: dict = {}   # word made of literal parts only -> its compiled Pattern
_IFS = re.compile(r"[ \t\n]+")
_INT = re.compile(r"[+-]?[0-9]+")
_FILE_TESTS = frozenset("-a -b -c -d -e -f -g -h -k -p -r -s -t -u -w -x -G -L -N -O -S".split())
_INT_OPS = {"-eq": int.__eq__, "-ne": int.__ne__, "-lt": int.__lt__, "-le": int.__le__,
            "-gt": int.__gt__, "-ge": int.__ge__}


class _Fail(Exception):
    """Internal: an error found while evaluating, positioned by the caller."""

    def __init__(self, construct: str, message: str, hint: str):
        super().__init__(message)
        self.construct = construct
        self.message = message
        self.hint = hint


class Evaluator:
    def __init__(self, variables: Dict[str, str], src: _Src):
        self.v = variables
        self.src = src
        self.budget = Budget(MATCH_STEPS)
        self.base = 0              # offset of the commands' positions (compile_groups)

    # -- commands ---------------------------------------------------------------
    def run(self, cmds: list) -> int:
        status = 0
        v = self.v
        for cmd in cmds:
            # Fast path, same result as _exec: one assignment of a single literal
            # (X=lit, X="lit") or of ${Y} / ${Y:-lit} whose value needs no length check.
            if cmd[0] == ASSIGN and len(cmd[2]) == 1:
                name, append, word = cmd[2][0]
                if not append and len(word) == 1:
                    p = word[0]
                    if p[0] == LIT:
                        v[name] = p[1]
                        status = 0
                        continue
                    op = p[2]
                    if op is None or op == ":-":
                        val = v.get(p[1])
                        if not val:
                            arg = p[3]
                            if op is None or not arg:
                                val = ""
                            elif len(arg) == 1 and arg[0][0] == LIT:
                                val = arg[0][1]
                            else:
                                val = None
                        if val is not None and len(val) <= MAX_VALUE:
                            v[name] = val
                            status = 0
                            continue
            status = self._exec(cmd)
        return status

    def _exec(self, cmd) -> int:
        kind = cmd[0]
        try:
            if kind == ASSIGN:
                v = self.v
                for name, append, word in cmd[2]:
                    val = self.expand(word)
                    if append:
                        val = v.get(name, "") + val
                        self._check_len(val)
                    v[name] = val
                return 0
            if kind == TEST:
                return 0 if self._test([f for w in cmd[2] for f in self.fields(w)]) else 1
        except (_Fail, BudgetExceeded) as exc:
            raise self._located(cmd, exc) from None
        if kind == ANDOR:
            status = self._exec(cmd[2])
            for op, sub in cmd[3]:
                if (op == "&&") == (status == 0):
                    status = self._exec(sub)
            return status
        if kind == NOT:
            return 0 if self._exec(cmd[2]) else 1
        if kind == CASE:
            return self._case(cmd)
        if kind == IF:
            for cond, body in cmd[2]:
                if self.run(cond) == 0:
                    return self.run(body)
            return self.run(cmd[3]) if cmd[3] is not None else 0
        raise AssertionError(kind)  # pragma: no cover

    def _located(self, cmd, exc: Exception) -> ConfError:
        """An evaluation failure as a ConfError at the command's position."""
        if isinstance(exc, _Fail):
            return self.src.error(self.base + cmd[1], exc.construct, exc.message, exc.hint)
        return self.src.error(self.base + cmd[1], "pattern too expensive",
                              "pattern matching exceeds the reader's work limit",
                              "simplify the glob pattern")

    def _case(self, cmd) -> int:
        try:
            subject = self.expand(cmd[2])
            for pats, body in cmd[3]:
                for pat in pats:
                    if self.pattern(pat).fullmatch(subject, self.budget):
                        return self.run(body)
        except (_Fail, BudgetExceeded) as exc:
            raise self._located(cmd, exc) from None
        return 0

    # -- [ ... ] ----------------------------------------------------------------
    def _test(self, a: List[str]) -> bool:
        n = len(a)
        if n == 0:
            return False
        if n == 1:
            return a[0] != ""
        if n == 2:
            op, x = a
            if op == "!":
                return x == ""
            if op == "-n":
                return x != ""
            if op == "-z":
                return x == ""
            if op in _FILE_TESTS:
                raise _Fail(f"file test {op}", f"file test {op} is not supported "
                            "(the reader never looks at the filesystem)",
                            "use -n/-z or string comparison")
            raise _Fail("test syntax", f"unsupported test '[ {op} ... ]'",
                        "use -n, -z, =, == or !=")
        if n == 3:
            x, op, y = a
            if op in ("=", "=="):
                return x == y
            if op == "!=":
                return x != y
            if op in _INT_OPS:
                if not (_INT.fullmatch(x.strip()) and _INT.fullmatch(y.strip())):
                    raise _Fail("integer test", f"'{op}' needs integers", "compare numbers")
                return _INT_OPS[op](int(x), int(y))
            if x == "!":
                return not self._test(a[1:])
            raise _Fail(f"test operator {op}", f"test operator {op} is not supported",
                        "use -n, -z, =, == or !=")
        if n == 4 and a[0] == "!":
            return not self._test(a[1:])
        raise _Fail("complex test", "complex [ ... ] expressions (-a/-o, several clauses) "
                    "are not supported", "split it into several [ ... ] && [ ... ] tests")

    # -- words --------------------------------------------------------------------
    def _check_len(self, val: str) -> None:
        if len(val) > MAX_VALUE:
            raise _Fail("value too long", f"a value exceeds {MAX_VALUE} characters",
                        "shorten the assignment")

    def expand(self, word) -> str:
        if len(word) == 1 and word[0][0] == LIT:
            return word[0][1]
        out = []
        for p in word:
            out.append(p[1] if p[0] == LIT else self._param(p))
        val = "".join(out)
        if len(val) > MAX_VALUE:
            self._check_len(val)
        return val

    def fields(self, word) -> List[str]:
        """Expansion with field splitting of unquoted parameter results."""
        result: List[str] = []
        cur: List[str] = []
        have = False
        for p in word:
            if p[0] == LIT:
                cur.append(p[1])
                have = True
                continue
            val = self._param(p)
            if p[4]:
                cur.append(val)
                have = True
                continue
            if not val:
                continue
            for idx, piece in enumerate(_IFS.split(val)):
                if idx and have:
                    result.append("".join(cur))
                    cur, have = [], False
                if piece:
                    cur.append(piece)
                    have = True
        if have:
            result.append("".join(cur))
        return result

    def pattern(self, word):
        pat = _LITERAL_PATTERNS.get(word)
        if pat is not None:
            return pat
        chunks = []
        literal = True
        for p in word:
            if p[0] == LIT:
                chunks.append((p[1], p[2]))
            else:
                literal = False
                chunks.append((self._param(p), p[4]))
        try:
            pat = compile_pattern(tuple(chunks))
        except re.error:
            raise _Fail("bad pattern", "invalid glob pattern", "check the [...] brackets") from None
        if literal and sum(len(c[0]) for c in chunks) <= 256:   # a constant: keep it
            if len(_LITERAL_PATTERNS) >= 1024:
                _LITERAL_PATTERNS.clear()
            _LITERAL_PATTERNS[word] = pat
        return pat

    def _param(self, p) -> str:
        _, name, op, arg, _q = p
        val = self.v.get(name)
        if op is None:
            return val or ""
        if op == ":-":
            return val if val else self.expand(arg)
        if op == "-":
            return val if val is not None else self.expand(arg)
        if op == ":+":
            return self.expand(arg) if val else ""
        if op == "+":
            return self.expand(arg) if val is not None else ""
        if op == "len":
            return str(len(val or ""))
        s = val or ""
        if op[0] in "#%":
            return self.pattern(arg).remove(s, op, self.budget)
        pat, rep = arg
        try:
            return self.pattern(pat).replace(s, op, self.expand(rep), self.budget, MAX_VALUE)
        except OverflowError:
            raise _Fail("value too long", f"a value exceeds {MAX_VALUE} characters",
                        "shorten the substitution") from None


def evaluate(cmds: list, variables: Dict[str, str], src: _Src) -> Dict[str, str]:
    """Run the AST over `variables` (mutated and returned)."""
    Evaluator(variables, src).run(cmds)
    return variables


def evaluate_groups(groups: list, variables: Dict[str, str], src: _Src) -> Dict[str, str]:
    """Run compile_groups() output over `variables` (mutated and returned); the compiled
    one-assignment forms give exactly what running their AST gives."""
    ev = Evaluator(variables, src)
    v = variables
    for base, (kind, name, a, b, cmds) in groups:
        if kind == G_LIT:
            v[name] = a
            continue
        if kind == G_PARAM:
            val = v.get(a) or b
            if len(val) <= MAX_VALUE:
                v[name] = val
                continue
        elif kind == G_WORD:
            val = "".join([x if d is None else (v.get(x) or d) for x, d in a])
            if len(val) <= MAX_VALUE:
                v[name] = val
                continue
        ev.base = base
        ev.run(cmds)
    return variables
