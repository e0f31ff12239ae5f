"""cli.table: the one renderer of ctys-libvirt's human tables."""
from __future__ import annotations

from ctys_libvirt.cli.table import columns, pairs


def test_columns_align_and_strip_trailing_blanks():
    out = columns(("STATE", "LABEL", "PID"), [("running", "vm1", 12), ("shutoff", "a-longer-name", None)])
    assert out.splitlines() == ["STATE    LABEL          PID",
                                "running  vm1            12",
                                "shutoff  a-longer-name"]


def test_control_characters_never_reach_the_terminal():
    out = columns(("LABEL",), [("evil\x1b]0;owned\x07name",), ("tab\there",)])
    assert "\x1b" not in out and "\x07" not in out and "\t" not in out
    assert out.splitlines()[1] == "evil?]0;owned?name"


def test_pairs_align_values():
    assert pairs([("URI", "qemu:///system"), ("Domain types", "kvm, qemu")]).splitlines() == \
        ["URI:          qemu:///system", "Domain types: kvm, qemu"]
