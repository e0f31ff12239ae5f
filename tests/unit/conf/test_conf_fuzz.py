"""Property/fuzz tests: for any input (mutated example confs, generated shell-ish text,
hostile snippets) the reader returns a VmConfig or raises ConfError -- never another
exception, never hangs, and never runs anything (canary files must not appear)."""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.confs import CENTOS_CTX, LABELS, example_text
from ctys_libvirt.conf import evaluate_text, load_conf, read_keys
from ctys_libvirt.errors import ConfError
from ctys_libvirt.model import VmConfig

WORK = Path(tempfile.gettempdir()) / f"ctys-conf-fuzz-{os.getpid()}"   # made by _workdir
CANARY = WORK / "pwned"
CANARY_DIR = WORK / "keep"
VMDIR = WORK / "fuzzvm"
CONF = VMDIR / "fuzzvm.ctys"

HOSTILE = [
    f"$(touch {CANARY})", f"`touch {CANARY}`", f";touch {CANARY}", f"\ntouch {CANARY}\n",
    f"X=$(touch {CANARY})", f"X=`touch {CANARY}`", f'X="$(touch {CANARY})"', f"> {CANARY}",
    f";rm -rf {CANARY_DIR}", f"\nrm -rf {CANARY_DIR}\n", f"X=1 && rm -rf {CANARY_DIR}",
    f"$(rm -rf {CANARY_DIR})", f"<(touch {CANARY})", f"X=$((1+2))", f"eval touch {CANARY}",
    f"source {CANARY}", f". {CANARY}", f"export X=1", f"exec touch {CANARY}",
    f"f() {{ touch {CANARY}; }}", f"for i in 1; do touch {CANARY}; done",
    f"cat <<EOF\ntouch {CANARY}\nEOF\n", f"X=1 | touch {CANARY}", f"touch {CANARY} &",
    "${X:=y}", "${!X}", "${#X}", "${X[0]}", "X=(a b)", "[[ -n x ]]", "${X:?boom}",
    "${A:-" * 80 + "x" + "}" * 80, "if [ a ]; then\n" * 60 + "fi\n" * 60,
    "case x in\n" * 50, "'", '"', "\\", "${", "$", "}", "esac", "fi", "then", ";;", "(", ")",
    "X=${X//?/$X$X}", "X=$X$X$X$X", "${X##*a*a*a*a*b}", "[ -f /etc/passwd ]",
]
META = "$`'\"\\{}()[];&|<>#=*?!-:%/ \t\n\r@^,~+.0aZ_"
FRAGMENTS = [
    "X=1", "X=${Y:-d}", 'X="${Y:--localtime} "', "X=${Y#/}", "X=${Y##*/}", "X=${Y%.*}",
    "X=${Y// /}", "X=${Y/a/b}", "X='q'\"w\"e", "X=", "X=;", "[ -n \"$Y\" ]&&X=2",
    '[ "$X" == "$Y" ]||Y=3', "if [ -z \"$Y\" ];then", "elif [ a ]; then", "else", "fi",
    "case ${Y} in", "case \"$MYDIST\" in", "[xX]86_64|amd64) X=4;;", "*) X=5;;", "a)", ";;",
    "esac", "# comment", "#@#LABEL = \"fuzzvm\"", "LABEL=fuzzvm", "MEMSIZE=64", "SMP=2",
    "ARCH=i386", "MAC0=00:50:56:00:00:01", "Y=${Y:-$CTYSWRAPPERPATH/x}", "HDC=${CTYSWRAPPERPATH}/",
    "X=a\\", "", "   ", "\t",
]

BASES = [example_text(label) for label in LABELS]


@pytest.fixture(scope="module", autouse=True)
def _workdir():
    VMDIR.mkdir(parents=True)
    yield
    shutil.rmtree(WORK, ignore_errors=True)


class Hang(Exception):
    pass


