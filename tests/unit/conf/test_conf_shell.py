"""The shell subset reader: each supported construct evaluates as bash would, each
rejected construct raises ConfError with line, column and the construct's name."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctys_libvirt.conf import evaluate_text
from ctys_libvirt.errors import ConfError


def ev(text: str, **ctx) -> dict:
    return evaluate_text(text, dict(ctx), "t.ctys")


def val(text: str, name: str = "X", **ctx) -> str:
    return ev(text, **ctx)[name]


# --- assignments and quoting ---------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("X=raw", "raw"),
    ("X=/dev/cdrom", "/dev/cdrom"),
    ('X="-vga cirrus "', "-vga cirrus "),
    ("X='a  b'", "a  b"),
    ("X=", ""),
    ("X=;", ""),
    ("X=a;", "a"),
    ('X="a"\'b\'c', "abc"),
    ("X=a\\ b", "a b"),
    ('X="a\\"b\\$c\\\\d\\e"', 'a"b$c\\d\\e'),
    ("X='$Y'", "$Y"),
    ('X="$"', "$"),
    ("X=a$", "a$"),
    ("X=a=b", "a=b"),
    ("X=a#b", "a#b"),
    ("X=8G  # comment", "8G"),
    ("X=\"a\nb\"", "a\nb"),
    ("X=abc\\\ndef", "abcdef"),
    ("X=1\nX=2", "2"),
    ("X=1; X=3", "3"),
    ("X=a Y=b", "a"),
    ("X=a\nX+=b", "ab"),
    ("X={a,b}", "{a,b}"),
    ("X=*", "*"),
    ("X='~/a'", "~/a"),
    ('X="${U:-~/a}"', "~/a"),      # quoted: bash leaves this ~ alone
    ("X=${U:-'~'}", "~"),
    ("X=${U:-a~}", "a~"),
    ("X=a~", "a~"),
])
def test_assignment_words(text, expected):
    assert val(text) == expected


def test_assignments_are_not_word_split():
    assert val('Y="a  b"\nX=$Y', Y="") == "a  b"


def test_unset_expands_empty():
    assert val("X=${NOPE}$NOPE") == ""


def test_blank_and_comment_lines():
    assert ev("\n\n   # c\n\t#@#LABEL = x\nX=1 # trailing\n\n") == {"X": "1"}


# --- parameter expansion ---------------------------------------------------------------

@pytest.mark.parametrize("text,ctx,expected", [
    ("X=$Y", {"Y": "v"}, "v"),
    ("X=${Y}", {"Y": "v"}, "v"),
    ("X=${Y}/hda.img", {"Y": "/vm"}, "/vm/hda.img"),
    ("X=$Y/hda.img", {"Y": "/vm"}, "/vm/hda.img"),
    ("X=${Y:-d}", {}, "d"),
    ("X=${Y:-d}", {"Y": ""}, "d"),
    ("X=${Y-d}", {"Y": ""}, ""),
    ("X=${Y-d}", {}, "d"),
    ("X=${Y:-d}", {"Y": "v"}, "v"),
    ("X=${Y:-}", {}, ""),
    ('X="${TIMEOPT:--localtime} "', {}, "-localtime "),
    ("X=${Y:-$Z}", {"Z": "z"}, "z"),
    ("X=${Y:-${Z:-${W:-deep}}}", {}, "deep"),
    ("X=${Y:-$Z/lit}", {"Z": "/p"}, "/p/lit"),
    ("X=${Y:-'512'}", {}, "512"),
    ('X="${Y:-\'512\'}"', {}, "'512'"),
    ('X=${Y:-"a b"}', {}, "a b"),
    ("X=${Y:+set}", {"Y": "1"}, "set"),
    ("X=${Y:+set}", {"Y": ""}, ""),
    ("X=${Y+set}", {"Y": ""}, "set"),
    ("X=${#Y}", {"Y": "abcd"}, "4"),
    ("X=${Y#/}", {"Y": "/a/b"}, "a/b"),
    ("X=${Y#/}", {"Y": "a/b"}, "a/b"),
    ("X=${Y#*/}", {"Y": "a/b/c"}, "b/c"),
    ("X=${Y##*/}", {"Y": "a/b/c"}, "c"),
    ("X=${Y%/*}", {"Y": "a/b/c"}, "a/b"),
    ("X=${Y%%/*}", {"Y": "a/b/c"}, "a"),
    ("X=${Y%.img}", {"Y": "hda.img"}, "hda"),
    ("X=${Y%.???}", {"Y": "hda.img"}, "hda"),
    ("X=${Y#[ab]}", {"Y": "bcd"}, "cd"),
    ("X=${Y#\\*}", {"Y": "*a"}, "a"),
    ("X=${Y#'*'}", {"Y": "ab"}, "ab"),
    ("X=${Y// /}", {"Y": " x 86 _64 "}, "x86_64"),
    ("X=${Y/a/b}", {"Y": "aaa"}, "baa"),
    ("X=${Y//a/b}", {"Y": "aaa"}, "bbb"),
    ("X=${Y//a}", {"Y": "banana"}, "bnn"),
    ("X=${Y/#a/b}", {"Y": "aXa"}, "bXa"),
    ("X=${Y/%a/b}", {"Y": "aXa"}, "aXb"),
    ("X=${Y/a*/Z}", {"Y": "xabcabc"}, "xZ"),
    ("X=${Y//[0-9]/#}", {"Y": "a1b22"}, "a#b##"),
    ("X=${Y//?/.}", {"Y": "abc"}, "..."),
])
def test_parameter_expansion(text, ctx, expected):
    assert val(text, **ctx) == expected


def test_prefix_removal_against_fixture_line():
    text = ('T=rel/hda.img\n[ "${T#/}" == "$T" ]&&T=${CTYSWRAPPERPATH}/${T}\n'
            'A=/abs/hda.img\n[ "${A#/}" == "$A" ]&&A=${CTYSWRAPPERPATH}/${A}\n')
    out = ev(text, CTYSWRAPPERPATH="/vm/x")
    assert out["T"] == "/vm/x/rel/hda.img"
    assert out["A"] == "/abs/hda.img"


# --- case -------------------------------------------------------------------------------

CASE_ARCH = """
if [ -n "${ARCH}" ];then
    case ${ARCH// /} in
\t[xX]86_64|[aA][mM][dD]64) CPU="${CPU:-qemu64}";;
\t[iI]386|[iI]586|[iI]686) CPU="${CPU:-qemu32}";;

