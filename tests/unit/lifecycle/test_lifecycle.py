"""The lifecycle layer (ctys_libvirt.lifecycle) on its own: one ADDRESS -> conf rule, the
backend choice with its fallback rules, and the Lifecycle object's one cleanup path (a
CLI0 VM destroyed and every backend closed on every way out, also after a failed launch).
Fake backends record what was done to them; the real ones are in
tests/integration/test_lifecycle_layer.py."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import List

import pytest

from ctys_libvirt import lifecycle
from ctys_libvirt.errors import (AmbiguousAddressError, BackendError, LibvirtUnavailable,
                                 NotFoundError, NotRunning, UsageError)
from ctys_libvirt.lifecycle import Lifecycle, choice
from ctys_libvirt.model import BootRequest, CancelMode, ConsoleType, CreateOptions, CreateResult, DomainInfo
from support.fakeqemu import vms

DEAD_URI = "qemu+unix:///system?socket=/nonexistent/libvirt-sock"


class FakeBackend:
    """Records calls; ``fail_create`` makes create raise (a failed launch)."""

    def __init__(self, name="direct", *, fail_create=None, domains=(), fail_cancel=None):
        self.name = name
        self.calls: List[tuple] = []
        self.fail_create = fail_create
        self.fail_cancel = fail_cancel
        self.domains = {d: "running" for d in domains}
        self.closed = 0

    def create(self, vm, request, options):
        self.calls.append(("create", vm.label))
        if self.fail_create is not None:
            raise self.fail_create
        self.domains[vm.label] = "running"
        return CreateResult(name=vm.label, uuid="u", backend=self.name, state="running",
                            console=request.console.value)

    def cancel(self, target, mode, timeout=20.0):
        self.calls.append(("cancel", target, CancelMode(mode)))
        if self.fail_cancel is not None:
            raise self.fail_cancel
        if target not in self.domains:
            raise NotRunning(f"{target} is not running")
        del self.domains[target]

    def lookup(self, target):
        if target in self.domains:
            return DomainInfo(name=target, uuid="u", state=self.domains[target], backend=self.name,
                              ours=True)
        return None

    def list(self, include_inactive=True):
        return [self.lookup(n) for n in self.domains]

    def close(self):
        self.closed += 1


@pytest.fixture
def vm(tmp_path):
    return dataclasses.replace(vms.debian5(tmp_path), label="ctystest-life")


def _req(console=ConsoleType.NONE):
    return BootRequest(console=console)


# -- the one cleanup path --------------------------------------------------------------

def test_failed_launch_closes_the_backend_and_destroys_nothing(vm):
    be = FakeBackend(fail_create=BackendError("QEMU failed to start"))
    with pytest.raises(BackendError, match="failed to start"):
        with Lifecycle(be) as life:
            life.create(vm, _req(ConsoleType.CLI0), CreateOptions())
    assert be.closed == 1
    assert be.calls == [("create", vm.label)]           # nothing to destroy: the backend undid it


def test_cli0_vm_is_destroyed_when_the_command_fails_after_the_start(vm):
    said = []
    be = FakeBackend()
    with pytest.raises(RuntimeError, match="client died"):
        with Lifecycle(be, say=said.append) as life:
            life.create(vm, _req(ConsoleType.CLI0), CreateOptions())
            raise RuntimeError("client died")            # e.g. the console could not attach
    assert ("cancel", vm.label, CancelMode.FORCE) in be.calls
    assert vm.label not in be.domains and be.closed == 1
    assert said == [f"{vm.label}: destroyed (CLI0 console ended)"]


def test_cli0_vm_already_gone_is_not_an_error(vm):
    said = []
    be = FakeBackend()
    with Lifecycle(be, say=said.append) as life:
        life.create(vm, _req(ConsoleType.CLI0), CreateOptions())
        be.domains.clear()                                # QEMU went away with the console
    assert said == [] and be.closed == 1


def test_other_consoles_outlive_the_command(vm):
    be = FakeBackend()
    with Lifecycle(be) as life:
        life.create(vm, _req(ConsoleType.VNC), CreateOptions())
    assert be.domains == {vm.label: "running"}
    assert [c[0] for c in be.calls] == ["create"] and be.closed == 1


def test_every_backend_is_closed_even_when_the_destroy_fails(vm):
    be, extra = FakeBackend(fail_cancel=BackendError("monitor gone")), FakeBackend()
    with pytest.raises(BackendError, match="monitor gone"):
        with Lifecycle(be) as life:
            life.add(extra)
            life.create(vm, _req(ConsoleType.CLI0), CreateOptions())
    assert be.closed == 1 and extra.closed == 1


def test_shutdown_twice_closes_once(vm):
    be = FakeBackend()
    life = Lifecycle(be)
    life.shutdown()
    life.shutdown()
    assert be.closed == 1


def test_direct_cli0_continues_a_held_vm_once_attached_then_destroys_it(vm, monkeypatch):
    """CLI0 on the direct backend: QEMU held at -S is continued (RESUME) only after the
    console socket is connected, and destroyed when the console ends."""
    be = FakeBackend("direct")
    order = []

    def attach_socket(self, name, path, on_connected=None):
        order.append(("attached", name, path))
        if on_connected is not None:
            on_connected()
        return "detached"

    monkeypatch.setattr(Lifecycle, "_attach_socket", attach_socket)
    be.create = lambda v, r, o: (be.domains.__setitem__(v.label, "paused"),
                                 CreateResult(name=v.label, uuid="u", backend="direct", state="paused",
                                              console="CLI0", serial="/run/x/serial.sock"))[1]
    with Lifecycle(be) as life:
        res = life.create(vm, _req(ConsoleType.CLI0), CreateOptions())
        assert life.run_cli0(res) == "detached"
        be.calls.append(("after console",))
    assert order == [("attached", vm.label, "/run/x/serial.sock")]
    assert be.calls == [("cancel", vm.label, CancelMode.RESUME), ("after console",),
                        ("cancel", vm.label, CancelMode.FORCE)]


# -- finding domains on several backends -------------------------------------------------

def test_find_tries_each_backend_and_keeps_the_first_error(tmp_path):
    lv, direct = FakeBackend("libvirt", domains=["a"]), FakeBackend("direct", domains=["b"])
    life = Lifecycle(lv)
    life.add(direct)
    assert life.find("a") == (lv, "a")
    assert life.find("b") == (direct, "b")
    with pytest.raises(NotFoundError, match="nosuch"):
        life.find(str(tmp_path / "nosuch.ctys"))
    assert [(b.name, n) for b, n in life.all_names()] == [("libvirt", "a"), ("direct", "b")]


# -- ADDRESS -> conf: one rule, one error type ----------------------------------------

def _conf(d: Path, label: str) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    p = d / f"{label}.ctys"
    p.write_text(f"#@#MAGICID-QEMU\n#@#LABEL = \"{label}\"\nLABEL={label}\n")
    return p


def test_resolve_conf_forms(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("CTYS_INVENTORY_DB", str(tmp_path / "none.sqlite"))
    base = tmp_path / "vms"
    p = _conf(base / "vm1", "vm1")
    link = tmp_path / "link.ctys"
    link.symlink_to(p)
    assert lifecycle.resolve_conf(str(p)) == p
    assert lifecycle.resolve_conf(str(link)) == link          # as addressed: not resolved
    assert lifecycle.resolve_conf(str(p.parent)) == p         # a VM directory
    assert lifecycle.resolve_conf("vm1", [base]) == p         # a label under --base
    assert lifecycle.resolve_conf("L:vm1", [base]) == p
    monkeypatch.chdir(base)
    assert lifecycle.resolve_conf("vm1/vm1.ctys") == p        # relative -> absolute


def test_resolve_conf_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("CTYS_INVENTORY_DB", str(tmp_path / "none.sqlite"))
    base = tmp_path / "vms"
    _conf(base / "a", "twin")
    _conf(base / "b", "twin")
    with pytest.raises(NotFoundError, match="no QEMU VM matches"):
        lifecycle.resolve_conf("nosuch", [base])
    with pytest.raises(NotFoundError, match="no such conf file"):
        lifecycle.resolve_conf(str(tmp_path / "gone.ctys"))
    with pytest.raises(AmbiguousAddressError, match="ambiguous"):
        lifecycle.resolve_conf("twin", [base])
    with pytest.raises(UsageError, match="not a UUID"):
        lifecycle.resolve_conf("U:xyz", [base])


def test_resolve_conf_reports_a_corrupt_inventory_db_through_warn(tmp_path, monkeypatch):
    base = tmp_path / "vms"
    p = _conf(base / "vm1", "vm1")
    db = tmp_path / "inventory.sqlite"
    db.write_bytes(b"not a database" * 100)
    said = []
    assert lifecycle.resolve_conf("vm1", [base], db=db, warn=said.append) == p
    assert len(said) == 1 and str(db) in said[0]


# -- --backend -> an open backend --------------------------------------------------------

def test_open_backend_kinds(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with lifecycle.open_backend("direct", qemu="/usr/bin/qemu-system-x86_64") as be:
        assert be.name == "direct" and be.qemu == "/usr/bin/qemu-system-x86_64"
    with pytest.raises(UsageError, match="unknown --backend 'xen'"):
        lifecycle.open_backend("xen")


def test_auto_falls_back_to_direct_only_when_no_libvirt_was_named(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("LIBVIRT_DEFAULT_URI", DEAD_URI)       # a local URI: falling back is fine
    said = []
    assert lifecycle.open_backend("auto", warn=said.append).name == "direct"
    assert len(said) == 1 and said[0].endswith("using the direct backend (--backend libvirt to insist)")
    with pytest.raises(LibvirtUnavailable):                   # --connect names where it must run
        lifecycle.open_backend("auto", DEAD_URI)
    with pytest.raises(LibvirtUnavailable):                   # libvirt insisted on
        lifecycle.open_backend("libvirt")


def test_auto_takes_direct_for_a_kqemu_conf_without_opening_libvirt(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(choice, "open_libvirt", lambda *a, **k: pytest.fail("libvirt opened"))
    vm = dataclasses.replace(vms.centos55(tmp_path), accelerator="KQEMU")
    assert lifecycle.open_backend("auto", None, vm).name == "direct"


def test_lifecycle_open_adds_the_direct_backend_beside_libvirt_under_auto(monkeypatch):
    lv = FakeBackend("libvirt")
    monkeypatch.setattr(choice, "open_libvirt", lambda *a, **k: lv)
    with Lifecycle.open("auto", with_direct=True) as life:
        assert [b.name for b in life.backends] == ["libvirt", "direct"]
    with Lifecycle.open("libvirt", with_direct=True) as life:
        assert [b.name for b in life.backends] == ["libvirt"]
    assert lv.closed == 2


def test_front_ends_open_no_backend_themselves():
    """Both front ends reach backends only through the lifecycle layer; the one exception
    is the `argv` command asking the direct backend which VNC display is free (no VM)."""
    import re

    cli = Path(__file__).resolve().parents[2] / "cli"
    found = []
    for f in sorted(cli.glob("*.py")):
        for n, line in enumerate(f.read_text().splitlines(), 1):
            if re.search(r"\bopen_backend\(|\bLibvirtBackend\(|\bDirectBackend\(|\.close\(\)\s*$", line) \
                    and "lifecycle." not in line:
                found.append(f"{f.name}:{n}: {line.strip()}")
    allowed = {"cmd_direct.py": ("DirectBackend(base=runtime_dir).pick_display()", "conn.close()"),
               "cmd_xml.py": ("conn.close()",), "complete.py": ("conn.close()",),
               "ctys_qemu.py": ("socket.create_connection",)}
    left = [f for f in found if not any(a in f for a in allowed.get(f.split(":", 1)[0], ()))]
    assert not left, "\n".join(left)