@contextlib.contextmanager
def deadline(seconds: float):
    def _alarm(_sig, _frame):
        raise Hang(f"reader took more than {seconds}s")
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def check_text(text: str) -> None:
    CANARY_DIR.mkdir(exist_ok=True)
    (CANARY_DIR / "sentinel").write_text("x")
    CONF.write_bytes(text.encode("utf-8", "surrogatepass"))
    with deadline(5):
        for force in (True, False):
            try:
                vm = load_conf(CONF, CENTOS_CTX, force=force)
                assert isinstance(vm, VmConfig)
            except ConfError as exc:
                assert exc.one_line() and "\n" not in exc.one_line()
        try:
            read_keys(CONF)
        except ConfError:
            pass
        try:
            evaluate_text(text, {"CTYSWRAPPERPATH": str(VMDIR)}, str(CONF))
        except ConfError:
            pass
    assert not CANARY.exists(), "a conf snippet was executed"
    assert (CANARY_DIR / "sentinel").exists(), "a conf snippet was executed"


def _apply(text: str, op) -> str:
    kind, a, b = op
    n = len(text)
    lines = text.split("\n")
    if kind == "ins":
        p = a % (n + 1)
        return text[:p] + b + text[p:]
    if kind == "del":
        p = a % (n + 1)
        return text[:p] + text[p + (len(b) % 40) + 1:]
    if kind == "dupchar":
        p = a % max(n, 1)
        return text[:p] + text[p:p + 1] * (len(b) % 5 + 2) + text[p:]
    if kind == "dupline":
        i = a % len(lines)
        return "\n".join(lines[:i + 1] + [lines[i]] + lines[i + 1:])
    if kind == "delline":
        i = a % len(lines)
        return "\n".join(lines[:i] + lines[i + 1:])
    if kind == "swap":
        i, j = a % len(lines), len(b) % len(lines)
        lines[i], lines[j] = lines[j], lines[i]
        return "\n".join(lines)
    if kind == "splice":
        p = a % (n + 1)
        return text[:p] + HOSTILE[len(b) % len(HOSTILE)] + text[p:]
    # splice a hostile snippet as its own line
    i = a % len(lines)
    return "\n".join(lines[:i] + [HOSTILE[len(b) % len(HOSTILE)]] + lines[i:])


_ops = st.tuples(
    st.sampled_from(["ins", "del", "dupchar", "dupline", "delline", "swap", "splice", "spliceline"]),
    st.integers(min_value=0, max_value=10 ** 6),
    st.text(alphabet=st.sampled_from(list(META)) | st.characters(), max_size=12),
)


@settings(max_examples=1500, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(base=st.sampled_from(BASES), ops=st.lists(_ops, min_size=1, max_size=6))
def test_mutated_example_confs(base, ops):
    text = base
    for op in ops:
        text = _apply(text, op)
    check_text(text)


_line = st.one_of(
    st.sampled_from(FRAGMENTS),
    st.sampled_from(HOSTILE),
    st.text(alphabet=st.sampled_from(list(META)), max_size=30),
    st.builds(lambda a, b: a + b, st.sampled_from(FRAGMENTS), st.text(alphabet=st.sampled_from(list(META)), max_size=8)),
)


@settings(max_examples=1000, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(lines=st.lists(_line, max_size=25), sep=st.sampled_from(["\n", "\r\n", ";", "\n\n"]))
def test_generated_confs(lines, sep):
    header = '#@#MAGICID-QEMU\n#@#LABEL = "fuzzvm"\nLABEL=fuzzvm\nMEMSIZE=64\n'
    check_text(header + sep.join(lines))


def test_canary_snippets_are_rejected_not_run():
    """Each hostile snippet on its own line of a valid conf -> ConfError, canary absent."""
    header = '#@#MAGICID-QEMU\nLABEL=fuzzvm\nMEMSIZE=64\n'
    for snippet in HOSTILE[:24]:
        CONF.write_text(header + snippet + "\n")
        with pytest.raises(ConfError):
            load_conf(CONF, CENTOS_CTX)
        assert not CANARY.exists()
        assert (CANARY_DIR / "sentinel").exists() or not CANARY_DIR.exists()
