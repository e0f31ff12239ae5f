"""Tokenizer + parser for the shell subset used by ctys conf files (conf-format.md §3.3).

The result is a small AST of tuples; nothing here (or anywhere in this package) runs a
command.  Every construct outside the subset raises ConfError with file, line, column and
the construct's name, so a user sees exactly what to rewrite.

AST
  word  = tuple of parts; part = (LIT, text, quoted) | (PARAM, name, op, arg, quoted)
          op: None | ':-' '-' ':+' '+' | '#' '##' '%' '%%' (arg = word)
              | '/' '//' '/#' '/%' (arg = (pattern word, replacement word)) | 'len'
  cmd   = (ASSIGN, pos, [(name, append, word), ...])
        | (TEST, pos, [word, ...])
        | (ANDOR, pos, first_cmd, [(op, cmd), ...])
        | (NOT, pos, cmd)
        | (CASE, pos, word, [([pattern words], [cmds]), ...])
        | (IF, pos, [([cond cmds], [body cmds]), ...], else_cmds | None)
"""
from __future__ import annotations

import re
from typing import Optional, Tuple

from ctys_libvirt.errors import ConfError

LIT, PARAM = 0, 1
ASSIGN, TEST, ANDOR, NOT, CASE, IF = range(6)

MAX_NESTING = 32          # if/case nesting and ${...} nesting

_HINT = "rewrite it as plain NAME=value assignments"

# Token kinds
_W, _A, _O, _NL, _EOF = range(5)

_SKIP = re.compile(r"(?:[ \t\r\f\v]+|\\\n)+")
_COMMENT_END = re.compile(r"[^\n]*")
_PLAIN = re.compile(r"[^\s;&|()<>'\"\\$`]+")
_DQ_PLAIN = re.compile(r'[^"\\$`]+')
_ARG_PLAIN = re.compile(r"[^}'\"\\$`]+")
_ARG_PLAIN_DQ = re.compile(r'[^}"\\$`]+')
_PAT_PLAIN = re.compile(r"[^}/'\"\\$`]+")
_PAT_PLAIN_DQ = re.compile(r'[^}/"\\$`]+')
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ASSIGN_START = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(\+?)=")
_ARRAY_ASSIGN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\[[^\]\s]*\]\+?=")
_OPS = re.compile(r";;&|;;|;&|&&|\|\||\|&|<<<|<<-|<<|>>|&>>|&>|>&|<&|<>|>\||[;&|()<>]")

# Fast path for the common tokens (one regex call each): runs of blank/comment lines,
# blanks, NAME=value with a literal value, plain literal words.  Anything else goes
# through the detailed scanner below, which produces identical tokens.
_FAST = re.compile(r"""
 (?P<skip>(?:[ \t\r\f\v]*(?:\#[^\n]*)?\n)+)
|(?P<ws>[ \t\r\f\v]+)
|(?P<asg>(?P<an>[A-Za-z_][A-Za-z0-9_]*)=
   (?:(?P<av>[^\s;&|()<>'"\\$`]*)|"(?P<ad>[^"\\$`]*)"|'(?P<aq>[^']*)')
   (?=[\s;&|)<>]|\Z))
|(?P<asgp>(?P<pa>[A-Za-z_][A-Za-z0-9_]*)=(?P<pq>"?)
   \$(?:\{(?P<pn>[A-Za-z_][A-Za-z0-9_]*)(?P<pop>:-(?P<pd>[^}'"\\$`]*))?\}|(?P<pn2>[A-Za-z_][A-Za-z0-9_]*))
   (?P=pq)(?=[\s;&|)<>]|\Z))
|(?P<word>[^\s;&|()<>'"\\$`=\#][^\s;&|()<>'"\\$`=]*(?=[\s;&|()<>]|\Z))
|(?P<op>;;(?![&])|;(?![;&])|&&|\|\|(?!&)|\|(?![|&])|[()])
""", re.X)

_OK_OPS = frozenset({";", ";;", "&&", "||", "|", "(", ")"})
_BAD_OPS = {
    "&": "background job '&'",
    ";&": "case fall-through ';&'",
    ";;&": "case fall-through ';;&'",
    "|&": "pipe '|&'",
    "<<": "here-document '<<'",
    "<<-": "here-document '<<-'",
    "<<<": "here-string '<<<'",
}

