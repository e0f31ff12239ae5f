"""Multi-host over real loopback transports: a test-only sshd (qemu+ssh, remote ENUMERATE over
ssh) and a TCP listener in front of the running libvirtd (qemu+tcp).  Only 127.0.0.1."""
from __future__ import annotations

import socket
import uuid as uuidlib

import pytest

from ctys_libvirt.inventory import collect
from ctys_libvirt.ctys.enum_record import join_record
from ctysq_helpers import one_error, qemu
from inv_helpers import write_conf as write_header_conf
from lifecycle_helpers import domain_xml, janitor, unique_label, write_conf  # noqa: F401
from multihost_helpers import sshd, tcp_proxy  # noqa: F401

pytestmark = pytest.mark.libvirt


@pytest.fixture
def env(tmp_path):
    (tmp_path / "groups").mkdir()
    return {"CTYS_INVENTORY_DB": str(tmp_path / "inv.sqlite"), "CTYS_GROUPS_PATH": str(tmp_path / "groups"),
            "CTYS_SCAN_CACHE_DIR": str(tmp_path / "scancache")}


@pytest.fixture
def running_domain(libvirt_conn, janitor, vmroot, media):
    """A transient TCG domain carrying our metadata (hello guest, 16 MiB)."""
    name = unique_label("mh")
    janitor.add(name)
    xml = domain_xml(name, str(uuidlib.uuid4()), media["hello"], vmroot / f"{name}.log")
    libvirt_conn.createXML(xml, 0)
    return name


def _rows(text, label_field=2):
    return [l.split(";") for l in text.splitlines() if l.strip()]


def test_ssh_uri_list_merged_with_local(sshd, env, running_domain):
    p = qemu("-a", "LIST=MACHINE", "localhost", sshd.target, env=env)
    assert p.returncode == 0, p.stderr
    rows = [r for r in _rows(p.stdout) if r[2] == running_domain]
    hosts = sorted(r[0] for r in rows)
    assert hosts == sorted([socket.gethostname(), "127.0.0.1"])
    assert all(len(r) == 22 for r in rows)
    # the same domain seen through both connections: identical apart from the host column
    assert rows[0][1:] == rows[1][1:]


def test_ssh_connect_uri(sshd, env, running_domain):
    p = qemu("--connect", sshd.uri, "-a", "LIST=LABEL", "-X", env=env)
    assert p.returncode == 0, p.stderr
    assert running_domain in p.stdout.splitlines()


def test_tcp_transport_list(tcp_proxy, env, running_domain):
    p = qemu("--transport", "tcp", "-a", "LIST=HOST,LABEL", "-X", f"127.0.0.1:{tcp_proxy.port}", env=env)
    assert p.returncode == 0, p.stderr
    assert f"127.0.0.1;{running_domain}" in p.stdout.splitlines()
    c = qemu("--connect", tcp_proxy.uri, "-a", "INFO", "-X", env=env)
    assert c.returncode == 0, c.stderr
    assert c.stdout.split(";")[6].strip() == tcp_proxy.uri


