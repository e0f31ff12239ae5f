"""split_words is shlex.split: the plain-word fast path must split exactly as shlex does."""
import shlex

from hypothesis import given, settings
from hypothesis import strategies as st

from ctys_libvirt.util.words import split_words

CHARS = st.sampled_from(list("ab -=,:/.\t\n\r'\"\\\x0b\x0c\xa0\u2003#$;|&()"))


def _split(f, text):
    try:
        return f(text)
    except ValueError as exc:
        return ("ValueError", str(exc))


@settings(max_examples=3000)
@given(st.lists(CHARS, max_size=16).map("".join))
def test_split_words_is_shlex_split(text):
    assert _split(split_words, text) == _split(shlex.split, text)


def test_split_words_examples():
    assert split_words("-k de  -no-hpet\t-usb") == ["-k", "de", "-no-hpet", "-usb"]
    assert split_words("-append 'root=/dev/hda1 single'") == ["-append", "root=/dev/hda1 single"]
    assert split_words("a\xa0b") == ["a\xa0b"]          # not a blank for shlex
    assert split_words("") == []