# Command words that people may plausibly write, with the construct they stand for.
_BUILTINS = {
    "export": "'export'", "source": "'source'", ".": "'.' (source)", "eval": "'eval'",
    "exec": "'exec'", "function": "function definition", "for": "'for' loop",
    "while": "'while' loop", "until": "'until' loop", "select": "'select' loop",
    "local": "'local'", "declare": "'declare'", "typeset": "'typeset'",
    "readonly": "'readonly'", "unset": "'unset'", "alias": "'alias'", "set": "'set'",
    "trap": "'trap'", "let": "arithmetic 'let'", "read": "'read'", "[[": "'[[ ... ]]' test",
    "{": "command group '{ ...; }'", "}": "command group '{ ...; }'",
}
_RESERVED_UNEXPECTED = frozenset({"then", "fi", "esac", "do", "done", "elif", "else", "in"})


def position(text: str, pos: int) -> Tuple[int, int]:
    """Offset -> (line, column), both 1-based."""
    line = text.count("\n", 0, pos) + 1
    col = pos - text.rfind("\n", 0, pos)
    return line, col


class _Src:
    """Source text plus error reporting with line/column."""

    __slots__ = ("text", "path")

    def __init__(self, text: str, path: str):
        self.text = text
        self.path = path

    def error(self, pos: int, construct: str, message: Optional[str] = None,
              hint: str = _HINT) -> ConfError:
        line, col = position(self.text, min(pos, len(self.text)))
        msg = message or f"unsupported shell construct: {construct}"
        return ConfError(msg, path=self.path, line=line, col=col, construct=construct, hint=hint)


