"""Tokenizer + parser for the shell subset used by ctys conf files (conf-format.md §3.3).

The result is a small AST of tuples; nothing here (or anywhere in this package) runs a
command.  Every construct outside the subset raises ConfError with file, line, column and
the construct's name, so a user sees exactly what to rewrite.

AST
  word  = tuple of parts; part = (LIT, text, quoted) | (PARAM, name, op, arg, quoted)
          quoted: True | False | None (_NULL: '' or "" inside an unquoted ${X op word})
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

from ctys_libvirt.conf.keys import key_record
from ctys_libvirt.errors import ConfError
from ctys_libvirt.util.memo import Memo

LIT, PARAM = 0, 1
# An empty '' or "" inside an unquoted ${X op word}: an empty part that never merges with
# its neighbours (bash leaves a marker in a case word there, see evaluate._null_in_case).
_NULL = (LIT, "", None)
ASSIGN, TEST, ANDOR, NOT, CASE, IF = range(6)

MAX_NESTING = 32          # if/case nesting and ${...} nesting

_HINT = "rewrite it as plain NAME=value assignments"

# Token kinds
_W, _A, _O, _NL, _EOF = range(5)

_SKIP = re.compile(r"(?:[ \t]+|\\\n)+")
_COMMENT_END = re.compile(r"[^\n]*")
_PLAIN = re.compile(r"[^\s;&|()<>'\"\\$`]+")
_DQ_PLAIN = re.compile(r'[^"\\$`]+')
_ARG_PLAIN = re.compile(r"[^}'\"\\$`]+")
_ARG_PLAIN_DQ = re.compile(r"[^}\"'\\$`]+")
_PAT_PLAIN = re.compile(r"[^}/'\"\\$`]+")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ASSIGN_START = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(\+?)=")
_ARRAY_ASSIGN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\[[^\]\s]*\]\+?=")
_OPS = re.compile(r";;&|;;|;&|&&|\|\||\|&|<<<|<<-|<<|>>|&>>|&>|>&|<&|<>|>\||[;&|()<>]")

# Fast path for the common tokens (one regex call each): runs of blank/comment lines,
# blanks, NAME=value with a literal value, plain literal words.  Anything else goes
# through the detailed scanner below, which produces identical tokens.
_FAST = re.compile(r"""
 (?P<skip>(?:[ \t]*(?:\#[^\n]*)?\n)+)
|(?P<ws>[ \t]+)
|(?P<asg>(?P<an>[A-Za-z_][A-Za-z0-9_]*)=
   (?:(?P<av>[^\s;&|()<>'"\\$`]*)|"(?P<ad>[^"\\$`]*)"|'(?P<aq>[^']*)')
   (?=[\s;&|)<>]|\Z))
|(?P<asgp>(?P<pa>[A-Za-z_][A-Za-z0-9_]*)=(?P<pq>"?)
   \$(?:\{(?P<pn>[A-Za-z_][A-Za-z0-9_]*)(?P<pop>:-(?P<pd>(?!~)[^}'"\\$`:]*(?::(?!~)[^}'"\\$`:]*)*))?\}|(?P<pn2>[A-Za-z_][A-Za-z0-9_]*))
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


def _tilde(word, assign: bool) -> bool:
    """An unquoted ~ that bash would expand to a home directory (the reader has none):
    at the start of the word or after an unquoted ':'; outside assignments also after
    '=' (bash expands assignment-like arguments too).  Conservative on purpose."""
    for p in word:
        t = p[1]                      # a PARAM's name holds no '~'
        if "~" in t and p[0] == LIT and not p[2]:
            if (p is word[0] and t[0] == "~") or ":~" in t or (not assign and "=~" in t):
                return True
    return False


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

    def tilde_error(self, pos: int) -> ConfError:
        """bash puts a home directory where the word has an unquoted ~ (see _tilde)."""
        return self.error(pos, "tilde expansion ~", hint="write the absolute path (or quote the ~)")


class Lexer:
    """Turns the text into a flat token list: (kind, value, pos)."""

    def __init__(self, src: _Src):
        self.src = src
        self.s = src.text
        self.n = len(self.s)
        self.depth = 0
        self.in_arg = 0          # inside an unquoted ${X op word}: '' and "" become _NULL

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
        if end == i + 1 and self.in_arg:
            parts.append(_NULL)
        else:
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

    def _dquote(self, i: int, parts: list, nested: bool = False) -> int:
        s, n = self.s, self.n
        start = i
        if self.in_arg and s.startswith('""', i):
            parts.append(_NULL)
            return i + 2
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
                elif nested:
                    # inside "${X:-"..."}" bash drops such a backslash (and sometimes more)
                    raise self.src.error(i, 'backslash in "..." inside "${X:-...}"',
                                         hint="write the backslash outside the inner quotes")
                else:
                    self._add(parts, "\\", True)
                    i += 1
            elif c == "$" and nested and i + 1 < n and s[i + 1] not in '" \t\n':
                # "${X:-"$A"b}" loses the b in bash
                raise self.src.error(i, 'expansion in "..." inside "${X:-...}"',
                                     hint='drop the inner quotes: "${X:-$A}"')
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
            j = m.end()
            if s.startswith("\\\n", j):
                k = j
                while s.startswith("\\\n", k):
                    k += 2
                if k < n and (s[k].isalnum() or s[k] == "_"):
                    # bash joins the lines first: the name goes on ($A\<newline>B is $AB)
                    raise self.src.error(i, "line continuation inside $NAME",
                                         hint="write the name on one line")
            parts.append((PARAM, m.group(), None, None, quoted))
            return j
        if nxt == "\\" and s.startswith("\n", i + 2):
            raise self.src.error(i, "line continuation after '$'",
                                 hint="write the expansion on one line")
        if nxt and (nxt.isdigit() or nxt in "@*#?$!-"):
            raise self.src.error(i, f"special parameter ${nxt}")
        if nxt == "'" and not quoted:
            raise self.src.error(i, "ANSI-C quoting $'...'")
        if nxt == '"' and not quoted:
            raise self.src.error(i, 'locale quoting $"..."')
        self._add(parts, "$", quoted)
        return i + 1

    def _arg(self, i: int, dq: bool, pattern: bool) -> Tuple[tuple, int]:
        """The word inside ${X op word}; ends at '}' (or '/' for a ${X/pattern/...}).
        `dq`: the word of "${X:-word}" (and - :+ +), which bash reads like the rest of
        the double-quoted text ('...' literal, backslash special only before $ ` " \\ }
        and newline); a pattern or replacement reads as if unquoted even inside "..."
        (quotes and backslashes work), so callers pass dq=False for those."""
        if dq:
            return self._arg_dq(i)
        s, n = self.s, self.n
        parts: list = []
        plain = _PAT_PLAIN if pattern else _ARG_PLAIN
        self.in_arg += 1
        while i < n:
            c = s[i]
            if c == "}" or (pattern and c == "/"):
                self.in_arg -= 1
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

    def _arg_dq(self, i: int) -> Tuple[tuple, int]:
        """The word of "${X:-word}" (and - :+ +): double-quote rules up to '}'."""
        s, n = self.s, self.n
        parts: list = []
        in_sq = False
        name_end = -1                 # end of the last unbraced $NAME
        while i < n:
            c = s[i]
            if c == "}":
                return tuple(parts), i
            m = _ARG_PLAIN_DQ.match(s, i)
            if m:
                self._add(parts, m.group(), True)
                i = m.end()
            elif c == '"':
                if i == name_end:     # bash drops the whole word: "${X:+$A"b"}" is ''
                    raise self.src.error(i, '"..." after $NAME inside "${X:-...}"',
                                         hint="write ${NAME} instead of $NAME")
                i = self._dquote(i, parts, True)
            elif c == "'":
                # a literal quote, but bash skips a '...' span when it looks for the '}'
                end = s.find("'", i + 1)
                if in_sq:
                    in_sq = False
                elif (end < 0 or "}" in s[i + 1:end] or '"' in s[i + 1:end]
                      or s[end - 1] == "\\"):
                    raise self.src.error(i, "single quote in \"${X:-...}\"",
                                         "'...' holding '}', '\"' or a final '\\' (or "
                                         "unterminated) inside "
                                         "\"${X:-...}\"", hint="use \\} or \\\" instead")
                else:
                    in_sq = True
                self._add(parts, "'", True)
                i += 1
            elif c == "\\":
                nxt = s[i + 1] if i + 1 < n else ""
                if nxt == "\n":
                    i += 2
                elif nxt in ('$', '`', '"', '\\', '}'):
                    self._add(parts, nxt, True)
                    i += 2
                else:
                    self._add(parts, "\\" + nxt, True)
                    i += 1 + len(nxt)
            elif c == "$":
                nxt = s[i + 1] if i + 1 < n else ""
                if nxt == "'":          # bash decodes these even inside "${X:-...}"
                    raise self.src.error(i, "ANSI-C quoting $'...'")
                if nxt == '"':
                    raise self.src.error(i, 'locale quoting $"..."')
                j = self._dollar(i, parts, True)
                if nxt != "{" and parts and parts[-1][0] == PARAM:
                    name_end = j
                i = j
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
            if op in ("/", "//") and k < n and s[k] == "/":
                # bash: a pattern never starts with the separator (${X///} removes '/')
                pat, k = self._arg(k + 1, False, True)
                pat = ((LIT, "/", False),) + pat
            else:
                pat, k = self._arg(k, False, True)
            rep: tuple = ()
            if k < n and s[k] == "/":
                rep, k = self._arg(k + 1, False, False)
                for p in rep:
                    if p[0] == LIT and not p[2] and "&" in p[1]:
                        # bash >= 5.2 (patsub_replacement) puts the match there, older bash a '&'
                        raise self.src.error(start, "'&' in ${X/pattern/replacement}",
                                             hint="quote it ('&') or use a variable")
            if _tilde(pat, False) or _tilde(rep, False):
                raise self.src.tilde_error(start)
            arg: object = (pat, rep)
        else:
            arg, k = self._arg(k, quoted and op[0] not in "#%", False)
            if (not quoted or op[0] in "#%") and _tilde(arg, False):
                # bash expands this ~ to a home directory (not in "${X:-~}"); the reader has none
                raise self.src.tilde_error(start)
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
                        param = (PARAM, m.group("pn"), ":-", ((LIT, d, quoted),) if d else (), quoted)
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
                    if c in "\r\f\v":      # bash: part of a word, not a blank
                        raise self.src.error(i, "syntax error", f"unexpected character {c!r}",
                                             hint="remove it (a CR: convert the line ends)")
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
        return ((LIT, head[1] + word[0][1], False),) + tuple(word[1:])
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
        """bash expands an unquoted ~ at the start of a value or after ':' to a home
        directory; the reader has none."""
        if _tilde(tok[1][2], True):
            raise self.src.tilde_error(tok[2] + len(tok[1][0]) + 1)   # at the value

    def _check_arg(self, word, pos: int, test: bool):
        """A word of [ ... ] (test) or of case: bash would tilde-expand it, and in a test
        also brace- and pathname-expand it (against the conf's directory)."""
        if _tilde(word, False):
            raise self.src.tilde_error(pos)
        if test:
            for p in word:
                if p[0] == LIT and not p[2]:
                    t = p[1]
                    if "*" in t or "?" in t or "[" in t:
                        raise self.src.error(pos, "pathname expansion in [ ... ]",
                                             "unquoted glob character in a [ ... ] test "
                                             "(bash would match file names)",
                                             hint="quote the word")
                    if "{" in t:
                        raise self.src.error(pos, "brace expansion in [ ... ]",
                                             "unquoted '{' in a [ ... ] test "
                                             "(bash may brace-expand it)",
                                             hint="quote the word")
        return word

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
                words.append(self._check_arg(val, p, True))
            elif kind == _A:
                words.append(self._check_arg(_assign_as_word(val), p, True))
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
            if not body:            # bash: syntax error
                raise self._unexpected(self._peek(), " (empty 'then' branch)")
            branches.append((cond, body))
            kw = self._kw(self._peek())
            self.i += 1
            if kw == "elif":
                continue
            if kw == "else":
                else_body = self._list(frozenset({"fi"}), False)
                if not else_body:   # bash: syntax error
                    raise self._unexpected(self._peek(), " (empty 'else' branch)")
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
            return self._check_arg(val, pos, False)
        if kind == _A:
            self.i += 1
            return self._check_arg(_assign_as_word(val), pos, False)
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


def _line_tokens(line: str):
    """Tokens of one line lexed alone, or None when the line is not self-contained
    (multi-line quote, continuation, error)."""
    if line.endswith("\\"):
        return None
    try:
        toks = Lexer(_Src(line, "")).tokens()
    except ConfError:
        return None
    return tuple(t for t in toks if t[0] != _NL and t[0] != _EOF)


# A line holding more than blanks/comment (ASCII blanks only, exactly as the lexer skips).
_CODE_LINE = re.compile(r"^[ \t]*[^# \t\n].*", re.M)


def tokenize(src: _Src) -> list:
    """Token list of a whole conf."""
    return Lexer(src).tokens()


def parse(text: str, path: str) -> list:
    """Text of a conf -> list of AST commands (raises ConfError)."""
    src = _Src(text, path)
    return Parser(src, tokenize(src)).program()


# -- compiled programs: per-line-group cache -------------------------------------------
#
# A conf is a sequence of top-level commands.  Split at the ends of the lines where a
# top-level command ends, it is a sequence of *groups* of whole lines, and each group
# parsed alone gives exactly the commands the whole text gives for those lines (the parser
# is deterministic with one token of look-ahead and a newline ends a top-level command),
# with positions relative to the group's first line.  Generated confs share most groups
# verbatim, so a conf costs one dict look-up per code line plus the parse of the few lines
# that differ.  Only groups verified by parsing them alone are ever cached as complete;
# anything unusual (syntax errors, lines that are not self-contained) falls back to
# parse(), which raises the canonical error.

_PARTIAL = object()              # the text is a proper prefix of a multi-line group
_NOCODE = object()               # a blank or comment line without a '#@#' key
_CODE = object()                 # a code line that is no group by itself
# code text of whole lines -> compiled group | _PARTIAL; other lines -> _NOCODE | key
# record (scan_conf).  Longer groups are parsed, never remembered.
_GROUPS = Memo("conf line groups", max_entries=16384, max_chars=2_000_000, max_key=4096)
_store = _GROUPS.put
_lookup = _GROUPS.get


# A cached group is compiled once into (kind, name, a, b, cmds) so that the evaluator
# runs the common one-assignment groups without walking the AST:
#   G_LIT:   name=literal                  a = the literal
#   G_PARAM: name=${a} / name=${a:-b}      b = the default ("" for ${a} and ${a:-})
#   G_WORD:  name=<literals, ${P}, ${P:-literal} concatenated>
#                                          a = ((literal, None) | (P, default), ...)
#   G_CMDS:  anything else                 cmds = the AST commands
G_LIT, G_PARAM, G_WORD, G_CMDS = range(4)


def _simple_part(p) -> Optional[tuple]:
    """(literal, None) | (param name, default) for a word part the compiled forms cover."""
    if p[0] == LIT:
        return (p[1], None)
    op, arg = p[2], p[3]
    if op is None or (op == ":-" and not arg):
        return (p[1], "")
    if op == ":-" and len(arg) == 1 and arg[0][0] == LIT:
        return (p[1], arg[0][1])
    return None


def _compiled(cmds: list) -> tuple:
    if len(cmds) == 1 and cmds[0][0] == ASSIGN and len(cmds[0][2]) == 1:
        name, append, word = cmds[0][2][0]
        if not append and word:
            parts = [_simple_part(p) for p in word]
            if None not in parts:
                if len(parts) == 1:
                    a, b = parts[0]
                    return (G_LIT, name, a, None, cmds) if b is None else (G_PARAM, name, a, b, cmds)
                return (G_WORD, name, tuple(parts), None, cmds)
    return (G_CMDS, None, None, None, cmds)


def _single_line(line: str):
    """Commands of a line that is one assignment (`X=word` or `X=word;`), else None."""
    toks = _line_tokens(line)
    if toks is None or not toks or toks[0][0] != _A:
        return None
    if len(toks) != 1 and not (len(toks) == 2 and toks[1][0] == _O and toks[1][1] == ";"):
        return None
    tok = toks[0]
    if _tilde(tok[1][2], True):
        return None                      # tilde: the full parse reports it
    return _compiled([(ASSIGN, tok[2], [tok[1]])])


class _GroupParser(Parser):
    def top_groups(self) -> list:
        """(first token position, end position) of each group of a whole program; same
        grammar as _list at the top level."""
        t = self.t
        out = []
        first = None
        while True:
            i = self.i
            while t[i][0] == _NL:
                i += 1
            self.i = i
            tok = t[i]
            if tok[0] == _EOF:
                return out
            if first is None:
                first = tok[2]
            self._andor()
            tok = t[self.i]
            if tok[0] == _O and tok[1] == ";":
                self.i += 1
                tok = t[self.i]
                if tok[0] not in (_NL, _EOF):
                    continue              # next command on the same line: same group
            if tok[0] == _NL:
                self.i += 1
            elif tok[0] != _EOF:
                raise self._unexpected(tok, " after a command")
            out.append((first, tok[2]))
            first = None


def _rest_groups(text: str, start: int, path: str) -> Optional[list]:
    """Groups of text[start:] (start: a line start at the top level), caching them."""
    rest = text[start:]
    src = _Src(rest, path)
    try:
        bounds = _GroupParser(src, tokenize(src)).top_groups()
    except ConfError:
        return None
    out = []
    for first, end in bounds:
        gs = rest.rfind("\n", 0, first) + 1
        key = rest[gs:end]
        cmds = _lookup(key)
        if cmds is None or cmds is _PARTIAL or cmds is _CODE:
            try:
                cmds = _compiled(parse(key, path))
            except ConfError:
                return None
            # Cached only when a look-up can meet it (it ends where a code line ends) and
            # when its meaning cannot depend on what follows: a trailing backslash is a
            # literal at the end of the text but a line continuation before a newline.
            ends = [m.end() for m in _CODE_LINE.finditer(text, start + gs, start + end)]
            if ends and ends[-1] == start + end and not key.endswith("\\"):
                for e in ends[:-1]:
                    if _lookup(text[start + gs:e]) in (None, _CODE):
                        _store(text[start + gs:e], _PARTIAL)
                _store(key, cmds)
        out.append((start + gs, cmds))
    return out


# _CODE_LINE anchored on the newline before the line (scanning "\n" + text): a literal
# first character lets the regex engine skip from newline to newline.
_NL_CODE_LINE = re.compile(r"\n([ \t]*[^# \t\n][^\n]*)")


def compile_groups(text: str, path: str) -> list:
    """[(offset of the group's first line, compiled group (see _compiled))] of a conf;
    raises ConfError exactly as parse() does."""
    out = []
    append = out.append
    get = _lookup
    start = -1
    ntext = "\n" + text                   # offsets in ntext are text offsets + 1
    for m in _NL_CODE_LINE.finditer(ntext):
        if start < 0:
            hit = get(m.group(1))
            if hit is not None and hit is not _CODE:
                if hit is _PARTIAL:
                    start = m.start()
                else:
                    append((m.start(), hit))
                continue
            start = m.start()
            hit = _single_line(m.group(1))
            if hit is not None:
                _store(m.group(1), hit)
                append((start, hit))
                start = -1
                continue
        else:
            hit = get(ntext[start + 1:m.end()])
            if hit is not None:
                if hit is not _PARTIAL:
                    append((start, hit))
                    start = -1
                continue
        rest = _rest_groups(text, start, path)
        if rest is None:
            break
        out.extend(rest)
        return out
    else:
        if start < 0:
            return out
        rest = _rest_groups(text, start, path)
        if rest is not None:
            out.extend(rest)
            return out
    # Something unusual: the whole text as one group (parse() raises the canonical error).
    return [(0, (G_CMDS, None, None, None, parse(text, path)))]


def _is_code(line: str) -> bool:
    """`line` (no newline) holds more than blanks/comment: _CODE_LINE matches it."""
    rest = line.lstrip(" \t")
    return bool(rest) and rest[0] != "#"


# The lines scan_conf must look at: code lines and lines that may hold a '#@#' key (as
# key_record reads them: tabs inside "#@#" do not count).  Blank and comment lines are
# skipped by the regex engine; they are neither code nor keys.
def scan_conf(text: str, path: str) -> Tuple[list, list]:
    """(compile_groups(text, path), the keys.key_record of each non-code line that holds
    a '#@#' key, in file order), in one pass over the lines: a blank-line separated chunk
    or a line seen before costs one memo look-up.  Raises ConfError exactly as parse() does."""
    out: list = []
    keys: list = []
    append = out.append
    lookup = _lookup
    start = -1                      # offset of a pending multi-line group
    code = True                     # False once _rest_groups has done the rest of the code
    cpos = 0
    for chunk in text.split("\n\n"):
        fresh = start < 0 and code
        if fresh:
            hit = _chunk_lookup(chunk)
            if hit is not None:
                if hit[0]:
                    out += [(cpos + rel, grp) for rel, grp in hit[0]]
                if hit[1]:
                    keys += hit[1]
                cpos += len(chunk) + 2
                continue
            n_out, n_keys = len(out), len(keys)
        pos = cpos
        for line in chunk.split("\n"):
            end = pos + len(line)
            rec = lookup(line)
            if rec is None:
                rec = _CODE if _is_code(line) else (key_record(line) or _NOCODE)
                _store(line, rec)
            if rec is _NOCODE:
                pos = end + 1
                continue
            if rec is not _CODE and rec is not _PARTIAL and len(rec) == 3:      # key record
                keys.append(rec)
                pos = end + 1
                continue
            if code:
                # the state machine of compile_groups; rec: the line's own compiled group,
                # _PARTIAL, or _CODE (a code line without one)
                if start < 0:
                    if rec is not _CODE:
                        if rec is _PARTIAL:
                            start = pos
                        else:
                            append((pos, rec))
                        pos = end + 1
                        continue
                    hit = _single_line(line)
                    if hit is not None:
                        _store(line, hit)
                        append((pos, hit))
                        pos = end + 1
                        continue
                    start = pos
                else:
                    hit = lookup(text[start:end])
                    if hit is not None:
                        if hit is not _PARTIAL:
                            append((start, hit))
                            start = -1
                        pos = end + 1
                        continue
                rest = _rest_groups(text, start, path)
                if rest is None:
                    return [(0, (G_CMDS, None, None, None, parse(text, path)))], _keys_only(text)
                out.extend(rest)
                code = False
            pos = end + 1
        if fresh and start < 0 and code:
            # positions relative to the chunk: the same chunk recurs at other offsets
            _chunk_store(chunk, (tuple([(off - cpos, grp) for off, grp in out[n_out:]]),
                                 tuple(keys[n_keys:])))
        cpos += len(chunk) + 2
    if code and start >= 0:
        rest = _rest_groups(text, start, path)
        if rest is None:
            return [(0, (G_CMDS, None, None, None, parse(text, path)))], keys
        out.extend(rest)
    return out, keys


# A blank-line separated chunk of a conf -> (its groups, its key records): confs made from
# one template repeat whole chunks, and a hit skips the chunk's per-line loop (scan_conf
# about 2x faster on generated confs; docs/architecture.md, Caches).  Only chunks that
# start and end outside a multi-line group are stored.
_CHUNKS = Memo("conf chunks", max_entries=4096, max_chars=2_000_000, max_key=8192)
_chunk_store = _CHUNKS.put
_chunk_lookup = _CHUNKS.get


def _keys_only(text: str) -> list:
    return [r for r in (key_record(ln) for ln in text.split("\n") if not _is_code(ln)) if r]