#\t*) CPU="qemu32";;
\t*) CPU="${CPU:-$ARCH}";;
    esac
fi
"""


@pytest.mark.parametrize("arch,cpu", [
    ("x86_64", "qemu64"), ("X86_64", "qemu64"), ("AmD64", "qemu64"), (" x86 _64", "qemu64"),
    ("i686", "qemu32"), ("I386", "qemu32"), ("armv5tel", "armv5tel"),
])
def test_case_arch(arch, cpu):
    assert ev(CASE_ARCH, ARCH=arch)["CPU"] == cpu


def test_if_false_skips_case():
    assert "CPU" not in ev(CASE_ARCH, ARCH="")


CASE_DIST = """VGADRIVER="-vga cirrus "
case "$MYDIST" in
   debian)
     VGADRIVER=;
     ;;
   Ubuntu)
     VGADRIVER=;
     ;;
esac
"""


@pytest.mark.parametrize("dist,vga", [("debian", ""), ("Ubuntu", ""), ("CentOS", "-vga cirrus ")])
def test_case_mydist(dist, vga):
    assert ev(CASE_DIST, MYDIST=dist)["VGADRIVER"] == vga


CASE_ACC = """case ${ACCELERATOR} in
    KVM)
\tS=${S:-$QEMUKVM}
\tS=${S:-qemu-kvm}
\t;;
    QEMU)
