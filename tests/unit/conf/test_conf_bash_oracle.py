"""Differential tests: the static conf reader against real bash as the oracle.

For every program the reader ACCEPTS, bash must give the same value (or the same unset
state) for every variable.  Programs come from a hypothesis grammar of the supported
subset (README "Reading conf files", conf-format.md §3.3) with hostile literals: blanks,
quotes of each kind, backslashes, glob characters, '#', '~', '&', unicode, empty words.
Constructs whose bash value the reader does not model must be rejected (ConfError), so a
divergence is always a reader bug.

bash runs restricted (-r) with an empty environment apart from PATH=/nonexistent and a
UTF-8 locale, in a private directory, with a timeout; it sources the program (which the
reader has accepted, so it holds no command word) and prints the variables NUL-separated.
The directory holds decoy files so that an unmodelled pathname expansion shows up.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Dict, Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.confs import LABELS, example_text
from ctys_libvirt.conf import evaluate_text
from ctys_libvirt.conf.evaluate import evaluate, evaluate_groups
from ctys_libvirt.conf.shell import _Src, parse, scan_conf
from ctys_libvirt.errors import ConfError

BASH = shutil.which("bash", path="/bin:/usr/bin") or "/bin/bash"

ASSIGNABLE = ("A", "B", "C", "X", "Y", "Z")
CONTEXT = {"MYDIST": "debian", "ARCH": "x86 64", "USER": "acue",
           "CTYSWRAPPERPATH": "/vm/qemu/t 1", "QEMUBASE": "/usr/bin/qemu*"}
UNSET = ("U", "V")
COMPARED = ASSIGNABLE + tuple(CONTEXT) + UNSET
DECOYS = ("a", "ab", "b*", "x1", "[", "~", "-n", "=")     # pathname-expansion bait
HOME = "/home/oracle"


@pytest.fixture(scope="module")
def bash_dir():
    if not os.access(BASH, os.X_OK):
        pytest.skip("bash is not installed")
    d = Path(tempfile.mkdtemp(prefix="ctys-bash-oracle-"))
    for name in DECOYS:
        (d / name).write_text("")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _quote(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


def run_bash(program: str, cwd: Path, names=COMPARED,
             context: Dict[str, str] = CONTEXT) -> Dict[str, Optional[str]]:
    """Variables `names` after bash sourced `program` over `context` (None = unset).
    Fails the test on any bash diagnostic: the reader accepted the program, so bash must
    run it cleanly."""
    (cwd / "prog").write_text(program, encoding="utf-8")
    prelude = "".join(f"{k}={_quote(v)}\n" for k, v in context.items())
    show = "printf '%s\\0' " + " ".join(f'"${{{n}+S}}${{{n}-}}"' for n in names)
    script = f"shopt -u sourcepath\n{prelude}. prog\n{show}\n"
    proc = subprocess.run(
        [BASH, "--norc", "--noprofile", "-r", "-c", script], cwd=cwd,
        env={"PATH": "/nonexistent", "LC_ALL": "C.UTF-8", "HOME": HOME},
        stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 0 and not err, \
        f"bash failed on an accepted program:\n{program}\n{err}"
    fields = proc.stdout.decode("utf-8", "surrogateescape").split("\0")[:-1]
    assert len(fields) == len(names), proc.stdout
    return {n: (f[1:] if f else None) for n, f in zip(names, fields)}


def run_reader(program: str) -> Optional[Dict[str, Optional[str]]]:
    """Variables after the reader evaluated `program`, or None when it rejects it.  All
    three entry points (compiled groups, plain AST, scan_conf) must agree."""
    try:
        got = evaluate_text(program, dict(CONTEXT), "t.ctys")
    except ConfError:
        with pytest.raises(ConfError):      # every entry point rejects it
            evaluate(parse(program, "t.ctys"), dict(CONTEXT), _Src(program, "t.ctys"))
        with pytest.raises(ConfError):
            groups, _ = scan_conf(program, "t.ctys")
            evaluate_groups(groups, dict(CONTEXT), _Src(program, "t.ctys"))
        return None
    ast = evaluate(parse(program, "t.ctys"), dict(CONTEXT), _Src(program, "t.ctys"))
    groups, _ = scan_conf(program, "t.ctys")
    scanned = evaluate_groups(groups, dict(CONTEXT), _Src(program, "t.ctys"))
    want = {n: got.get(n) for n in COMPARED}
    assert {n: ast.get(n) for n in COMPARED} == want, program
    assert {n: scanned.get(n) for n in COMPARED} == want, program
    return want


def check(program: str, cwd: Path, accepted: Optional[bool] = None):
    """Compare reader and bash on `program`; `accepted` pins whether the reader must
    accept (True) or reject (False) it.  Returns the reader's variables (or None)."""
    if not program.endswith("\n"):
        program += "\n"
    ours = run_reader(program)
    if accepted is not None:
        assert (ours is not None) == accepted, program
    if ours is not None:
        theirs = run_bash(program, cwd)
        diff = {n: (ours[n], theirs[n]) for n in COMPARED if ours[n] != theirs[n]}
        assert not diff, f"reader != bash (ours, bash) for:\n{program}\n{diff}"
    return ours


