"""Stack addresses host[vm1][vm2] in both front ends, against real hypervisors: the outer VM
runs on the system libvirtd, the hypervisors inside the VMs are session libvirtds behind
loopback sshds (tests/support/stack.py).  Chain: localhost[outer] -> hv1 holding middle;
localhost[outer][middle] -> hv2 holding deepest."""
from __future__ import annotations

import json
from types import SimpleNamespace

import libvirt
import pytest

from support.guests import build_media
from support.cli import assert_one_line_error, qemu as run_ctysq, run_cli
from support.confs import write_conf
from support.domains import purge_domain, unique_label
from support.stack import give_to_stack_user, start_vm


@pytest.fixture(scope="module")
def chain(tmp_path_factory, session_hvs, ssh_client, libvirt_uri):
    import os
    import shutil
    import uuid

    root = __import__("pathlib").Path("/var/tmp/ctys-libvirt-tests") / uuid.uuid4().hex[:12]
    root.mkdir(mode=0o755, parents=True)
    os.chmod(root.parent, 0o755)
    media = build_media(root / "media")
    hv1, hv2 = session_hvs(), session_hvs()
    deepest = start_vm(root, media, hv=hv2)
    middle = start_vm(root, media, hv=hv1, stack_uri=hv2.conf_uri)
    outer = start_vm(root, media, stack_uri=hv1.conf_uri)
    bare = start_vm(root, media)        # no IP0, no STACKURI
    conn = libvirt.open(libvirt_uri)
    try:
        yield SimpleNamespace(root=root, media=media, hv1=hv1, hv2=hv2, outer=outer, middle=middle,
                              deepest=deepest, bare=bare, env=ssh_client.env)
    finally:
        for n in (outer, bare):
            purge_domain(conn, n)
        conn.close()
        shutil.rmtree(root, ignore_errors=True)


def records(text):
    return [ln.split(";") for ln in text.splitlines() if ln.strip()]


def test_list_inside_a_vm_names_the_containing_machine(chain):
    p = run_cli("list", "--stack", f"localhost[{chain.outer}]", "--format", "records", env=chain.env)
    assert p.returncode == 0, p.stderr
    recs = records(p.stdout)
    assert [(r[0], r[2]) for r in recs] == [(chain.outer, chain.middle)], p.stdout
    p = run_cli("list", "--stack", f"localhost[{chain.outer}][{chain.middle}]", "--format", "json",
                env=chain.env)
    assert p.returncode == 0, p.stderr
    assert [(i["host"], i["name"]) for i in json.loads(p.stdout)] == [(chain.middle, chain.deepest)]


def test_ctys_qemu_list_on_stack_targets(chain):
    p = run_ctysq("-a", "LIST=MACHINE", f"localhost[{chain.outer}]",
                  f"localhost[{chain.outer}][{chain.middle}]", env=chain.env)
    assert p.returncode == 0, p.stderr
    got = {(r[0], r[2]) for r in records(p.stdout) if len(r) > 3}
    assert got == {(chain.outer, chain.middle), (chain.middle, chain.deepest)}, p.stdout


def test_enumerate_inside_a_vm(chain, sshd):
    """ENUMERATE runs ctys-libvirt inside the VM over ssh.  The inside here is root's login
    on the test sshd of support.loopback (ctys-libvirt on its PATH; the session user cannot
    run this checkout's venv), named by the VM's #@#STACKURI."""
    outer = start_vm(chain.root, chain.media, stack_uri=f"qemu+ssh://root@127.0.0.1:{sshd.port}/system")
    try:
        env = {"CTYS_STACK_SSH_COMMAND": sshd.wrapper, "CTYS_STACK_KEYFILE": sshd.keyfile,
               "CTYS_STACK_NO_VERIFY": "1"}
        base = str(chain.root)
        p = run_cli("enumerate", "-H", f"localhost[{outer}]", base, "--format", "records", env=env)
        assert p.returncode == 0, p.stderr
        recs = records(p.stdout)
        assert recs and {r[0] for r in recs} == {outer}, p.stdout
        assert {chain.middle, chain.outer} <= {r[2] for r in recs}
        p = run_ctysq("-a", f"ENUMERATE=MACHINE,B:{base}", f"localhost[{outer}]", env=env)
        assert p.returncode == 0, p.stderr
        recs = records(p.stdout)
        assert recs and {r[0] for r in recs} == {outer}, p.stdout
    finally:
        conn = libvirt.open("qemu:///system")
        purge_domain(conn, outer)
        conn.close()


def test_create_and_cancel_through_a_stack_address(chain):
    label = unique_label("acpi")
    conf = write_conf(chain.root, label, image=chain.media["acpi"], ip="")
    give_to_stack_user(conf.parent)
    p = run_cli("create", f"localhost[{chain.outer}][{label}]", "--base", str(chain.root),
                "--console", "NONE", env=chain.env)
    assert p.returncode == 0, p.stderr
    assert chain.hv1.state(label) == libvirt.VIR_DOMAIN_RUNNING
    p = run_cli("cancel", f"localhost[{chain.outer}][{label}]", "--mode", "FORCE", env=chain.env)
    assert p.returncode == 0, p.stderr
    assert chain.hv1.state(label) == libvirt.VIR_DOMAIN_SHUTOFF
    # ctys-qemu: the target is the machine inside which the VM runs
    p = run_ctysq("-a", f"CREATE=L:{label},B:{chain.root},CONSOLE:NONE", f"localhost[{chain.outer}]",
                  env=chain.env)
    assert p.returncode == 0, p.stderr
    assert chain.hv1.state(label) == libvirt.VIR_DOMAIN_RUNNING
    p = run_ctysq("-a", f"CANCEL=L:{label},FORCE,POWEROFF:0", f"localhost[{chain.outer}]", env=chain.env)
    assert p.returncode == 0, p.stderr
    assert chain.hv1.state(label) == libvirt.VIR_DOMAIN_SHUTOFF


def test_missing_tcp_address_of_a_level(chain):
    p = run_cli("list", "--stack", f"localhost[{chain.bare}]", env=chain.env)
    assert_one_line_error(p, 2, f"Missing the TCP/IP address of VM:{chain.bare}")
    p = run_ctysq("-a", "LIST", f"localhost[{chain.bare}]", env=chain.env)
    assert p.returncode == 2 and f"Missing the TCP/IP address of VM:{chain.bare}" in p.stderr, p.stderr
    p = run_cli("cancel", f"localhost[{chain.bare}][x]", env=chain.env)
    assert_one_line_error(p, 2, f"Missing the TCP/IP address of VM:{chain.bare}")


def test_unknown_vm_in_a_stack_address(chain):
    p = run_cli("list", "--stack", f"localhost[{chain.outer}][nosuchvm]", env=chain.env)
    assert_one_line_error(p, 2, "no VM nosuchvm on " + chain.hv1.conf_uri)
    p = run_cli("list", "--stack", "localhost[-oProxyCommand=x]", env=chain.env)
    assert_one_line_error(p, 1, "bad VM")