def test_per_target_transport_context(tcp_proxy, sshd, env, running_domain):
    p = qemu("-a", "LIST=HOST,LABEL", "-X",
             f"127.0.0.1:{tcp_proxy.port}(--transport tcp)", sshd.target, env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines().count(f"127.0.0.1;{running_domain}") == 2


def test_remote_enumerate_over_ssh(sshd, env, tmp_path):
    write_header_conf(tmp_path / "vms", "r1", uuid="ab" * 16, mac="00:50:56:00:00:01", ip="10.9.9.1")
    write_header_conf(tmp_path / "vms", "r2")
    p = qemu("-a", f"ENUMERATE=B:{tmp_path / 'vms'},MACHINE", sshd.target, env=env)
    assert p.returncode == 0, p.stderr
    local = collect.enumerate_local([tmp_path / "vms"]).records
    expected = [join_record(["127.0.0.1"] + r[1:]) for r in local]
    assert p.stdout.splitlines() == expected


def test_ctys_libvirt_enumerate_host_option(sshd, env, tmp_path):
    from ctysq_helpers import libvirt_cli

    write_header_conf(tmp_path / "vms", "h1")
    p = libvirt_cli("enumerate", str(tmp_path / "vms"), "--host", sshd.target, "--format", "records", env=env)
    assert p.returncode == 0, p.stderr
    assert [l.split(";")[:3] for l in p.stdout.splitlines()] == [["127.0.0.1", "QEMU", "h1"]]
    bad = libvirt_cli("enumerate", str(tmp_path / "vms"), "--host", "root@127.0.0.1:1", env=env)
    assert bad.returncode == 4 and "127.0.0.1: ssh to 127.0.0.1 failed" in bad.stderr


def test_enumerate_local_and_remote_merged(sshd, env, tmp_path):
    write_header_conf(tmp_path / "vms", "m1")
    p = qemu("-a", f"ENUMERATE=B:{tmp_path / 'vms'},HOST,LABEL", "-X", "localhost", sshd.target, env=env)
    assert p.returncode == 0, p.stderr
    assert sorted(p.stdout.splitlines()) == sorted([f"{socket.gethostname()};m1", "127.0.0.1;m1"])


def test_group_file_with_context_and_a_failing_member(sshd, env, tmp_path):
    write_header_conf(tmp_path / "vms", "g1")
    grp = tmp_path / "groups" / "lab"
    grp.write_text("# test lab\n"
                   f"CONTEXT'(--ssh-command {sshd.wrapper} --keyfile {sshd.keyfile} --no-verify)'\n"
                   f"root@127.0.0.1:{sshd.port}\n"
                   "root@127.0.0.1:1\n")           # nothing listens on port 1
    p = qemu("-a", f"ENUMERATE=B:{tmp_path / 'vms'},HOST,LABEL", "-X", "lab", env=env)
    assert p.returncode == 4
    assert p.stdout.splitlines() == ["127.0.0.1;g1"]
    errs = [l for l in p.stderr.splitlines() if "error:" in l]
    assert len(errs) == 1 and errs[0].startswith("ctys-qemu: error: 127.0.0.1: ssh to 127.0.0.1 failed")
    assert "Traceback" not in p.stderr


def test_group_include_and_explicit_group_option(sshd, env, tmp_path):
    write_header_conf(tmp_path / "vms", "g2")
    (tmp_path / "groups" / "base").write_text(
        f"root@127.0.0.1:{sshd.port}'(--ssh-command {sshd.wrapper} --keyfile {sshd.keyfile})'\n")
    (tmp_path / "groups" / "all").write_text("#include base\n")
    p = qemu("-a", f"ENUMERATE=B:{tmp_path / 'vms'},LABEL", "-X", "--group", "all", env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["g2"]


def test_remote_host_lacking_ctys_libvirt(sshd, env, tmp_path):
    (tmp_path / "vms").mkdir()
    p = qemu("-a", f"ENUMERATE=B:{tmp_path / 'vms'}", "--remote-cmd", "ctys-libvirt-not-installed",
             sshd.target, env=env)
    one_error(p, 4, "127.0.0.1: remote host lacks ctys-libvirt-not-installed", "install ctys-libvirt")


def test_unreachable_ssh_host_list(env, sshd):
    p = qemu("-a", "LIST", f"root@127.0.0.1:1(--ssh-command {sshd.wrapper})", env=env, timeout=60)
    assert p.returncode == 4
    one_error(p, 4, "127.0.0.1: ")


@pytest.mark.qemu
def test_create_over_ssh_cancel_over_tcp(sshd, tcp_proxy, env, vmroot, media, libvirt_conn, janitor):
    import libvirt

    label = unique_label("mh")
    janitor.add(label)
    write_conf(vmroot, label, image=media["hello"])
    c = qemu("-a", f"CREATE=L:{label},CONSOLE:NONE", "--base", str(vmroot), sshd.target, env=env)
    assert c.returncode == 0, c.stderr
    assert c.stdout.startswith(f"CREATE 127.0.0.1: {label}: running")
    dom = libvirt_conn.lookupByName(label)
    assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
    # hello ignores ACPI: POWEROFF:1 escalates to destroy after one second
    k = qemu("--transport", "tcp", "-a", f"CANCEL=L:{label},POWEROFF:1", f"127.0.0.1:{tcp_proxy.port}", env=env)
    assert k.returncode == 0, k.stderr
    assert k.stdout.startswith(f"POWEROFF-SERVER 127.0.0.1: {label}: destroyed")
    assert dom.state()[0] == libvirt.VIR_DOMAIN_SHUTOFF