# --- the grammar ----------------------------------------------------------------------

_REF = ASSIGNABLE + tuple(CONTEXT) + UNSET
_BARE = "ab" * 4 + "xX9_/.-,:@%+=!^" + "*?[]~#{}" + "äé€"
_BARE_TEST = "ab" * 4 + "xX9_/.-,:@%+=!^]}#" + "äé€"     # no glob/brace/tilde: rejected
_ANY = _BARE + " \t\n'\"\\$`;&|()<>}"
_SQ = "ab *?[]~#\\\"$`{}&;|\t\n/" + "äé"
_DQ = "ab *?[]~#'{}&;|\t/:" + "äé"


def _chars(alphabet: str, max_size: int = 4):
    return st.text(alphabet=alphabet, max_size=max_size)


@st.composite
def _expansion(draw, depth: int, dq: bool):
    name = draw(st.sampled_from(_REF))
    kind = draw(st.sampled_from(["$", "{}", "len", "word", "word", "pat", "sub"]
                                if depth > 0 else ["$", "{}", "len"]))
    if kind == "$":
        return "$" + name
    if kind == "{}":
        return "${" + name + "}"
    if kind == "len":
        return "${#" + name + "}"
    if kind == "word":
        op = draw(st.sampled_from([":-", "-", ":+", "+"]))
        return "${" + name + op + draw(_brace_word(depth - 1, dq, "}")) + "}"
    if kind == "pat":
        op = draw(st.sampled_from(["#", "##", "%", "%%"]))
        return "${" + name + op + draw(_brace_word(depth - 1, dq, "}", pattern=True)) + "}"
    op = draw(st.sampled_from(["/", "//", "/#", "/%"]))
    pat = draw(_brace_word(depth - 1, dq, "}/", pattern=True))
    rep = draw(st.none() | _brace_word(depth - 1, dq, "}"))
    return "${" + name + op + pat + ("" if rep is None else "/" + rep) + "}"


@st.composite
def _piece(draw, depth: int, ends: str, pattern: bool, dq: bool = False, test: bool = False):
    """One piece of a word; `ends` are characters that would end the word here."""
    bare = "".join(c for c in (_BARE_TEST if test else _BARE) if c not in ends)
    choices = ["bare", "bare", "sq", "dq", "esc", "exp"]
    if pattern:
        choices += ["glob", "glob", "bracket"]
    kind = draw(st.sampled_from(choices))
    if kind == "bare":
        return draw(_chars(bare, 4).filter(bool))
    if kind == "sq":
        return "'" + draw(_chars(_SQ)) + "'"
    if kind == "dq":
        return '"' + draw(_dq_body(depth)) + '"'
    if kind == "esc":
        return "\\" + draw(st.sampled_from(_ANY))
    if kind == "glob":
        return draw(st.sampled_from(["*", "?", "a*", "*b", "\\*", '"*"', "'?'", "$U*"]))
    if kind == "bracket":
        body = draw(st.sampled_from(["ab", "!a", "^b", "a-c", "]a", "xX", "[:alpha:]",
                                     "\\]", '"*"', "*?", "-a", "a-", "!]"]))
        return "[" + body + "]"
    return draw(_expansion(depth, dq))


