"""CANCEL through VM stacks against real hypervisors: the outer VM runs on the system
libvirtd, the hypervisor "inside" it is a separate session libvirtd reached over ssh on
loopback (tests/support/stack.py), named by the outer VM's conf (#@#STACKURI).  Every
branch: reached, two levels, timeout at an inner level, unreachable, silent, FORCE,
--no-stack, no inside known, and the ctys-qemu spellings."""
from __future__ import annotations

import json
import socket
import threading

import libvirt
import pytest

from support.cli import run_cli
from support.loopback import free_port
from support.stack import start_vm
from support.cli import qemu as run_ctysq



def cancel_json(env, *args):
    p = run_cli("cancel", "--format", "json", *args, env=env)
    assert p.returncode == 0, (p.stdout, p.stderr)
    out = json.loads(p.stdout)
    assert len(out) == 1
    return out[0]


def own_start(r) -> float:
    """When the VM's own CANCEL began: after everything inside it was done."""
    return r["finished"] - r["seconds"]


@pytest.fixture
def root(vmroot):
    return vmroot


def test_poweroff_cancels_the_vm_inside_first(root, media, janitor, libvirt_conn, session_hvs, ssh_client):
    hv = session_hvs()
    inners = sorted(start_vm(root, media, hv=hv) for _ in range(2))   # cancelled concurrently
    outer = janitor.add(start_vm(root, media, stack_uri=hv.conf_uri))
    r = cancel_json(ssh_client.env, outer, "--timeout", "30")
    assert r["name"] == outer and r["reached"] is True and r["action"] == "shutdown"
    assert r["inside"] == hv.conf_uri
    assert sorted(c["name"] for c in r["inner"]) == inners
    for c in r["inner"]:
        assert c["action"] == "shutdown" and c["state"].startswith("shutoff"), c
        assert c["uri"] == hv.conf_uri
        assert c["finished"] <= own_start(r)          # inner ones off before the outer was asked
    for n in inners:
        assert hv.state(n) == libvirt.VIR_DOMAIN_SHUTOFF
    assert libvirt_conn.lookupByName(outer).state()[0] == libvirt.VIR_DOMAIN_SHUTOFF


def test_two_levels_deepest_first_and_table_output(root, media, janitor, session_hvs, ssh_client):
    hv1, hv2 = session_hvs(), session_hvs()
    deepest = start_vm(root, media, hv=hv2)
    middle = start_vm(root, media, hv=hv1, stack_uri=hv2.conf_uri)
    outer = janitor.add(start_vm(root, media, stack_uri=hv1.conf_uri))
    p = run_cli("cancel", outer, "--timeout", "30", env=ssh_client.env)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    # deepest first, indented by level, then the addressed VM
    order = [ln.split(":")[0].split(" [")[0].strip() for ln in lines if " -> " in ln]
    assert order == [deepest, middle, outer], p.stdout
    assert any(ln.startswith("        " + deepest) for ln in lines), p.stdout
    assert hv2.state(deepest) == libvirt.VIR_DOMAIN_SHUTOFF
    assert hv1.state(middle) == libvirt.VIR_DOMAIN_SHUTOFF


def test_two_levels_json_tree_and_order(root, media, janitor, session_hvs, ssh_client):
    hv1, hv2 = session_hvs(), session_hvs()
    deepest = start_vm(root, media, hv=hv2)
    middle = start_vm(root, media, hv=hv1, stack_uri=hv2.conf_uri)
    outer = janitor.add(start_vm(root, media, stack_uri=hv1.conf_uri))
    r = cancel_json(ssh_client.env, outer, "--timeout", "30")
    m = r["inner"][0]
    d = m["inner"][0]
    assert (m["name"], d["name"]) == (middle, deepest)
    assert (r["reached"], m["reached"], d["reached"]) == (True, True, None)
    assert m["inside"] == hv2.conf_uri and d["inside"] is None
    assert d["finished"] <= own_start(m) and m["finished"] <= own_start(r)
    assert [x["action"] for x in (d, m, r)] == ["shutdown"] * 3


