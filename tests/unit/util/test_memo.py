"""The memo layer: bounded in two generations, entries in use survive a flush, clear_all
forgets everything (Memo and once)."""
from ctys_libvirt.util.memo import Memo, clear_all, once


def test_memo_is_bounded_and_keeps_what_is_used():
    m = Memo("test bounded", max_entries=4)
    for i in range(4):
        m.put(f"k{i}", i)
    assert [m.get(f"k{i}") for i in range(4)] == [0, 1, 2, 3]
    m.put("k4", 4)                      # generation full: k0..k3 become the old one
    assert m.get("k0") == 0             # ...and a hit moves k0 back
    for i in range(5, 9):
        m.put(f"k{i}", i)               # next flush: k1..k3 (unused) are gone, k0 is old
    assert m.get("k1") is None and m.get("k3") is None
    assert len(m) <= 2 * 4
    for i in range(9, 20):
        m.put(f"k{i}", i)               # two more flushes without using k0
    assert m.get("k0") is None and m.get("k19") == 19


def test_memo_bounds_key_characters_and_skips_long_keys():
    m = Memo("test chars", max_entries=1000, max_chars=10, max_key=6)
    m.put("x" * 7, 1)
    assert m.get("x" * 7) is None       # longer than max_key: never stored
    m.put("aaaaa", 1)
    m.put("bbbbb", 2)                   # 10 characters held
    m.put("c", 3)                       # starts a new generation
    assert (m.get("aaaaa"), m.get("bbbbb"), m.get("c")) == (1, 2, 3)
    assert m.get("zz") is None


def test_clear_all_forgets_memos_and_onces():
    m = Memo("test clear", max_entries=8)
    m.put("a", 1)
    calls = []

    @once
    def fact():
        calls.append(1)
        return len(calls)

    assert fact() == fact() == 1
    clear_all()
    assert m.get("a") is None
    assert fact() == 2