@st.composite
def _dq_body(draw, depth: int):
    out = []
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["text", "text", "esc", "exp", "dollar"]))
        if kind == "text":
            out.append(draw(_chars(_DQ, 5)))
        elif kind == "esc":
            out.append("\\" + draw(st.sampled_from('"\\$`ax}\n\'')))
        elif kind == "dollar":
            out.append(draw(st.sampled_from(["$ ", "$/", "$%"])))
        else:
            out.append(draw(_expansion(max(depth, 0), True)))
    text = "".join(out)
    # a trailing "$" or "\" would swallow the closing quote
    return text + " " if text.endswith(("$", "\\")) else text


@st.composite
def _brace_word(draw, depth: int, dq: bool, ends: str, pattern: bool = False):
    n = draw(st.integers(0, 3))
    return "".join(draw(_piece(depth, ends + " \t\n;&|()<>", pattern, dq)) for _ in range(n))


@st.composite
def _word(draw, depth: int = 2, pattern: bool = False, ends: str = "", empty: bool = True,
          test: bool = False):
    n = draw(st.integers(0 if empty else 1, 3))
    return "".join(draw(_piece(depth, ends, pattern, test=test)) for _ in range(n))


_IDLE = st.sampled_from([" ", "\t", "", "  # comment ; X=zz\n", "\\\n"])
_SEP = st.sampled_from(["\n", "; ", ";", "\n\n", " # c'\"\n", ";\n"])


@st.composite
def _assign(draw, depth: int = 2):
    n = draw(st.integers(1, 2))
    out = []
    for _ in range(n):
        name = draw(st.sampled_from(ASSIGNABLE + ("MYDIST", "ARCH")))
        op = draw(st.sampled_from(["=", "=", "=", "+="]))
        out.append(name + op + draw(_word(depth)))
    return " ".join(out)


@st.composite
def _test_arg(draw, depth: int = 2):
    return draw(st.sampled_from(['"$A"', '"$U"', "$B", '""', "a", "a b", "-n", "!", "=",
                                 "b*", "1", " 2", "-3"])
                | _word(depth, empty=False, test=True).filter(lambda w: w.strip() not in ("]", "")))


@st.composite
def _test(draw):
    form = draw(st.sampled_from(["unary", "binary", "binary", "one", "not", "int"]))
    a, b = draw(_test_arg()), draw(_test_arg())
    if form == "unary":
        body = draw(st.sampled_from(["-n", "-z"])) + " " + a
    elif form == "binary":
        body = a + " " + draw(st.sampled_from(["==", "=", "!="])) + " " + b
    elif form == "one":
        body = a
    elif form == "not":
        body = "! " + a + " " + draw(st.sampled_from(["==", "!="])) + " " + b
    else:
        nums = st.sampled_from(["1", "-2", "+3", "007", '" 4 "', "${#A}", "$U", "9" * 20])
        body = (draw(nums) + " " + draw(st.sampled_from(["-eq", "-ne", "-lt", "-le", "-gt", "-ge"]))
                + " " + draw(nums))
    if draw(st.booleans()):
        return "[ " + body + " ]"
    return "test " + body


@st.composite
def _simple(draw, depth: int):
    kind = draw(st.sampled_from(["assign"] * 4 + ["andor", "andor", "not"]))
    if kind == "assign":
        return draw(_assign(depth))
    if kind == "not":
        return "! " + draw(st.one_of(_test(), _assign(depth)))
    out = draw(_test())
    for _ in range(draw(st.integers(1, 2))):
        op = draw(st.sampled_from(["&&", "||"]))
        sp = draw(st.sampled_from(["", " ", "\n"])) if op else ""
        out += op + sp + draw(st.one_of(_assign(depth), _test()))
    return out


