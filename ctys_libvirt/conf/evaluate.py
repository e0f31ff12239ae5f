"""Evaluate the conf AST (shell.py) over an explicit variables dict.

Semantics follow bash for the subset: ``:-`` treats empty as unset, assignments are not
word-split, later assignments win, ``case`` takes the first matching arm, unset variables
expand to "".  Unquoted expansions in ``[ ... ]`` arguments are field-split on blanks (so
``[ -n $X ]`` behaves as in bash); pathname expansion never happens (no filesystem
access), so an unquoted glob character there is an error.  Where bash's value depends on
its version or locale (``&`` in a ``${X/p/r}`` replacement, ``[[:alpha:]]`` on non-ASCII
text) the reader raises ConfError instead of guessing; tests/unit/conf/test_conf_bash_oracle.py
checks the rest against bash.
"""
from __future__ import annotations

import re
from typing import Dict, List

from ctys_libvirt.conf.glob import Budget, BudgetExceeded, _bracket, compile_pattern
from ctys_libvirt.conf.shell import (ANDOR, ASSIGN, CASE, G_LIT, G_PARAM, G_WORD, IF, LIT, NOT,
                                      TEST, _Src)
from ctys_libvirt.errors import ConfError

MAX_VALUE = 64 * 1024          # longest value a variable may hold
MATCH_STEPS = 2_000_000        # glob-matching work allowed per conf

_IFS = re.compile(r"[ \t\n]+")
# bash's legal_number: strtoimax (leading isspace, sign, digits) plus trailing blanks
_INT = re.compile(r"[ \t\n\v\f\r]*[+-]?[0-9]+[ \t]*")
_INT_MIN, _INT_MAX = -2 ** 63, 2 ** 63 - 1
_GLOB_CHARS = re.compile(r"[*?\[]")
_WORD_OPS = frozenset((":-", "-", ":+", "+"))
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


def _unescape(val: str) -> List[tuple]:
    """Pattern chunks of an unquoted expansion: bash lets a backslash in the value quote
    the next character ("\\*" matches a literal '*'; callers reject a trailing one)."""
    out: List[tuple] = []
    start = i = 0
    n = len(val)
    while i < n - 1:
        if val[i] == "\\":
            if i > start:
                out.append((val[start:i], False))
            out.append((val[i + 1], True))
            i += 2
            start = i
        else:
            i += 1
    if start < n:
        out.append((val[start:], False))
    return out


def _check_brackets(chunks: list) -> None:
    """bash reads a bracket expression across quoting (["*"] matches '*', [\\]] a ']');
    the glob compiler reads one chunk at a time, so such patterns are rejected."""
    for idx, (text, quoted) in enumerate(chunks):
        if quoted or "[" not in text:
            continue
        i = text.find("[")
        while i >= 0:
            cls, end = _bracket(text, i)
            if cls is None:
                if any("]" in t for t, _q in chunks[idx + 1:]):
                    raise _Fail("quoting inside [...] pattern",
                                "quoted or escaped characters inside a [...] glob "
                                "bracket are not supported", "write the bracket unquoted")
                i = text.find("[", i + 1)
            else:
                i = text.find("[", end)


def _has_word_op(word) -> bool:
    """The word holds an unquoted ${X:-...} (- :+ +)."""
    for p in word:
        if p[0] != LIT and not p[4] and p[2] in _WORD_OPS:
            return True
    return False


def _named_class_fail() -> _Fail:
    # which non-ASCII characters [:alpha:] etc. match depends on the locale bash runs in
    return _Fail("character class on non-ASCII text",
                 "a [[:class:]] glob matched against non-ASCII text depends on the locale",
                 "list the characters instead, e.g. [a-zA-Z]")


