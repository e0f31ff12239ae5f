"""Parsing stack addresses host[vm1][vm2] (targets of both front ends)."""
from __future__ import annotations

import pytest

from ctys_libvirt.errors import UsageError
from ctys_libvirt.ctys.targets import parse_target, parse_targets
from ctys_libvirt.ctys.targets import split_stack


def test_split():
    assert split_stack("host[vm1][vm2]") == ("host", ("vm1", "vm2"))
    assert split_stack("root@h:22[vm1]") == ("root@h:22", ("vm1",))
    assert split_stack("plainhost") == ("plainhost", ())
    assert split_stack("[::1]:22") == ("[::1]:22", ())        # an IPv6 host, not a stack


@pytest.mark.parametrize("word", ["h[vm1", "h[vm1]x", "h[]", "h[a b]", "h[-oProxyCommand=x]",
                                  "h[vm1][[x]]", "h" + "[v]" * 9])
def test_malformed_stacks_are_usage_errors(word):
    with pytest.raises(UsageError):
        split_stack(word)


def test_stack_targets():
    t = parse_target("ops@lab02:2222[vm1][vm2](--keyfile /k)")
    assert (t.host, t.user, t.port, t.stack, t.keyfile) == ("lab02", "ops", 2222, ("vm1", "vm2"), "/k")
    assert t.display == "lab02[vm1][vm2]"
    assert not t.is_local and t.base.stack == () and t.base.host == "lab02"
    assert parse_target("localhost[vm1]").base.is_local
    # different stacks on one host are different targets
    ts = parse_targets(["localhost[a]", "localhost[a][b]", "localhost[a]", "localhost"])
    assert [t.display for t in ts] == ["localhost[a]", "localhost[a][b]", "localhost"]