@st.composite
def _block(draw, depth: int, min_size: int = 1, arm: bool = False):
    n = draw(st.integers(min_size, 3))
    cmds = [draw(_command(depth)) for _ in range(n)]
    out = ""
    for idx, c in enumerate(cmds):
        # a case arm's last command ends with ';;' (added by the caller) or a newline
        last = arm and idx == n - 1
        out += c + (draw(st.sampled_from(["", "\n", " "])) if last else draw(_SEP))
    return out


@st.composite
def _if(draw, depth: int):
    out = "if " + draw(_block(0)) + draw(st.sampled_from(["then\n", "then ", "then # c\n"]))
    out += draw(_block(depth - 1))
    for _ in range(draw(st.integers(0, 1))):
        out += "elif " + draw(_block(0)) + "then " + draw(_block(depth - 1))
    if draw(st.booleans()):
        out += "else\n" + draw(_block(depth - 1))
    return out + "fi"


@st.composite
def _case(draw, depth: int):
    subject = draw(st.sampled_from(["${ARCH// /}", '"$MYDIST"', "$A", "${B}", "x86_64",
                                    "a b", "'*'"]) | _word(2, empty=False))
    out = "case " + subject + draw(st.sampled_from([" in\n", " in ", "\nin # c\n"]))
    for _ in range(draw(st.integers(1, 3))):
        pats = [draw(st.sampled_from(["*", "a", "[xX]86_64", "debian", "x86_64", "a*", "?",
                                      '"*"', "$A", '"$A"', "''", "[!a]*"])
                     | _word(2, pattern=True, ends="|)", empty=False))
                for _ in range(draw(st.integers(1, 2)))]
        out += draw(st.sampled_from(["", "(", "  "])) + "|".join(pats) + ") "
        out += draw(_block(depth - 1, 0, arm=True))
        out += ";;\n"
    return out + "esac"


@st.composite
def _command(draw, depth: int = 2):
    kinds = ["simple", "simple", "simple"] + (["if", "case"] if depth > 0 else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "simple":
        return draw(_simple(depth))
    cmd = draw(_if(depth)) if kind == "if" else draw(_case(depth))
    if draw(st.integers(0, 4)) == 0:
        cmd += draw(st.sampled_from([" && ", " || "])) + draw(_assign(1))
    return cmd


@st.composite
def programs(draw):
    lines = [draw(_command(2)) for _ in range(draw(st.integers(1, 4)))]
    out = ""
    for line in lines:
        out += draw(_IDLE) + line + draw(_SEP)
    return out


_VALUES = st.sampled_from(["", "a", "ab", "a b", "*", "a*b", "[ab]", "a\\*", "\\", "&", "/a/b/",
                           "x86 64", "ä€", " a ", "?", "'", '"', "a:b", "#a", "-n"]) \
    | _chars("ab*?[]/\\ &:-#~'\"äé", 6)


@st.composite
def expansion_programs(draw):
    """Preset A/B/C values (glob characters, blanks, backslashes, quotes, '&') and then
    assignments, case arms and tests built mostly from expansions of them."""
    out = "".join(f"{n}={_quote(draw(_VALUES))}\n" for n in ("A", "B", "C")
                  if draw(st.integers(0, 4)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["plain", "dq", "dq", "case", "test"]))
        exp = draw(_expansion(2, kind == "dq"))
        target = draw(st.sampled_from(("X", "Y", "Z")))
        if kind == "plain":
            out += f"{target}={exp}{draw(_word(1))}\n"
        elif kind == "dq":
            out += f'{target}="{draw(_dq_body(1))}{exp}"\n'
        elif kind == "case":
            pat = draw(st.sampled_from(["$A", '"$A"', "${B}*", "*${C#?}", "[$A]", "?*"])
                       | _expansion(1, False))
            out += f"case {exp} in {pat}) {target}=1;; *) {target}=2;; esac\n"
        else:
            out += (f"[ {draw(st.sampled_from(['-n', '-z', 'a ==', '! a =']))} {exp} ]"
                    f"&&{target}=1||{target}=2\n")
    return out


@settings(max_examples=400, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.data_too_large])
@given(program=expansion_programs())
def test_expansions_match_bash(bash_dir, program):
    check(program, bash_dir)


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.data_too_large])
@given(program=programs())
def test_reader_matches_bash(bash_dir, program):
    check(program, bash_dir)