def test_timeout_at_the_inner_level_destroys_it_there(root, media, janitor, session_hvs, ssh_client):
    hv = session_hvs()
    inner = start_vm(root, media, guest="hello", hv=hv)     # ignores ACPI
    outer = janitor.add(start_vm(root, media, stack_uri=hv.conf_uri))
    r = cancel_json(ssh_client.env, outer, "--timeout", "4")
    c = r["inner"][0]
    assert c["name"] == inner and c["action"] == "destroyed"
    assert any("did not shut down within 4s" in m for m in c["messages"]), c
    assert r["action"] == "shutdown" and c["finished"] <= own_start(r)
    assert hv.state(inner) == libvirt.VIR_DOMAIN_SHUTOFF


def test_unreachable_inside_is_reported_and_the_vm_cancelled_directly(root, media, janitor, ssh_client):
    dead = f"qemu+ssh://ctys-stack@127.0.0.1:{free_port()}/session"     # nothing listens
    outer = janitor.add(start_vm(root, media, stack_uri=dead))
    r = cancel_json(ssh_client.env, outer, "--timeout", "30")
    assert r["reached"] is False and r["inner"] == [] and r["action"] == "shutdown"
    assert r["inside"] == dead
    assert any(m.startswith(f"guest {outer} does not answer at {dead}") and "cancelled directly" in m
               for m in r["messages"]), r["messages"]


def test_silent_inside_times_out_at_the_connect_timeout(root, media, janitor, ssh_client):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    held = []
    stop = threading.Event()

    def accept():       # takes connections and never says a word (a hung sshd)
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                pass

    th = threading.Thread(target=accept, daemon=True)
    th.start()
    try:
        uri = f"qemu+ssh://ctys-stack@127.0.0.1:{srv.getsockname()[1]}/session"
        outer = janitor.add(start_vm(root, media, stack_uri=uri))
        env = dict(ssh_client.env, CTYS_STACK_CONNECT_TIMEOUT="2")
        r = cancel_json(env, outer, "--timeout", "30")
        assert r["reached"] is False and r["action"] == "shutdown"
        assert any("no answer within 2s" in m and "cancelled directly" in m for m in r["messages"]), r
    finally:
        stop.set()
        th.join()
        for c in held:
            c.close()
        srv.close()


def test_force_and_no_stack_leave_the_inside_alone(root, media, janitor, libvirt_conn, session_hvs, ssh_client):
    hv = session_hvs()
    inner = start_vm(root, media, hv=hv)
    o1 = janitor.add(start_vm(root, media, stack_uri=hv.conf_uri))
    o2 = janitor.add(start_vm(root, media, stack_uri=hv.conf_uri))
    r = cancel_json(ssh_client.env, o1, "--mode", "FORCE")
    assert r["action"] == "destroyed" and r["reached"] is None and r["inner"] == []
    r = cancel_json(ssh_client.env, o2, "--no-stack", "--timeout", "30")
    assert r["action"] == "shutdown" and r["reached"] is None and r["inner"] == []
    assert hv.state(inner) == libvirt.VIR_DOMAIN_RUNNING
    for o in (o1, o2):
        assert libvirt_conn.lookupByName(o).state()[0] == libvirt.VIR_DOMAIN_SHUTOFF


def test_no_inside_known_is_said(root, media, janitor, ssh_client):
    outer = janitor.add(start_vm(root, media, ip=""))      # no #@#IP0, no #@#STACKURI
    r = cancel_json(ssh_client.env, outer, "--timeout", "30")
    assert r["action"] == "shutdown" and r["inner"] == [] and r["reached"] is None
    assert r["inside"] is None
    assert f"inside of {outer} not known (no #@#IP0 and no #@#STACKURI in its conf); cancelled directly" \
        in r["messages"], r


