"""How the hypervisor inside a VM is found from its #@# keys and the site settings, and
what a conf may not put into that URI."""
from __future__ import annotations

import pytest

from ctys_libvirt.errors import UsageError
from ctys_libvirt.stack.inside import StackSite, inside_of, ip0_fields

SITE = StackSite()


def test_ip0_sub_fields_give_address_and_ssh_port():
    assert ip0_fields("172.20.6.40%255.255.255.0%172.20.6.1%eth0%2222%172.20.6.1") == ("172.20.6.40", 2222)
    assert ip0_fields("172.20.6.40") == ("172.20.6.40", None)
    assert ip0_fields("172.20.6.40%%%eth0%%") == ("172.20.6.40", None)
    assert ip0_fields("10.0.0.1%x%y%z%22,10.0.0.2") == ("10.0.0.1", 22)
    assert ip0_fields("") == (None, None)


def test_default_uri_is_root_over_ssh_to_the_system_libvirt():
    i = inside_of("vm", {"IP0": "172.20.6.40%255.255.255.0%%eth0%2222"}, SITE)
    assert i.source == "IP0"
    assert i.uri == "qemu+ssh://root@172.20.6.40:2222/system?no_tty=1"
    assert i.display == "qemu+ssh://root@172.20.6.40:2222/system"


def test_conf_keys_choose_user_and_path_site_adds_the_ssh_settings():
    site = StackSite(user="ops", ssh_command="/opt/ssh", keyfile="/k/id", no_verify=True)
    i = inside_of("vm", {"IP0": "10.1.2.3", "STACKUSER": "lab", "STACKPATH": "/session"}, site)
    assert i.uri == "qemu+ssh://lab@10.1.2.3/session?keyfile=/k/id&no_verify=1&command=/opt/ssh&no_tty=1"
    assert inside_of("vm", {"IP0": "10.1.2.3"}, site).uri.startswith("qemu+ssh://ops@10.1.2.3/system?")


def test_stackuri_wins_over_ip0():
    i = inside_of("vm", {"IP0": "10.1.2.3", "STACKURI": "qemu+tcp://inner.example:16509/system"}, SITE)
    assert (i.source, i.uri) == ("STACKURI", "qemu+tcp://inner.example:16509/system")
    i = inside_of("vm", {"STACKURI": "qemu+ssh://u@127.0.0.1:2200/session"}, SITE)
    assert i.uri == "qemu+ssh://u@127.0.0.1:2200/session?no_tty=1"


@pytest.mark.parametrize("uri,why", [
    ("qemu+ssh://h/system?command=/tmp/evil", "no URI parameters"),
    ("qemu+ssh://h/system?keyfile=/root/.ssh/id_rsa", "no URI parameters"),
    ("qemu+ssh://h/system?socket=/run/x", "no URI parameters"),
    ("qemu+ext://h/system", "use qemu+ssh"),
    ("qemu+unix:///system", "use qemu+ssh"),
    ("test:///default", "use qemu+ssh"),
    ("qemu+ssh://-oProxyCommand=x/system", "not a DNS name"),
    ("qemu+ssh://h/etc/passwd", "/system or /session"),
])
def test_a_conf_cannot_choose_programs_files_or_odd_uris(uri, why):
    i = inside_of("vm", {"STACKURI": uri}, SITE)
    assert i.uri is None and why in i.reason and "refused" in i.reason


@pytest.mark.parametrize("keys,why", [
    ({}, "no #@#IP0 and no #@#STACKURI"),
    ({"IP0": ""}, "no #@#IP0"),
    ({"IP0": "-oProxyCommand=touch"}, "is not an address"),
    ({"IP0": "10.0.0.1", "STACKUSER": "-l"}, "not a user name"),
    ({"IP0": "10.0.0.1", "STACKPATH": "/embed"}, "use system or session"),
])
def test_unknown_or_bad_insides_are_reasons_not_uris(keys, why):
    i = inside_of("vm", keys, SITE)
    assert i.uri is None and why in i.reason


def test_site_settings_from_the_environment():
    s = StackSite.from_env({"CTYS_STACK_USER": "lab", "CTYS_STACK_PATH": "session",
                            "CTYS_STACK_KEYFILE": "/k", "CTYS_STACK_NO_VERIFY": "1",
                            "CTYS_STACK_CONNECT_TIMEOUT": "2.5"})
    assert (s.user, s.path, s.keyfile, s.no_verify, s.connect_timeout) == ("lab", "session", "/k", True, 2.5)
    assert StackSite.from_env({}) == StackSite()
    for bad in ({"CTYS_STACK_CONNECT_TIMEOUT": "soon"}, {"CTYS_STACK_PATH": "embed"},
                {"CTYS_STACK_USER": "-x"}):
        with pytest.raises(UsageError):
            StackSite.from_env(bad)


def test_a_vm_without_network_device_is_not_reached_over_ip0():
    i = inside_of("vm", {"IP0": "10.0.0.7", "_NETWORK": "0"}, SITE)
    assert i.uri is None and "no network device" in i.reason
    i = inside_of("vm", {"STACKURI": "qemu+ssh://h/system", "_NETWORK": "0"}, SITE)
    assert i.uri == "qemu+ssh://root@h/system?no_tty=1"


def test_only_vms_of_this_machine_have_their_conf_trust_checked():
    from types import SimpleNamespace

    from ctys_libvirt.stack.cancel import _local

    for uri, local in (("qemu:///system", True), ("qemu+unix:///system?socket=/x", True),
                       ("qemu+ssh://root@127.0.0.1:2222/system", False),
                       ("qemu+tcp://h/system", False)):
        assert _local(SimpleNamespace(name="libvirt", uri=uri)) is local, uri
    assert _local(SimpleNamespace(name="direct", uri=None))