# --- hand-written differential cases --------------------------------------------------

# Accepted: the reader's value must equal bash's (checked against bash, not hard-coded).
AGREE = [
    # nested defaults, quotes inside ${...}
    "X=${A:-${B:-c}}", "B=b; X=${A:-${B:-c}}", "X=${U:-\"a b\"}", "X=\"${U:-\"a b\"}\"",
    "X=${U:-'a b'}", "X=\"${U:-'a b'}\"", "X=\"${U:-\\\"}\"", "X=\"${U:-a\\}b}\"",
    "A=x; X=${A:+\"${B:-q}\"}", "X=${U-}${U:+z}${A+y}", "A=; X=${A-d}${A:-e}${A+f}${A:+g}",
    # double-quoted ${X:-word}: word read with double-quote rules
    "X=\"${U:-\\a\\$\\\\}\"", "X=\"${U:-a\\\nb}\"",
    "X=\"${U-'a'}\"; Y=\"${U:-'$A'}\"; Z=\"${U:-\\'}\"", "X=\"${U:-'a'b'c'}\"",
    "X=\"${U:-\"a'}b\"}\"", 'X="${U:-"\\\\"}${U:-"\\""}${U:-"\\$A"}"', 'X=${U:-"\\a"}',
    "X=\"${U:-$}\"; Y=${U:-a$}",
    "A=1; X=\"${A:+${A}\"a\"9}\"; Y=\"${A:+$A'a'9}\"; Z=\"${A:+$A \"a\"}\"",
    "A=1; X=\"${A:+$A\\\"9}\"",
    # pattern removal, quoted and unquoted patterns, inside and outside "..."
    "A='*ab*'; X=${A#\"*\"}; Y=\"${A#\"*\"}\"; Z=${A#*}", "A='*ab*'; X=${A##*a}; Y=${A%%b*}",
    "A=abc; X=\"${A#'a'}\"; Y=\"${A%'c'}\"; Z=${A#'a'}",
    "A='a\\bc'; X=\"${A#a\\\\}\"; Y=${A#a\\\\}", "A=abc; X=\"${A#\\a}\"",
    "A='/a/b/c/'; X=${A//\\//_}; Y=\"${A//\\//_}\"; Z=${A//\"/\"/_}",
    "A='a b  c'; X=${A// /}; Y=${A/ /-}; Z=${A//[ b]/.}",
    "A=abab; X=${A/#a/x}; Y=${A/%b/y}; Z=${A/#/p}${A/%/s}", "A=abc; X=${A//}; Y=${A/b}",
    "A=abc; X=\"${A/b/'x'}\"; Y=\"${A/b/\\x}\"; Z=\"${A/b/\\\\}\"",
    "A=abc; X=${A/b/\\&}; Y=${A/b/\"&\"}; Z=${A/b/'&'}", "A=abc; B='<&>'; X=\"${A/b/\"$B\"}\"",
    "A='a*b'; P='\\*'; X=${A#a$P}; Y=${A#*$P}; case $A in a${P}b) Z=1;; esac",
    "A=abc; P='*'; X=\"${A##$P}\"; Y=\"${A##\"$P\"}\"",
    "B='a\\\\'; case 'a\\' in $B) X=1;; *) X=2;; esac",
    "A=äöü€; X=${#A}; Y=${A#?}; Z=${A%%ü*}",
    # case: quoted patterns, brackets, first match wins, ;; on a later line
    "case '*' in \"*\") X=q;; *) X=g;; esac", "case ab in \"*\") X=q;; *) X=g;; esac",
    "case ab in 'a'*) X=1;; esac", "A='*'; case x in \"$A\") X=1;; $A) X=2;; esac",
    "ARCH='x86 64'; case ${ARCH// /} in [xX]86_64|[aA][mM][dD]64) X=64;; *) X=o;; esac",
    "case b in [!a]) X=1;; esac; case ] in []]) Y=1;; esac; case - in [a-]) Z=1;; esac",
    "case x in\n#a) X=c;;\n  x) X=1\n  ;;\nesac",
    # [ ... ]: quoted glob characters are plain text; assignment-like words
    "A=b; [ \"$A\" == \"b*\" ]&&X=1||X=0", "A='b*'; [ \"$A\" == \"b*\" ]&&X=1||X=0",
    "[ a=b == a=b ]&&X=1", "case a=b in a=b) X=1;; esac", "[ ! = x ]&&X=1||X=0",
    "[ \" 1\" -eq 1 ]&&X=1; [ \"1 \" -eq 1 ]&&Y=1; [ +3 -gt -2 ]&&Z=1",
    "[ 9223372036854775807 -gt -9223372036854775808 ]&&X=1",
    "A=x; if [ -n \"$A\" ];then X=1; elif [ -z \"$A\" ]; then X=2; else X=3; fi",
    "if [ a == b ]; then X=1; fi || Y=2; [ -z \"$U\" ] && ! [ -n \"$U\" ] && Z=3",
    # quoting inside an unquoted ${X:-word} survives: no splitting, no globbing there
    "case '*' in ${U:-\"*\"}) X=1;; esac; case ab in ${U:-\"*\"}) Y=1;; esac",
    "A='*b'; X=${A#${U:-\"*\"}}; Y=${A#${U:-*}}", "[ ${U:-\"a b\"} == \"a b\" ]&&X=1",
    "[ -n ${U:-\"a b\"} ]&&X=1; [ ${U:-a\\ b} == \"a b\" ]&&Y=1",
    "A='a b'; [ ${A:+\"$A\"}x == \"a bx\" ]&&X=1; B='*'; [ ${U:-\"$B\"} ]&&Y=1",
    "A='a\\*'; case 'a*' in ${U:-$A}) X=1;; esac; case 'ab' in ${U:-$A}) Y=1;; esac",
    # glob brackets
    "A=abc; X=${A#[[:alpha:]]}; Y=${A%[[:digit:][:upper:]c]}", "case = in [=]) X=1;; esac",
    "case ] in [!=]) X=1;; esac; case ^ in [^]]) Y=1;; esac; case '!' in [!!]) Z=1;; esac",
    # line continuations
    "A=1; X=$A\\\n/; Y=a\\\nb; Z=\"a\\\nb\"", "case a in a\\\n) X=1;; esac",
    "#a\\\nX=1",
    # a lone empty quoted default in a case word is fine; elsewhere they all are
    "case ${U:-\"\"} in '') X=1;; *) X=2;; esac; case a in ${U:-''}) Y=1;; *) Y=2;; esac",
    "V=v; case ${U:-\"$V\"x} in vx) X=1;; esac; case ${U:+''}a in a) Y=1;; esac",
    "X=${U:-''}a; Y=${U:-''''}; Z=${U:-a''b}", "[ -n ${U:-''} ]&&X=1; [ ${U:-''''} ]&&Y=1",
    # '~' where bash leaves it alone
    "X=a~; Y=b=~/x; Z='~'", "X=\"~\"; Y=\"${U:-~/a}\"; Z=\"${U:-a:~}\"", "X=${U:-a~}",
    # the fixtures' constructs
    "CTYSWRAPPERPATH=/vm/x; A=hda.img\n[ \"${A#/}\" == \"$A\" ]&&A=${CTYSWRAPPERPATH}/${A}",
    "X=\"${TIMEOPT:--localtime} \"; Y=${U:-}; Z=;",
    # ${X/p/r} on unset and empty values
    "X=${U/%/x}; Y=${U/#/x}; Z=${U/*/x}", "A=; X=${A/%/x}; Y=${A/#/x}; Z=${A/*/x}",
    "A=; X=${A//*/x}; Y=${A/#*/x}; Z=${A/%*/x}", "A=; X=${A/$U/x}; Y=${A//\"\"/x}; Z=${A/?/x}",
    "A=ab; X=${A/%/x}; Y=${A//*/x}; Z=${A/%*/x}",
    # a ${X/pattern/...} pattern starting with '/': part of the pattern, not the separator
    "A=a/b/x/c; X=${A///}; Y=${A///x}; Z=${A////_}", "A=/a/b; X=${A/#//y}; Y=\"${A///}\"",
    "A=ab; X=${A#[!]]}; Y=${A%[^]]}",
]