def test_ctys_qemu_stack_is_the_default_and_force_skips_it(root, media, janitor, session_hvs, ssh_client):
    hv = session_hvs()
    inner = start_vm(root, media, hv=hv)
    o1 = janitor.add(start_vm(root, media, stack_uri=hv.conf_uri))
    o2 = janitor.add(start_vm(root, media, stack_uri=hv.conf_uri))
    p = run_ctysq("-a", f"CANCEL=L:{o1},FORCE,POWEROFF:30", env=ssh_client.env)
    assert p.returncode == 0, p.stderr
    assert inner not in p.stdout and hv.state(inner) == libvirt.VIR_DOMAIN_RUNNING
    p = run_ctysq("-a", f"CANCEL=L:{o2},STACK,POWEROFF:30", env=ssh_client.env)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    first = next(i for i, ln in enumerate(lines) if inner in ln)
    last = next(i for i, ln in enumerate(lines) if f"POWEROFF-SERVER localhost: {o2}" in ln)
    assert first < last, p.stdout
    assert hv.state(inner) == libvirt.VIR_DOMAIN_SHUTOFF


def test_ip0_address_and_ssh_port_lead_inside(root, media, janitor, session_hvs, ssh_client):
    """No STACKURI: IP0's address and ssh port (sub-field 5), #@#STACKUSER, #@#STACKPATH."""
    hv = session_hvs()
    inner = start_vm(root, media, hv=hv)
    outer = janitor.add(start_vm(
        root, media, ip=f"127.0.0.1%255.0.0.0%%eth0%{hv.port}",
        extra='#@#STACKUSER = "ctys-stack"\n#@#STACKPATH = "session"\nNIC=rtl8139\n'))
    r = cancel_json(ssh_client.env, outer, "--timeout", "30")
    assert r["inside"] == hv.conf_uri and r["reached"] is True
    assert [c["name"] for c in r["inner"]] == [inner]
    assert hv.state(inner) == libvirt.VIR_DOMAIN_SHUTOFF


def test_ip0_of_a_vm_without_network_device_is_not_tried(root, media, janitor, ssh_client):
    outer = janitor.add(start_vm(root, media, ip="10.0.0.7"))     # write_conf: NIC= (none)
    r = cancel_json(ssh_client.env, outer, "--timeout", "30")
    assert r["reached"] is None and r["inner"] == [] and r["action"] == "shutdown"
    assert any("no network device" in m for m in r["messages"]), r


def test_direct_backend_vms_propagate_too(root, media, session_hvs, ssh_client):
    """A VM the direct backend runs: its conf names the inside (and its lack of a NIC)."""
    hv = session_hvs()
    inner = start_vm(root, media, hv=hv)
    outer = start_vm(root, media, stack_uri=hv.conf_uri, backend="direct")
    bare = start_vm(root, media, ip="10.0.0.7", backend="direct")       # NIC= (none)
    try:
        r = cancel_json(ssh_client.env, outer, "--backend", "direct", "--timeout", "30")
        assert r["reached"] is True and [c["name"] for c in r["inner"]] == [inner]
        assert hv.state(inner) == libvirt.VIR_DOMAIN_SHUTOFF
        r = cancel_json(ssh_client.env, bare, "--backend", "direct", "--timeout", "30")
        assert r["reached"] is None and any("no network device" in m for m in r["messages"]), r
    finally:
        for n in (outer, bare):
            run_cli("cancel", n, "--backend", "direct", "--mode", "FORCE")


def test_an_untrusted_conf_does_not_steer_the_propagation(root, media, janitor, session_hvs, ssh_client):
    """A conf others may write could name any machine as its inside and have root's CANCEL
    stop every VM there: its inside is not used (and the VM still goes down)."""
    import os

    hv = session_hvs()
    inner = start_vm(root, media, hv=hv)
    outer = janitor.add(start_vm(root, media, stack_uri=hv.conf_uri))
    os.chmod(root / outer, 0o777)       # the VM directory: writable by everyone
    r = cancel_json(ssh_client.env, outer, "--timeout", "30")
    assert r["action"] == "shutdown" and r["inner"] == [] and r["reached"] is None
    assert any("not trusted" in m and "cancelled directly" in m for m in r["messages"]), r
    assert hv.state(inner) == libvirt.VIR_DOMAIN_RUNNING