class Lexer:
    """Turns the text into a flat token list: (kind, value, pos)."""

    def __init__(self, src: _Src):
        self.src = src
        self.s = src.text
        self.n = len(self.s)
        self.depth = 0

    # -- words -------------------------------------------------------------------
    @staticmethod
    def _add(parts: list, text: str, quoted: bool) -> None:
        if not text and not quoted:
            return
        if parts and parts[-1][0] == LIT and parts[-1][2] == quoted:
            parts[-1] = (LIT, parts[-1][1] + text, quoted)
        else:
            parts.append((LIT, text, quoted))

    def _squote(self, i: int, parts: list) -> int:
        end = self.s.find("'", i + 1)
        if end < 0:
            raise self.src.error(i, "unterminated single quote", "unterminated single quote",
                                 hint="close the quote")
        self._add(parts, self.s[i + 1:end], True)
        return end + 1

    def _backslash(self, i: int, parts: list) -> int:
        s = self.s
        if i + 1 >= self.n:
            self._add(parts, "\\", True)
            return i + 1
        if s[i + 1] == "\n":       # line continuation
            return i + 2
        self._add(parts, s[i + 1], True)
        return i + 2

    def _dquote(self, i: int, parts: list) -> int:
        s, n = self.s, self.n
        start = i
        i += 1
        self._add(parts, "", True)   # "" is an (empty) quoted word
        while True:
            if i >= n:
                raise self.src.error(start, "unterminated double quote",
                                     "unterminated double quote", hint="close the quote")
            c = s[i]
            if c == '"':
                return i + 1
            m = _DQ_PLAIN.match(s, i)
            if m:
                self._add(parts, m.group(), True)
                i = m.end()
                continue
            if c == "\\":
                nxt = s[i + 1] if i + 1 < n else ""
                if nxt == "\n":
                    i += 2
                elif nxt in ('$', '`', '"', '\\'):
                    self._add(parts, nxt, True)
                    i += 2
                else:
                    self._add(parts, "\\", True)
                    i += 1
            elif c == "$":
                i = self._dollar(i, parts, True)
            else:  # backtick
                raise self.src.error(i, "command substitution `...`")

    def _dollar(self, i: int, parts: list, quoted: bool) -> int:
        s, n = self.s, self.n
        nxt = s[i + 1] if i + 1 < n else ""
        if nxt == "{":
            return self._brace(i, parts, quoted)
        if nxt == "(":
            if i + 2 < n and s[i + 2] == "(":
                raise self.src.error(i, "arithmetic expansion $((...))")
            raise self.src.error(i, "command substitution $(...)")
        if nxt == "[":
            raise self.src.error(i, "arithmetic expansion $[...]")
        m = _NAME.match(s, i + 1)
        if m:
            parts.append((PARAM, m.group(), None, None, quoted))
            return m.end()
        if nxt and (nxt.isdigit() or nxt in "@*#?$!-"):
            raise self.src.error(i, f"special parameter ${nxt}")
        if nxt == "'" and not quoted:
            raise self.src.error(i, "ANSI-C quoting $'...'")
        if nxt == '"' and not quoted:
            raise self.src.error(i, 'locale quoting $"..."')
        self._add(parts, "$", quoted)
        return i + 1

    def _arg(self, i: int, dq: bool, pattern: bool) -> Tuple[tuple, int]:
        """The word inside ${X op word}; ends at '}' (or '/' for a pattern)."""
        s, n = self.s, self.n
        parts: list = []
        plain = (_PAT_PLAIN_DQ if dq else _PAT_PLAIN) if pattern else (_ARG_PLAIN_DQ if dq else _ARG_PLAIN)
        while i < n:
            c = s[i]
            if c == "}" or (pattern and c == "/"):
                return tuple(parts), i
            m = plain.match(s, i)
            if m:
                self._add(parts, m.group(), False)
                i = m.end()
            elif c == "'":
                i = self._squote(i, parts)
            elif c == '"':
                i = self._dquote(i, parts)
            elif c == "\\":
                i = self._backslash(i, parts)
            elif c == "$":
                i = self._dollar(i, parts, False)
            else:
                raise self.src.error(i, "command substitution `...`")
        return tuple(parts), i

    def _brace(self, i: int, parts: list, quoted: bool) -> int:
        s, n = self.s, self.n
        start = i
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.src.error(i, "nesting too deep",
                                 f"${{...}} nested deeper than {MAX_NESTING} levels",
                                 hint="simplify the expression")
        j = i + 2
        c = s[j] if j < n else ""
        if c == "#":
            m = _NAME.match(s, j + 1)
            if m and m.end() < n and s[m.end()] == "}":
                parts.append((PARAM, m.group(), "len", None, quoted))
                self.depth -= 1
                return m.end() + 1
            if m and m.end() < n and s[m.end()] == "[":
                raise self.src.error(start, "array ${#X[...]}")
            raise self.src.error(start, "special parameter ${#...}")
        if c == "!":
            raise self.src.error(start, "indirect expansion ${!X}")
        m = _NAME.match(s, j)
        if not m:
            if c and (c.isdigit() or c in "@*?$-"):
                raise self.src.error(start, f"special parameter ${{{c}...}}")
            raise self.src.error(start, "bad substitution", "bad substitution '${'",
                                 hint="use ${NAME} or ${NAME:-default}")
        name = m.group()
        k = m.end()
        if k >= n:
            raise self.src.error(start, "unterminated ${", "unterminated '${'",
                                 hint="close it with '}'")
        c = s[k] if k < n else "\0"        # sentinel: '' would be "in" every string
        c2 = s[k + 1] if k + 1 < n else "\0"
        if c == "}":
            parts.append((PARAM, name, None, None, quoted))
            self.depth -= 1
            return k + 1
        if c == "[":
            raise self.src.error(start, "array ${X[...]}")
        if c == ":":
            if c2 in "-+":
                op, k = ":" + c2, k + 2
            elif c2 == "=":
                raise self.src.error(start, "assign-default ${X:=...}")
            elif c2 == "?":
                raise self.src.error(start, "error-if-unset ${X:?...}")
            else:
                raise self.src.error(start, "substring ${X:offset}")
        elif c in "-+":
            op, k = c, k + 1
        elif c == "=":
            raise self.src.error(start, "assign-default ${X=...}")
        elif c == "?":
            raise self.src.error(start, "error-if-unset ${X?...}")
        elif c in "#%":
            op = c + c if c2 == c else c
            k += len(op)
        elif c == "/":
            op = "/" + c2 if c2 in "/#%" else "/"
            k += len(op)
        elif c in "^,":
            raise self.src.error(start, f"case modification ${{X{c}...}}")
        elif c == "@":
            raise self.src.error(start, "transformation ${X@...}")
        else:
            raise self.src.error(start, "bad substitution", f"bad substitution in ${{{name}...}}",
                                 hint="use ${NAME}, ${NAME:-default}, ${NAME#pattern} or ${NAME/a/b}")
        if op[0] == "/":
            pat, k = self._arg(k, quoted, True)
            rep: tuple = ()
            if k < n and s[k] == "/":
                rep, k = self._arg(k + 1, quoted, False)
            arg: object = (pat, rep)
        else:
            arg, k = self._arg(k, quoted, False)
        if k >= n:
            raise self.src.error(start, "unterminated ${", "unterminated '${'",
                                 hint="close it with '}'")
        parts.append((PARAM, name, op, arg, quoted))
        self.depth -= 1
        return k + 1

    def _word(self, i: int) -> Tuple[tuple, int]:
        s, n = self.s, self.n
        parts: list = []
        while i < n:
            m = _PLAIN.match(s, i)
            if m:
                self._add(parts, m.group(), False)
                i = m.end()
                continue
            c = s[i]
            if c == "'":
                i = self._squote(i, parts)
            elif c == '"':
                i = self._dquote(i, parts)
            elif c == "\\":
                if i + 1 < n and s[i + 1] == "\n":
                    i += 2
                    continue
                i = self._backslash(i, parts)
            elif c == "$":
                i = self._dollar(i, parts, False)
            elif c == "`":
                raise self.src.error(i, "command substitution `...`")
            else:          # blank or operator character ends the word
                break
        return tuple(parts), i

    # -- token stream -----------------------------------------------------------
    def tokens(self) -> list:
        s, n = self.s, self.n
        out: list = []
        append = out.append
        i = 0
        fast = _FAST.match
        while True:
            m = fast(s, i)
            if m:
                kind = m.lastgroup
                if kind == "skip":
                    if out and out[-1][0] != _NL:
                        append((_NL, None, i))
                elif kind == "asg":
                    v = m.group("av")
                    if v is not None:
                        word = ((LIT, v, False),) if v else ()
                    else:
                        v = m.group("ad")
                        word = ((LIT, v if v is not None else m.group("aq"), True),)
                    append((_A, (m.group("an"), False, word), i))
                elif kind == "asgp":
                    quoted = bool(m.group("pq"))
                    if m.group("pop"):
                        d = m.group("pd")
                        param = (PARAM, m.group("pn"), ":-", ((LIT, d, False),) if d else (), quoted)
                    else:
                        param = (PARAM, m.group("pn") or m.group("pn2"), None, None, quoted)
                    word = ((LIT, "", True), param) if quoted else (param,)
                    append((_A, (m.group("pa"), False, word), i))
                elif kind == "word":
                    append((_W, ((LIT, m.group(), False),), i))
                elif kind == "op":
                    append((_O, m.group(), i))
                i = m.end()
                continue
            m = _SKIP.match(s, i)
            if m:
                i = m.end()
            if i >= n:
                break
            c = s[i]
            if c == "\n":
                append((_NL, None, i))
                i += 1
            elif c == "#":
                i = _COMMENT_END.match(s, i).end()
            elif c in ";&|()<>":
                if c in "<>" and i + 1 < n and s[i + 1] == "(":
                    raise self.src.error(i, f"process substitution {c}(...)")
                op = _OPS.match(s, i).group()
                if op not in _OK_OPS:
                    raise self.src.error(i, _BAD_OPS.get(op, f"redirection '{op}'"))
                append((_O, op, i))
                i += len(op)
            else:
                m = _ASSIGN_START.match(s, i)
                if m:
                    j = m.end()
                    if j < n and s[j] == "(":
                        raise self.src.error(i, "array assignment X=(...)")
                    word, k = self._word(j)
                    append((_A, (m.group(1), bool(m.group(2)), word), i))
                    i = k
                    continue
                if _ARRAY_ASSIGN.match(s, i):
                    raise self.src.error(i, "array element assignment X[i]=...")
                word, k = self._word(i)
                if k == i:   # a character no word may contain (e.g. a non-ASCII blank)
                    raise self.src.error(i, "syntax error", f"unexpected character {c!r}")
                append((_W, word, i))
                i = k
        append((_EOF, None, n))
        return out