# Rejected: bash would give a value the reader does not model (or a syntax error).
REJECT = [
    ("test 1 -eq 99999999999999999999&&A=", "integer test"),     # bash: out of range
    ("[ \"1\n\" -eq 1 ]&&X=1", "integer test"),
    ("if [ a ]; then fi; X=1", "syntax error"),                   # bash: syntax error
    ("if [ a ]; then X=1; else fi", "syntax error"),
    ("X=a:~/b", "tilde expansion ~"), ("X=${U:-a:~/b}", "tilde expansion ~"),
    ("X=${U:-a:b:~}", "tilde expansion ~"), ("A=abc; X=${A#~}", "tilde expansion ~"),
    ("A=abc; X=\"${A#~}\"", "tilde expansion ~"), ("A=abc; X=${A/~/x}", "tilde expansion ~"),
    ("A=abc; X=${A/b/~}", "tilde expansion ~"),
    ("case ~ in /home/oracle) X=1;; esac", "tilde expansion ~"),
    ("case /home/oracle in ~) X=1;; esac", "tilde expansion ~"),
    ("[ ~ == /home/oracle ]&&X=1", "tilde expansion ~"),
    ("[ a=~ == a=/home/oracle ]&&X=1", "tilde expansion ~"),
    ("A=abc; X=${A/b/&&}", "'&' in ${X/pattern/replacement}"),
    ("A=abc; X=\"${A/b/&}\"", "'&' in ${X/pattern/replacement}"),
    ("A=abc; B='<&>'; X=${A/b/$B}", "'&' or '\\' in ${X/pattern/replacement}"),
    ("A=abc; B='a\\\\b'; X=${A/b/$B}", "'&' or '\\' in ${X/pattern/replacement}"),
    ("[ a* == a ]&&X=1", "pathname expansion in [ ... ]"),
    ("A='a*'; [ $A == a ]&&X=1", "pathname expansion in [ ... ]"),
    ("[ $QEMUBASE ]&&X=1", "pathname expansion in [ ... ]"),
    ("[ {a,b} == a ]&&X=1", "brace expansion in [ ... ]"),
    ("case '*' in [\"*\"]) X=1;; esac", "quoting inside [...] pattern"),
    ("A=']'; case ']' in [\\]]) X=1;; esac", "quoting inside [...] pattern"),
    ("X=\"${U-'}{'}\"", "single quote in \"${X:-...}\""),     # bash: '}{'
    ("A=1; X=\"${A-'}{'}\"", "single quote in \"${X:-...}\""),  # bash: 1
    ("X=\"${U:-\\\"a'b\\\"}\"", "single quote in \"${X:-...}\""),  # bash: unterminated
    ("X=\"${U:-$'a'}\"", "ANSI-C quoting $'...'"), ("X=\"${U:-$\"a\"}\"", 'locale quoting $"..."'),
    ("A=1; X=$A\\\nB", "line continuation inside $NAME"),        # bash: $AB
    ("A=1; X=\"$A\\\nB\"", "line continuation inside $NAME"),
    ("A=1; X=$\\\n{A}", "line continuation after '$'"),         # bash: 1
    ("A=äbc; X=${A#[[:alpha:]]}", "character class on non-ASCII text"),   # locale
    ("case a in [[=a=]]) X=1;; esac", "collating element in [...] pattern"),
    ("case a in [[.a.]]) X=1;; esac", "collating element in [...] pattern"),
    ('X="${U:-"\\a"}"', 'backslash in "..." inside "${X:-...}"'),  # bash: a
    ('A=1; X="${U:-"$A\\x"}"', 'expansion in "..." inside "${X:-...}"'),
    ('A=; X="${U:-"$A"99}"', 'expansion in "..." inside "${X:-...}"'),  # bash: ''
    ("case ${U:-'x'''} in x) X=1;; esac", "empty quotes in ${X:-...} in case"),  # no match
    ("case ${U:-''}a in a) X=1;; esac", "empty quotes in ${X:-...} in case"),
    ("case a in ${U:-\"$V\"}a) X=1;; esac", "empty quotes in ${X:-...} in case"),
    ("case ${U:-''''} in '') X=1;; esac", "empty quotes in ${X:-...} in case"),  # bash: ''
    ("A=ab; X=${A/[!]]/y}", "[!]...] in ${X/pattern/...}"),       # bash: ab
    ("B='\\'; case '\\' in ${B}*) X=1;; esac", "backslash ending an expansion in a pattern"),
    ("C='~\\'; case 'a\\' in *${C#?}) X=1;; esac", "backslash ending an expansion in a pattern"),
    ('A=1; X="${A:+$A""9}"', '"..." after $NAME inside "${X:-...}"'),     # bash: ''
    ("X=a\r", "syntax error"), ("X=a\v", "syntax error"), ("X=a\fY=b", "syntax error"),
]