def test_ctys_qemu_self_cancels_the_stack_vm_after_its_inside(root, media, janitor, libvirt_conn,
                                                              session_hvs, ssh_client):
    hv = session_hvs()
    inner = start_vm(root, media, hv=hv)
    outer = janitor.add(start_vm(root, media, stack_uri=hv.conf_uri))
    p = run_ctysq("-a", "CANCEL=ALL,SELF,POWEROFF:30", f"localhost[{outer}]", env=ssh_client.env)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    i = next(n for n, ln in enumerate(lines) if f"POWEROFF-SERVER localhost[{outer}]: {inner}: shutdown" in ln)
    o = next(n for n, ln in enumerate(lines) if f"POWEROFF-SERVER localhost: {outer}: shutdown" in ln)
    assert i < o, p.stdout
    assert hv.state(inner) == libvirt.VIR_DOMAIN_SHUTOFF
    assert libvirt_conn.lookupByName(outer).state()[0] == libvirt.VIR_DOMAIN_SHUTOFF
    p = run_ctysq("-a", "CANCEL=ALL,SELF", "localhost", env=ssh_client.env)
    assert p.returncode == 1 and "SELF on localhost" in p.stderr and p.stderr.count("\n") == 1, p.stderr


def test_a_vm_naming_its_own_hypervisor_as_inside_is_not_a_loop(root, media, session_hvs, ssh_client):
    hv = session_hvs()
    other = start_vm(root, media, hv=hv)
    selfish = start_vm(root, media, hv=hv, stack_uri=hv.conf_uri)
    p = run_cli("cancel", "-c", hv.uri, selfish, "--format", "json", "--timeout", "30", env=ssh_client.env)
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)[0]
    assert r["action"] == "shutdown" and r["reached"] is True
    got = {c["name"]: c["action"] for c in r["inner"]}
    assert got == {other: "shutdown", selfish: "skipped"}, r
    assert hv.state(selfish) == libvirt.VIR_DOMAIN_SHUTOFF


def test_guest_without_libvirt_gets_ctys_libvirt_over_the_same_ssh(root, media, janitor, session_hvs,
                                                                   libvirtless_guests, ssh_client):
    """libvirt over ssh fails inside the guest, ssh works: ctys-libvirt runs there and
    cancels its VMs (here: those of a session libvirtd its --connect is pinned to)."""
    hv = session_hvs()
    inner = start_vm(root, media, hv=hv)
    port = libvirtless_guests(hv)
    outer = janitor.add(start_vm(root, media, stack_uri=f"qemu+ssh://root@127.0.0.1:{port}/system"))
    r = cancel_json(ssh_client.env, outer, "--timeout", "30")
    assert r["reached"] is True and r["action"] == "shutdown", r
    assert [(c["name"], c["action"]) for c in r["inner"]] == [(inner, "shutdown")], r
    assert r["inner"][0]["finished"] <= own_start(r)
    assert any("ctys-libvirt there cancelled 1 VM(s) first" in m for m in r["messages"]), r
    assert hv.state(inner) == libvirt.VIR_DOMAIN_SHUTOFF


def test_a_plain_vm_gets_no_stack_note_unless_verbose(root, media, janitor, ssh_client):
    """A VM without stack keys is the common case: the text output does not explain, for
    every VM, that there is nothing inside it to reach; -v (and JSON, above) still say it."""
    note = "not known (no #@#IP0 and no #@#STACKURI in its conf)"
    quiet = janitor.add(start_vm(root, media, ip=""))
    p = run_cli("cancel", quiet, "--timeout", "30", env=ssh_client.env)
    assert p.returncode == 0, p.stderr
    assert f"{quiet}: POWEROFF -> shutdown" in p.stdout and note not in p.stdout + p.stderr
    loud = janitor.add(start_vm(root, media, ip=""))
    p = run_cli("-v", "cancel", loud, "--timeout", "30", env=ssh_client.env)
    assert p.returncode == 0, p.stderr
    assert f"  inside of {loud} {note}; cancelled directly" in p.stdout
