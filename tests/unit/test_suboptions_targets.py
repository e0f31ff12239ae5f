"""Targets, groups and libvirt URIs (ctys-cli.md §1.5)."""
from __future__ import annotations

import pytest

from ctys_libvirt.errors import NotFoundError, UsageError
from ctys_libvirt.ctys.targets import Target, expand_group, parse_target, parse_targets, ssh_argv, ssh_target_of, target_uri


@pytest.fixture
def groups(tmp_path, monkeypatch):
    d = tmp_path / "groups"
    d.mkdir()
    monkeypatch.setenv("CTYS_GROUPS_PATH", str(d))
    return d


def test_user_at_host():
    t = parse_target("bob@lab01")
    assert (t.user, t.host, t.port) == ("bob", "lab01", None)
    assert target_uri(t) == "qemu+ssh://bob@lab01/system?no_tty=1"


def test_host_only_and_transport():
    assert target_uri(parse_target("lab01"), transport="tcp") == "qemu+tcp://lab01/system"
    assert target_uri(parse_target("lab01"), transport="tls") == "qemu+tls://lab01/system"


def test_host_port():
    t = parse_target("root@127.0.0.1:2222")
    assert target_uri(t) == "qemu+ssh://root@127.0.0.1:2222/system?no_tty=1"


def test_context_options():
    t = parse_target("root@h(-l x --transport tcp --port 16509)")
    assert (t.user, t.transport, t.port) == ("x", "tcp", 16509)
    assert target_uri(t) == "qemu+tcp://x@h:16509/system"


def test_context_ssh_options_in_uri():
    t = parse_target("h(--keyfile /k/id --no-verify --ssh-command /bin/myssh)")
    assert target_uri(t) == "qemu+ssh://h/system?keyfile=/k/id&no_verify=1&command=/bin/myssh&no_tty=1"


def test_context_connect_uri():
    t = parse_target("h(--connect qemu+tcp://10.0.0.1/system)")
    assert target_uri(t) == "qemu+tcp://10.0.0.1/system"


def test_local_target_uses_local_uri():
    assert parse_target("localhost").is_local
    assert target_uri(parse_target("localhost"), local_uri="qemu:///session") == "qemu:///session"


def test_bad_context_option():
    # (-d 3) is a valid ctys context (accepted and ignored, see test_ctys_spec_audit.py)
    with pytest.raises(UsageError, match="unsupported context option '-q'"):
        parse_target("h(-q 3)")


def test_unbalanced_parenthesis():
    with pytest.raises(UsageError, match="malformed target"):
        parse_target("h(-l x")


def test_bad_transport():
    with pytest.raises(UsageError, match="unknown transport 'pigeon'"):
        parse_target("h(--transport pigeon)")


def test_empty_user_or_host():
    with pytest.raises(UsageError):
        parse_target("@h")
    with pytest.raises(UsageError):
        parse_target("bob@")


def test_lists_and_global_context():
    ts = parse_targets(["(-l admin)", "a,b", "c(-l x)", "a"])
    assert [(t.host, t.user) for t in ts] == [("a", "admin"), ("b", "admin"), ("c", "x")]


def test_superposition_last_wins():
    # ctys-cli.md §1.5: '(-d 3)' host01 host02'(-d 1)' -> host01 3, host02 1
    ts = parse_targets(["(--transport tcp)", "a", "b(--transport tls)"])
    assert [t.transport for t in ts] == ["tcp", "tls"]


def test_group_word_options_win_over_member_options(groups):
    (groups / "lab").write_text("h1(--port 1)\nh2\n")
    ts = parse_targets(["(--port 5)", "lab(--port 7)"])
    assert [t.port for t in ts] == [7, 7]
    assert [t.port for t in parse_targets(["(--port 5)", "lab"])] == [5, 5]
    assert [t.port for t in parse_targets(["lab"])] == [1, None]


def test_group_file(groups):
    (groups / "lab").write_text("# lab hosts\nCONTEXT'(-l ops)'\nroot@lab02 lab03,lab04'(--port 2)'\n")
    ts = parse_targets(["lab"])
    assert [(t.host, t.user, t.port) for t in ts] == [("lab02", "ops", None), ("lab03", "ops", None),
                                                      ("lab04", "ops", 2)]


def test_group_include_nested_and_subpath(groups):
    (groups / "tst").mkdir()
    (groups / "tst" / "lab").write_text("h1\n")
    (groups / "all").write_text("#include tst/lab\nh2\n")
    assert [t.host for t in parse_targets(["all"])] == ["h1", "h2"]


def test_group_include_loop(groups):
    (groups / "a").write_text("#include b\n")
    (groups / "b").write_text("#include a\n")
    with pytest.raises((UsageError, NotFoundError), match="loop|itself"):
        parse_targets(["a"])


def test_group_include_unknown(groups):
    (groups / "a").write_text("#include nothere\n")
    with pytest.raises(NotFoundError, match="unknown group"):
        parse_targets(["a"])


def test_unknown_explicit_group(groups):
    with pytest.raises(NotFoundError, match="unknown group 'ghost'") as ei:
        expand_group("ghost")
    assert ei.value.exit_code == 2


def test_word_that_is_no_group_is_a_host(groups):
    assert [t.host for t in parse_targets(["ghost"])] == ["ghost"]


def test_group_name_with_user_is_a_host(groups):
    (groups / "lab").write_text("h1\n")
    assert [t.host for t in parse_targets(["bob@lab"])] == ["lab"]


def test_ssh_argv_batchmode():
    t = parse_target("root@127.0.0.1:2222(--keyfile /k --no-verify)")
    argv = ssh_argv(t, ["ctys-libvirt", "enumerate", "--format", "records", "/a b"])
    assert argv[0] == "ssh"
    assert "BatchMode=yes" in argv and "-p" in argv and argv[argv.index("-p") + 1] == "2222"
    assert argv[argv.index("-i") + 1] == "/k"
    assert "UserKnownHostsFile=/dev/null" in argv
    assert argv[-2] == "root@127.0.0.1"
    assert argv[-1] == "ctys-libvirt enumerate --format records '/a b'"


def test_ssh_target_of_connect_uri():
    t = Target(host="", uri="qemu+ssh://bob@h:2200/system?keyfile=/k&no_verify=1")
    st = ssh_target_of(t)
    assert (st.host, st.user, st.port, st.keyfile, st.no_verify) == ("h", "bob", 2200, "/k", True)
    assert ssh_target_of(Target(host="", uri="qemu:///system")) is None
    tcp = ssh_target_of(Target(host="", uri="qemu+tcp://h:16509/system"))
    assert tcp.host == "h" and tcp.port is None   # the libvirt port is not an ssh port