def _negated_bracket_fail() -> _Fail:
    # bash's ${X/pattern/...} never matches [!]...] / [^]...] (# and case do)
    return _Fail("[!]...] in ${X/pattern/...}",
                 "a negated bracket starting with ']' in ${X/pattern/...} (bash never "
                 "matches it there)", "match the characters another way, e.g. with ${X#...}")


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
            word = cmd[2]
            if _has_word_op(word):
                self._no_quoted_null(word)
            subject = self.expand(word)
            for pats, body in cmd[3]:
                for pat in pats:
                    if _has_word_op(pat):
                        self._no_quoted_null(pat)
                    if self.pattern(pat, subject).fullmatch(subject, self.budget):
                        return self.run(body)
        except (_Fail, BudgetExceeded) as exc:
            raise self._located(cmd, exc) from None
        return 0

    def _no_quoted_null(self, word) -> None:
        """For a case word or pattern: bash leaves a marker in the word for an empty
        quoted string ('', "", "$EMPTY") from an unquoted ${X op word} unless that is all
        the word holds (case ${U:-''}a in a) does not match), so such words are
        rejected."""
        nulls = 0
        text = False
        todo = [(p, False) for p in word]
        while todo:
            p, inner = todo.pop()
            if p[0] == LIT:
                if p[2] is None:
                    nulls += 1
                elif p[1]:
                    text = True
            elif p[4] or p[2] not in _WORD_OPS or not self._uses_word(p):
                if self._param(p):
                    text = True
                elif inner and p[4]:
                    nulls += 1           # "$EMPTY" inside the ${X op word}
            else:
                todo.extend((q, True) for q in p[3])
        if nulls > 1 or (nulls and text):
            raise _Fail("empty quotes in ${X:-...} in case",
                        "'', \"\" or an empty \"$X\" inside an unquoted ${X:-...} of a case "
                        "word or pattern (bash keeps a marker there)",
                        "drop the empty quotes or quote the whole word")

    def _uses_word(self, p) -> bool:
        """Whether ${X op word} (op one of :- - :+ +) expands its word."""
        val = self.v.get(p[1])
        op = p[2]
        if op == ":-":
            return not val
        if op == "-":
            return val is None
        if op == ":+":
            return bool(val)
        return val is not None

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
                if not (_INT.fullmatch(x) and _INT.fullmatch(y)):
                    raise _Fail("integer test", f"'{op}' needs integers", "compare numbers")
                xi, yi = int(x), int(y)
                if not (_INT_MIN <= xi <= _INT_MAX and _INT_MIN <= yi <= _INT_MAX):
                    raise _Fail("integer test", f"'{op}' operand out of range",
                                "compare numbers between -2^63 and 2^63-1")
                return _INT_OPS[op](xi, yi)
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
            if p[4]:
                cur.append(self._param(p))
                have = True
                continue
            for val, quoted in self._pieces(p):
                if quoted:                 # quoted text inside ${X:-"..."}: not split
                    cur.append(val)
                    have = True
                    continue
                if not val:
                    continue
                if _GLOB_CHARS.search(val):
                    raise _Fail("pathname expansion in [ ... ]",
                                f"unquoted ${p[1]} holds a glob character; bash would "
                                "match file names", "quote the expansion: \"$NAME\"")
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

    def pattern(self, word, subject: str, patsub: bool = False):
        """The compiled glob of a pattern word, to be matched against `subject` (by a
        ${X/pattern/...} when `patsub`)."""
        chunks = []
        for p in word:
            if p[0] == LIT:
                chunks.append((p[1], p[2]))
            elif p[4]:
                chunks.append((self._param(p), True))
            else:
                for val, quoted in self._pieces(p):
                    if quoted or "\\" not in val:
                        chunks.append((val, quoted))
                    else:
                        chunks.extend(_unescape(val))
                        if (len(val) - len(val.rstrip("\\"))) % 2:
                            # bash joins the pattern first: it escapes what follows
                            raise _Fail("backslash ending an expansion in a pattern",
                                        f"the value of ${p[1]} ends with a lone backslash "
                                        "inside a glob pattern", "quote the expansion")
        if len(chunks) > 1:
            _check_brackets(chunks)
        named = negated = False
        for text, quoted in chunks:
            if not quoted and "[" in text:
                first = text.index("[")
                for mark in ("[=", "[."):
                    if text.find(mark, first + 1) > 0:
                        raise _Fail("collating element in [...] pattern",
                                    "[=x=] and [.x.] inside a glob bracket are not "
                                    "supported", "list the characters instead")
                named = named or "[:" in text
                negated = negated or "[!]" in text or "[^]" in text
        try:
            pat = compile_pattern(tuple(chunks))
        except re.error:
            raise _Fail("bad pattern", "invalid glob pattern", "check the [...] brackets") from None
        if named and not subject.isascii():
            raise _named_class_fail()
        if negated and patsub:
            raise _negated_bracket_fail()
        return pat

    def _pieces(self, p) -> List[tuple]:
        """(text, quoted) pieces of an unquoted expansion: the text of a ${X:-word} (- :+
        +) keeps the quoting of the word's parts (${U:-"*"} is a quoted '*'), a
        variable's value is unquoted."""
        op = p[2]
        if op in _WORD_OPS:
            if not self._uses_word(p):
                return [(self.v.get(p[1]) or "", False)] if op[-1] == "-" else []
            out: List[tuple] = []
            for q in p[3]:
                if q[0] == LIT:
                    out.append((q[1], q[2] is not False))      # _NULL is quoted
                elif q[4]:
                    out.append((self._param(q), True))
                else:
                    out.extend(self._pieces(q))
            if sum(len(t) for t, _q in out) > MAX_VALUE:
                raise _Fail("value too long", f"a value exceeds {MAX_VALUE} characters",
                            "shorten the expansion")
            return out
        return [(self._param(p), False)]

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
            return self.pattern(arg, s).remove(s, op, self.budget)
        pat, rep = arg
        for p in rep:
            if p[0] != LIT and not p[4]:
                piece = self._param(p)
                if "&" in piece or "\\" in piece:
                    # bash >= 5.2 (patsub_replacement) gives '&' and '\\' of an unquoted
                    # expansion a meaning here, older bash none
                    raise _Fail("'&' or '\\' in ${X/pattern/replacement}",
                                f"the value of ${p[1]} in a ${{X/pattern/replacement}} holds "
                                "'&' or '\\' (bash versions disagree on its meaning)",
                                "quote the expansion: \"$NAME\"")
        if val is None:
            return ""                      # bash substitutes nothing into an unset variable
        pattern = self.pattern(pat, s, True)
        if not s and op in ("/", "//"):
            # bash: an empty value is replaced when a non-empty pattern matches it
            return self.expand(rep) if pattern.literal != "" and pattern.fullmatch(
                "", self.budget) else ""
        try:
            return pattern.replace(s, op, self.expand(rep), self.budget, MAX_VALUE)
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