\tS=${S:-$QEMUBASE}
\tS=${S:-qemu}
\t;;
#KQEMU);;
esac
"""


@pytest.mark.parametrize("acc,ctx,s", [
    ("KVM", {"QEMUKVM": "/usr/bin/kvm"}, "/usr/bin/kvm"),
    ("KVM", {}, "qemu-kvm"),
    ("QEMU", {"QEMUBASE": "/usr/bin/qemu-system-x86_64"}, "/usr/bin/qemu-system-x86_64"),
    ("QEMU", {}, "qemu"),
])
def test_case_accelerator_with_comment_arm(acc, ctx, s):
    assert ev(CASE_ACC, ACCELERATOR=acc, **ctx)["S"] == s


def test_case_no_match_leaves_vars():
    assert "S" not in ev(CASE_ACC, ACCELERATOR="KQEMU")


def test_case_first_match_wins_and_empty_arms():
    text = "case $Y in\n a) ;;\n a|b) X=2;;\n *) X=3;;\nesac\n"
    assert "X" not in ev(text, Y="a")
    assert ev(text, Y="b")["X"] == "2"
    assert ev(text, Y="c")["X"] == "3"


def test_case_last_arm_without_dsemi_and_paren_pattern():
    assert val("case x in (x) X=1\nesac", Y="") == "1"
    assert val("case x in y) X=0;; x) X=2 esac".replace(" esac", "\nesac")) == "2"


def test_case_quoted_pattern_is_literal():
    assert "X" not in ev("case abc in '*') X=1;; esac")
    assert val('case "*" in "*") X=1;; esac') == "1"


def test_case_pattern_from_variable_is_glob():
    assert val("case abc in $P) X=1;; esac", P="a*") == "1"


def test_case_on_one_line():
    assert val("case a in a) X=1;; b) X=2;; esac") == "1"


# --- if / tests / && || -------------------------------------------------------------------

@pytest.mark.parametrize("test,expected", [
    ('[ -n "$Y" ]', True), ('[ -n "$E" ]', False), ('[ -z "$E" ]', True), ('[ -z "$Y" ]', False),
    ('[ "$Y" == "y" ]', True), ('[ "$Y" = "y" ]', True), ('[ "$Y" != "y" ]', False),
    ('[ "$Y" == "z" ]', False), ("[ $Y ]", True), ("[ $E ]", False), ('[ "" ]', False),
    ("[ -n $E ]", True),                       # bash: '[ -n ]' is a 1-arg test -> true
    ("[ ! -n \"$Y\" ]", False), ("! [ -n \"$Y\" ]", False),
    ("[ 2 -gt 10 ]", False), ("[ 10 -ge 10 ]", True),
    ("test -n \"$Y\"", True),
    ('[ "a b" == "a b" ]', True),
])
def test_tests(test, expected):
    out = ev(f"{test} && X=t || X=f", Y="y", E="")
    assert out["X"] == ("t" if expected else "f")


def test_if_elif_else():
    text = ('if [ "$Y" == a ]; then X=1\nelif [ "$Y" == b ];then\n X=2\nelse\n X=3\nfi')
    assert val(text, Y="a") == "1"
    assert val(text, Y="b") == "2"
    assert val(text, Y="c") == "3"


def test_and_or_chain_short_circuits():
    assert ev('[ -z "" ]&&X=1||X=2') == {"X": "1"}
    assert ev('[ -n "" ]&&X=1||X=2') == {"X": "2"}
    assert ev('[ -n "" ]&&X=1') == {}
    assert ev('[ -n "a" ] ||\n X=1') == {}


def test_nested_if_in_case_in_if():
    text = "if [ a ];then case b in b) if [ c ]; then X=deep; fi;; esac; fi"
    assert val(text) == "deep"


# --- rejected constructs ---------------------------------------------------------------------

REJECTED = [
    ("X=$(touch /tmp/p)", 1, 3, "command substitution $(...)"),
    ("X=`touch /tmp/p`", 1, 3, "command substitution `...`"),
    ('X="a`id`"', 1, 5, "command substitution `...`"),
    ('X="$(id)"', 1, 4, "command substitution $(...)"),
    ("X=$((1+2))", 1, 3, "arithmetic expansion $((...))"),
    ("\nexport X=1", 2, 1, "'export'"),
    ("source /etc/profile", 1, 1, "'source'"),
    (". /etc/profile", 1, 1, "'.' (source)"),
    ("eval X=1", 1, 1, "'eval'"),
    ("exec /bin/sh", 1, 1, "'exec'"),
    ("f() { X=1; }", 1, 1, "function definition"),
    ("function f { X=1; }", 1, 1, "function definition"),
    ("for i in 1 2; do X=$i; done", 1, 1, "'for' loop"),
    ("while [ a ]; do X=1; done", 1, 1, "'while' loop"),
    ("until [ a ]; do X=1; done", 1, 1, "'until' loop"),
    ("cat <<EOF\nx\nEOF", 1, 5, "here-document '<<'"),
    ("X=(a b)", 1, 1, "array assignment X=(...)"),
    ("X[0]=a", 1, 1, "array element assignment X[i]=..."),
    ("X=${Y[0]}", 1, 3, "array ${X[...]}"),
    ("X=1 > /tmp/f", 1, 5, "redirection '>'"),
    ("X=1 >> /tmp/f", 1, 5, "redirection '>>'"),
    ("X=1 < /tmp/f", 1, 5, "redirection '<'"),
    ("X=1 2>&1", 1, 6, "redirection '>&'"),
    ("[ a ] | X=1", 1, 7, "pipe '|'"),
    ("X=1 &", 1, 5, "background job '&'"),
    ("rm -rf /", 1, 1, "command word 'rm'"),
    ("  echo x", 1, 3, "command word 'echo'"),
    ("X=1 echo x", 1, 5, "command word 'echo'"),
    ("X=1;rm -rf /tmp/x", 1, 5, "command word 'rm'"),
    ("$CMD", 1, 1, "command word"),
    ("X=${Y:=d}", 1, 3, "assign-default ${X:=...}"),
    ("X=${Y=d}", 1, 3, "assign-default ${X=...}"),
    ("X=${Y:?e}", 1, 3, "error-if-unset ${X:?...}"),
    ("X=${!Y}", 1, 3, "indirect expansion ${!X}"),
    ("X=${Y:1:2}", 1, 3, "substring ${X:offset}"),
    ("X=${Y^^}", 1, 3, "case modification ${X^...}"),
    ("X=$1", 1, 3, "special parameter $1"),
    ("X=$$", 1, 3, "special parameter $$"),
    ("X=<(ls)", 1, 3, "process substitution <(...)"),
    ("[[ -n a ]] && X=1", 1, 1, "'[[ ... ]]' test"),
    ("(X=1)", 1, 1, "subshell (...)"),
    ("((X=1))", 1, 1, "arithmetic command ((...))"),
    ("{ X=1; }", 1, 1, "command group '{ ...; }'"),
    ("X=$'\\n'", 1, 3, "ANSI-C quoting $'...'"),
    ("[ -f /etc/passwd ] && X=1", 1, 1, "file test -f"),
    ("[ a -a b ] && X=1", 1, 1, "test operator -a"),
    ("case a in a) X=1;& esac", 1, 17, "case fall-through ';&'"),
    ("X=a\n  Y=b\n\tZ=$(id)", 3, 4, "command substitution $(...)"),
    ("HDB=~/hdb.img", 1, 5, "tilde expansion ~"),
    ("X=1 HDB=~root/x", 1, 9, "tilde expansion ~"),
    # bash expands these too (unquoted parameter-expansion words)
    ("HDB=${H:-~/hdb.img}", 1, 5, "tilde expansion ~"),
    ("HDB=x${H-~}", 1, 6, "tilde expansion ~"),
    ("HDB=${H:+~root}", 1, 5, "tilde expansion ~"),
]


@pytest.mark.parametrize("text,line,col,construct", REJECTED)
def test_rejected_constructs(text, line, col, construct):
    with pytest.raises(ConfError) as ei:
        ev(text)
    e = ei.value
    assert (e.line, e.col, e.construct) == (line, col, construct)
    assert e.path == "t.ctys"
    assert f"t.ctys:{line}:{col}: " in str(e)
    assert construct in str(e)


@pytest.mark.parametrize("text,message", [
    ("X='abc", "unterminated single quote"),
    ('X="abc', "unterminated double quote"),
    ("X=${Y", "unterminated"),
    ("if [ a ]; then X=1", "unexpected end of file"),
    ("case a in a) X=1;;", "missing 'esac'"),
    ("fi", "unexpected 'fi'"),
    ("[ a && X=1", "without matching ']'"),
    ("X=${}", "bad substitution"),
    ("then X=1", "unexpected 'then'"),
    ("if then X=1; fi", "unexpected"),
])
def test_syntax_errors(text, message):
    with pytest.raises(ConfError, match=message):
        ev(text)


def test_rejected_construct_inside_unrun_branch_still_rejected():
    # static check: nothing hides behind a false condition
    with pytest.raises(ConfError, match=r"command substitution"):
        ev('if [ -n "" ]; then X=$(touch /tmp/x); fi')


# --- limits ------------------------------------------------------------------------------------

def test_deep_if_nesting_is_conf_error_not_recursion_error():
    text = "if [ a ]; then\n" * 200 + "X=1\n" + "fi\n" * 200
    with pytest.raises(ConfError, match="nested deeper"):
        ev(text)


def test_deep_brace_nesting_is_conf_error():
    text = "X=" + "${A:-" * 500 + "x" + "}" * 500
    with pytest.raises(ConfError, match="nested deeper"):
        ev(text)


def test_moderate_nesting_is_fine():
    assert val("X=" + "${A:-" * 20 + "x" + "}" * 20) == "x"
    assert val("if [ a ]; then\n" * 20 + "X=1\n" + "fi\n" * 20) == "1"


def test_value_growth_is_bounded():
    text = "X=aaaaaaaaaaaaaaaa\n" + "X=$X$X$X$X\n" * 20
    with pytest.raises(ConfError, match="exceeds"):
        ev(text)


def test_replacement_growth_is_bounded():
    text = "X=" + "a" * 2000 + "\nX=${X//a/" + "b" * 1000 + "}\n"
    with pytest.raises(ConfError, match="exceeds"):
        ev(text)


def test_hostile_glob_is_bounded():
    text = "X=" + "a" * 3000 + "\nY=${X//*a*a*a*a*b/c}\nZ=${X%%*a*a*a*b}\n"
    with pytest.raises(ConfError, match="work limit"):
        ev(text)


# --- the tokenizer's regex fast path must produce exactly the detailed scanner's tokens -------

def _tokens(text, fast):
    """fast=True: regex fast path; False: detailed scanner only; "lines": tokenize() as
    parse() uses it (memos cold, then warm)."""
    import re as _re

    from ctys_libvirt.conf import shell
    from ctys_libvirt.util.memo import clear_all

    saved = shell._FAST
    if not fast:
        shell._FAST = _re.compile(r"(?!)")
    try:
        src = shell._Src(text, "t")
        if fast == "lines":
            clear_all()
            cold = shell.tokenize(src)
            toks = shell.tokenize(src)
            assert toks == cold
        else:
            toks = shell.Lexer(src).tokens()
    except ConfError as exc:
        return ("error", exc.line, exc.col, exc.construct)
    finally:
        shell._FAST = saved
    out = []
    for kind, value, pos in toks:
        if kind == shell._NL:
            if out and out[-1][0] != shell._NL:
                out.append((kind, None, None))
        else:
            if kind == shell._EOF and out and out[-1][0] == shell._NL:
                out.pop()          # a newline right before EOF changes nothing
            out.append((kind, value, pos))
    return out


def _equivalence_corpus():
    from support.confs import EXAMPLES, LABELS

    texts = [(EXAMPLES / lb / f"{lb}.ctys").read_text() for lb in LABELS]
    texts += [t for t, *_ in REJECTED]
    texts += [CASE_ARCH, CASE_DIST, CASE_ACC, 'X="${Y}"', "X=${Y:-a b}", 'X="${Y:-}"x',
              "X=$Y$Z", "X=${Y}z", 'X="$Y"', "X=a;;", "a|b) X=1;;", "X=1 ;& Y", "a||b|&c",
              "X=1\\\nY=2", "  # c\n\n  X=1 # c\nY=2", "X='a'b", 'X="a"b', "f()", "X=(a)"]
    return texts


def test_fast_path_tokens_equal_detailed_scanner():
    for text in _equivalence_corpus():
        slow = _tokens(text, False)
        assert _tokens(text, True) == slow, text
        assert _tokens(text, "lines") == slow, text


_PIECES = ["X=", "Y", "${", "}", "$", ":-", '"', "'", " ", "\n", ";", ";;", "|", "&", "(", ")",
           "#", "a", "=", "\\", "[", "]", "-", "*", "case", "in", "esac", "/", "\t", "\v",
           "\xa0", "\r", "\n  # c\n"]


@settings(max_examples=400, deadline=None, database=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=30))
def test_fast_path_equivalence_property(pieces):
    text = "".join(pieces)
    slow = _tokens(text, False)
    assert _tokens(text, True) == slow
    assert _tokens(text, "lines") == slow