def _literal(word: tuple) -> Optional[str]:
    """The text of a word made of one unquoted literal (keywords), else None."""
    if len(word) == 1 and word[0][0] == LIT and not word[0][2]:
        return word[0][1]
    return None


def _assign_as_word(val: tuple) -> tuple:
    name, append, word = val
    head = (LIT, name + ("+=" if append else "="), False)
    if word and word[0][0] == LIT and not word[0][2]:
        return (LIT, head[1] + word[0][1], False) + word[1:]
    return (head,) + tuple(word)


class Parser:
    """Recursive descent over the token list; builds the AST documented above."""

    def __init__(self, src: _Src, tokens: list):
        self.src = src
        self.t = tokens
        self.i = 0
        self.depth = 0

    def _peek(self):
        return self.t[self.i]

    def _kw(self, tok) -> Optional[str]:
        return _literal(tok[1]) if tok[0] == _W else None

    def _skip_nl(self) -> None:
        t = self.t
        while t[self.i][0] == _NL:
            self.i += 1

    def _unexpected(self, tok, what: str = "") -> ConfError:
        kind, val, pos = tok
        if kind == _EOF:
            return self.src.error(pos, "syntax error", f"unexpected end of file{what}",
                                  hint="close every if/fi and case/esac")
        if kind == _O:
            return self.src.error(pos, "syntax error", f"unexpected '{val}'{what}",
                                  hint="check the line's syntax")
        if kind == _NL:
            return self.src.error(pos, "syntax error", f"unexpected end of line{what}",
                                  hint="check the line's syntax")
        return self.src.error(pos, "syntax error", f"unexpected word{what}",
                              hint="check the line's syntax")

    def program(self) -> list:
        cmds = self._list(frozenset(), False)
        tok = self._peek()
        if tok[0] != _EOF:
            raise self._unexpected(tok)
        return cmds

    def _list(self, ends: frozenset, dsemi: bool) -> list:
        """Commands up to a terminating keyword in `ends` (or ';;' when dsemi)."""
        cmds = []
        t = self.t
        while True:
            i = self.i
            while t[i][0] == _NL:
                i += 1
            tok = t[i]
            kind = tok[0]
            if kind == _A:
                # fast path: one assignment alone on its line (most of a conf)
                nk, nv, _ = t[i + 1]
                if nk == _NL or (nk == _O and nv == ";"):
                    self._no_tilde(tok)
                    cmds.append((ASSIGN, tok[2], [tok[1]]))
                    self.i = i + 2
                    continue
            self.i = i
            if kind == _EOF:
                return cmds
            if kind == _O and tok[1] == ";;" and dsemi:
                return cmds
            if kind == _W and self._kw(tok) in ends:
                return cmds
            cmds.append(self._andor())
            tok = self._peek()
            if tok[0] == _NL or (tok[0] == _O and tok[1] == ";"):
                self.i += 1
            elif tok[0] == _EOF or (tok[0] == _O and tok[1] == ";;" and dsemi):
                pass
            else:
                raise self._unexpected(tok, " after a command")

    def _andor(self):
        pos = self._peek()[2]
        first = self._pipeline()
        rest = []
        while True:
            tok = self._peek()
            if tok[0] == _O and tok[1] in ("&&", "||"):
                self.i += 1
                self._skip_nl()
                rest.append((tok[1], self._pipeline()))
            else:
                break
        return (ANDOR, pos, first, rest) if rest else first

    def _pipeline(self):
        tok = self._peek()
        if tok[0] == _W and self._kw(tok) == "!":
            self.i += 1
            cmd = (NOT, tok[2], self._command())
        else:
            cmd = self._command()
        tok = self._peek()
        if tok[0] == _O and tok[1] == "|":
            raise self.src.error(tok[2], "pipe '|'")
        return cmd

    def _command(self):
        tok = self._peek()
        kind, val, pos = tok
        if kind == _A:
            assigns = []
            while self._peek()[0] == _A:
                self._no_tilde(self._peek())
                assigns.append(self._peek()[1])
                self.i += 1
            nxt = self._peek()
            if nxt[0] == _W:
                raise self._command_word(nxt)
            return (ASSIGN, pos, assigns)
        if kind == _W:
            kw = _literal(val)
            if kw == "if":
                return self._if()
            if kw == "case":
                return self._case()
            if kw == "[":
                return self._test("]")
            if kw == "test":
                return self._test(None)
            raise self._command_word(tok)
        if kind == _O and val == "(":
            if self.t[self.i + 1][0] == _O and self.t[self.i + 1][1] == "(":
                raise self.src.error(pos, "arithmetic command ((...))")
            raise self.src.error(pos, "subshell (...)")
        raise self._unexpected(tok)

    def _no_tilde(self, tok) -> None:
        """bash expands a leading unquoted ~ to a home directory; the reader has none."""
        word = tok[1][2]
        if word and word[0][0] == LIT and not word[0][2] and word[0][1].startswith("~"):
            name = tok[1][0]
            raise self.src.error(tok[2] + len(name) + 1, "tilde expansion ~",
                                 hint="write the absolute path (or quote the ~)")

    def _command_word(self, tok) -> ConfError:
        word, pos = tok[1], tok[2]
        kw = _literal(word)
        nxt = self.t[self.i + 1] if self.i + 1 < len(self.t) else (_EOF, None, pos)
        if kw is not None:
            if kw in _BUILTINS:
                return self.src.error(pos, _BUILTINS[kw])
            if kw in _RESERVED_UNEXPECTED:
                return self.src.error(pos, "syntax error", f"unexpected '{kw}'",
                                      hint="check if/then/fi and case/in/esac pairs")
            if nxt[0] == _O and nxt[1] == "(" and _NAME.fullmatch(kw):
                return self.src.error(pos, "function definition")
            shown = kw if len(kw) <= 40 else kw[:40] + "..."
            if not shown.isprintable():        # never echo control characters to a terminal
                shown = repr(shown)[1:-1]
            return self.src.error(pos, f"command word '{shown}'",
                                  f"command word '{shown}' is not allowed: conf files are never executed")
        return self.src.error(pos, "command word", "command word is not allowed: "
                              "conf files are never executed")

    def _enter(self, pos: int) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.src.error(pos, "nesting too deep",
                                 f"if/case nested deeper than {MAX_NESTING} levels",
                                 hint="simplify the conf")

    def _expect_kw(self, kw: str) -> None:
        tok = self._peek()
        if tok[0] != _W or self._kw(tok) != kw:
            raise self._unexpected(tok, f" (expected '{kw}')")
        self.i += 1

    def _test(self, close: Optional[str]):
        pos = self._peek()[2]
        self.i += 1
        words = []
        while True:
            kind, val, p = self._peek()
            if kind == _W:
                if close is not None and _literal(val) == close:
                    self.i += 1
                    return (TEST, pos, words)
                words.append(val)
            elif kind == _A:
                words.append(_assign_as_word(val))
            else:
                if close is None:
                    return (TEST, pos, words)
                if kind == _O and val in ("(", ")"):
                    raise self.src.error(p, "parentheses in [ ... ] test")
                raise self.src.error(pos, "syntax error", "'[' without matching ']'",
                                     hint="close the test with ' ]'")
            self.i += 1

    def _if(self):
        pos = self._peek()[2]
        self._enter(pos)
        self.i += 1
        branches = []
        else_body = None
        while True:
            cond = self._list(frozenset({"then"}), False)
            if not cond:
                raise self._unexpected(self._peek(), " (empty if condition)")
            self._expect_kw("then")
            body = self._list(frozenset({"elif", "else", "fi"}), False)
            branches.append((cond, body))
            kw = self._kw(self._peek())
            self.i += 1
            if kw == "elif":
                continue
            if kw == "else":
                else_body = self._list(frozenset({"fi"}), False)
                self._expect_kw("fi")
            elif kw != "fi":
                self.i -= 1
                raise self._unexpected(self._peek(), " (expected 'fi')")
            break
        self.depth -= 1
        return (IF, pos, branches, else_body)

    def _case_word(self, what: str):
        kind, val, pos = self._peek()
        if kind == _W:
            self.i += 1
            return val
        if kind == _A:
            self.i += 1
            return _assign_as_word(val)
        raise self._unexpected(self._peek(), f" (expected {what})")

    def _case(self):
        pos = self._peek()[2]
        self._enter(pos)
        self.i += 1
        word = self._case_word("a word after 'case'")
        self._skip_nl()
        self._expect_kw("in")
        arms = []
        while True:
            self._skip_nl()
            tok = self._peek()
            if tok[0] == _W and self._kw(tok) == "esac":
                self.i += 1
                break
            if tok[0] == _EOF:
                raise self._unexpected(tok, " (missing 'esac')")
            if tok[0] == _O and tok[1] == "(":
                self.i += 1
            pats = [self._case_word("a case pattern")]
            while self._peek()[0] == _O and self._peek()[1] == "|":
                self.i += 1
                pats.append(self._case_word("a case pattern"))
            tok = self._peek()
            if not (tok[0] == _O and tok[1] == ")"):
                raise self._unexpected(tok, " (expected ')' after case pattern)")
            self.i += 1
            body = self._list(frozenset({"esac"}), True)
            arms.append((pats, body))
            tok = self._peek()
            if tok[0] == _O and tok[1] == ";;":
                self.i += 1
            elif tok[0] == _EOF:
                raise self._unexpected(tok, " (missing 'esac')")
        self.depth -= 1
        return (CASE, pos, word, arms)


