"""`ctys-libvirt list` over several --connect URIs (issue 12): the hosts are asked in
parallel, each row says which URI it came from, and one dead host is one error line and
exit 4 while the others are still listed."""
from __future__ import annotations

import json
import uuid as uuidlib

import pytest

from support.cli import BOGUS_URI, run_cli
from support.domains import domain_xml, unique_label

pytestmark = pytest.mark.libvirt


def test_list_several_uris_isolates_a_dead_host(tcp_proxy, libvirt_conn, janitor, vmroot, media):
    name = janitor.add(unique_label("mhl"))
    libvirt_conn.createXML(domain_xml(name, str(uuidlib.uuid4()), media["hello"],
                                      vmroot / f"{name}.log"), 0)
    uris = ["qemu:///system", BOGUS_URI, tcp_proxy.uri]
    p = run_cli("list", "--format", "json", *[a for u in uris for a in ("-c", u)])
    assert p.returncode == 4, p.stderr
    errors = p.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("ctys-libvirt: error: ")
    assert BOGUS_URI in errors[0] and "Traceback" not in p.stderr
    rows = [r for r in json.loads(p.stdout) if r["name"] == name]
    # the same running domain through both live connections, in the order given
    assert [r["extra"]["uri"] for r in rows] == ["qemu:///system", tcp_proxy.uri]
    assert all(r["state"] == "running" and r["ours"] for r in rows)

    table = run_cli("list", "-c", "qemu:///system", "-c", tcp_proxy.uri)
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split()[0] == "URI"
    mine = [line.split() for line in table.stdout.splitlines() if name in line]
    assert sorted(r[0] for r in mine) == sorted(["qemu:///system", tcp_proxy.uri])


def test_list_several_uris_refuses_direct_backend():
    p = run_cli("list", "-c", "qemu:///system", "-c", BOGUS_URI, "--backend", "direct")
    assert p.returncode == 1
    assert p.stderr.startswith("ctys-libvirt: error: several --connect URIs")