@pytest.mark.parametrize("program", AGREE)
def test_tricky_constructs_match_bash(bash_dir, program):
    check(program, bash_dir, accepted=True)


@pytest.mark.parametrize("program,construct", REJECT)
def test_unmodelled_constructs_are_rejected(bash_dir, program, construct):
    with pytest.raises(ConfError) as exc:
        evaluate_text(program + "\n", dict(CONTEXT), "t.ctys")
    assert exc.value.construct == construct


@pytest.mark.parametrize("label", LABELS)
@pytest.mark.parametrize("mydist", ["debian", "CentOS"])
def test_example_confs_match_bash(bash_dir, label, mydist):
    """The shipped example confs (conf-format §7): every variable they assign, and the
    context ones, as bash sees them."""
    text = example_text(label)
    ctx = {"MYDIST": mydist, "ARCH": "x86_64", "USER": "acue", "CTYSWRAPPERPATH": "/vm/q",
           "QEMUBASE": "/usr/bin/qemu-system-x86_64", "QEMUKVM": "kvm"}
    names = tuple(sorted(set(re.findall(r"^[ \t]*([A-Za-z_][A-Za-z0-9_]*)\+?=", text, re.M))
                         | set(ctx)))
    ours = evaluate_text(text, dict(ctx), "t.ctys")
    theirs = run_bash(text, bash_dir, names, ctx)
    assert {n: ours.get(n) for n in names} == theirs
    assert len(names) > 30


def test_rejected_constructs_really_differ_in_bash(bash_dir):
    """The REJECT list is no over-caution: bash, given the same program, errors or
    gives a value the naive (pre-fix) reading would not."""
    naive = {"X=a:~/b": "a:~/b", "A=abc; X=${A/b/&&}": "a&&c", "X=a\v": "a",
             "[ a* == a ]&&X=1": None, "case '*' in [\"*\"]) X=1;; esac": None}
    for program, want in naive.items():
        try:
            got = run_bash(program + "\n", bash_dir)["X"]
        except AssertionError:
            continue                              # bash reported an error
        assert got != want, program