# Line -> its tokens (positions relative to the line).  Generated confs share most of
# their lines (the ctys template), so lexing a conf is mostly dictionary look-ups.
_LINE_TOKENS: dict = {}
_LINE_CACHE_MAX = 8192
_LINE_CACHE_WIDTH = 512
_NO_LINE_TOKENS: tuple = ()


def _line_tokens(line: str):
    """Tokens of one line lexed alone, or None when the line is not self-contained
    (multi-line quote, continuation, error): then the whole text is lexed instead."""
    hit = _LINE_TOKENS.get(line)
    if hit is not None:
        return hit
    if line.endswith("\\"):
        return None
    try:
        toks = Lexer(_Src(line, "")).tokens()
    except ConfError:
        return None
    hit = tuple(t for t in toks if t[0] != _NL and t[0] != _EOF)
    if len(line) <= _LINE_CACHE_WIDTH:      # bound the cache's memory
        if len(_LINE_TOKENS) >= _LINE_CACHE_MAX:
            _LINE_TOKENS.clear()
        _LINE_TOKENS[line] = hit
    return hit


# A line holding more than blanks/comment (ASCII blanks only, exactly as the lexer skips).
_CODE_LINE = re.compile(r"^[ \t\r\f\v]*[^# \t\r\f\v\n].*", re.M)


def tokenize(src: _Src) -> list:
    """Token list of a whole conf, assembled from per-line tokens when every line is
    self-contained (identical tokens up to runs of newlines, see tests).  Blank and
    comment lines are skipped by one regex scan."""
    out: list = []
    append = out.append
    text = src.text
    for m in _CODE_LINE.finditer(text):
        line = m.group()
        toks = _LINE_TOKENS.get(line)
        if toks is None:
            toks = _line_tokens(line)
            if toks is None:
                return Lexer(src).tokens()
        pos = m.start()
        if toks:
            if pos:
                for kind, value, rel in toks:
                    append((kind, value, rel + pos))
            else:
                out.extend(toks)
            append((_NL, None, m.end()))
    append((_EOF, None, len(text)))
    return out


def parse(text: str, path: str) -> list:
    """Text of a conf -> list of AST commands (raises ConfError)."""
    src = _Src(text, path)
    return Parser(src, tokenize(src)).program()
