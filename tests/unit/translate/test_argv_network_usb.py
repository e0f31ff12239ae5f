"""Direct argv details found by review: --network is validated and its values escaped
(a ',' must not smuggle in QEMU options such as script=); USB boot uses bootindex only
where the release has it (0.14+)."""
import pytest
from support.translate import make_vm, touch

from ctys_libvirt.errors import UsageError
from ctys_libvirt.qemu.probe import synthetic_probe
from ctys_libvirt.translate.argv import build_argv, parse_network
from ctys_libvirt.host.facts import host_facts
from ctys_libvirt.translate.plan import resolve_plan
from ctys_libvirt.translate.request import make_request


def _plan(tmp_path, **req):
    vm = make_vm(tmp_path, "netvm")
    return resolve_plan(vm, make_request(console="NONE", **req), host_facts())


@pytest.mark.parametrize("bad", ["bogus", "vde:", "vde", "user:x", "slirp"])
def test_bad_network_is_usage_error(bad):
    with pytest.raises(UsageError, match="--network"):
        parse_network(bad)


@pytest.mark.parametrize("version,expected", [
    ("7.2.0", ["-netdev", "tap,id=n0,ifname=a,,script=/tmp/x"]),
    ("0.9.1", ["-net", "tap,ifname=a,,script=/tmp/x"]),
])
def test_tap_name_comma_is_escaped(tmp_path, version, expected):
    argv = build_argv(_plan(tmp_path), synthetic_probe(version), network="tap:a,script=/tmp/x")
    pairs = [argv[i:i + 2] for i in range(len(argv) - 1)]
    assert expected in pairs, argv


@pytest.mark.parametrize("version,bootindex", [("0.12.5", False), ("0.14.1", True), ("7.2.0", True)])
def test_usb_bootindex_only_where_supported(tmp_path, version, bootindex):
    usb = touch(tmp_path / "usb.img")
    argv = build_argv(_plan(tmp_path, bootmode=f"USB%{usb}"), synthetic_probe(version))
    devs = [argv[i + 1] for i, a in enumerate(argv) if a == "-device" and "usb-storage" in argv[i + 1]]
    assert devs and (("bootindex=" in devs[0]) == bootindex), argv
