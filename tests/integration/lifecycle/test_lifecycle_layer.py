"""The lifecycle layer (ctys_libvirt.lifecycle) against the real libvirtd and QEMU: a
conf address turned into a started VM, the one cleanup path after a failed launch and
after a failure once a CLI0 VM runs, the console's NotFoundError, the fallback rules."""
from __future__ import annotations

import libvirt
import pytest

from ctys_libvirt import lifecycle
from ctys_libvirt.errors import LibvirtUnavailable, NotFoundError
from ctys_libvirt.lifecycle import Lifecycle
from ctys_libvirt.model import CancelMode, ConsoleType, CreateOptions
from ctys_libvirt.translate.request import make_request
from support.cli import BOGUS_URI
from support.confs import write_conf
from support.domains import janitor, unique_label  # noqa: F401

pytestmark = [pytest.mark.libvirt, pytest.mark.qemu]


def _closed(be) -> bool:
    try:
        be.conn.getLibVersion()
    except libvirt.libvirtError:
        return True
    return False


def test_create_by_label_then_cancel_through_find(vmroot, media, janitor, libvirt_uri, libvirt_conn):
    label = janitor.add(unique_label("life"))
    write_conf(vmroot, label, image=media["hello"])
    vm = lifecycle.load_vm(label, [vmroot], use_db=False)
    with Lifecycle.open("libvirt", libvirt_uri, vm) as life:
        res = life.create(vm, make_request(console="NONE"), CreateOptions(timeout=30))
        assert res.state == "running" and res.backend == "libvirt"
    assert _closed(life.backend)
    assert libvirt_conn.lookupByName(label).isActive()     # NONE: it outlives the command
    with Lifecycle.open("libvirt", libvirt_uri, with_direct=True) as life:
        be, name = life.find(label, [vmroot])
        assert (be.name, name) == ("libvirt", label)
        r = life.cancel(be, name, CancelMode.FORCE, 10.0)
        assert r.action == "destroyed" and r.state.startswith("shutoff")
    assert not libvirt_conn.lookupByName(label).isActive()


def test_failed_launch_runs_the_cleanup(vmroot, janitor, libvirt_uri, libvirt_conn):
    """The image is missing: create fails inside the block; shutdown still closes the
    connection and nothing is left defined or running."""
    label = janitor.add(unique_label("lifefail"))
    conf = write_conf(vmroot, label, extra='HDDBOOTIMAGE="${CTYSWRAPPERPATH}/missing.img"\n')
    vm = lifecycle.load_vm(str(conf))
    with pytest.raises(NotFoundError, match="missing.img"):
        with Lifecycle.open("libvirt", libvirt_uri, vm) as life:
            life.create(vm, make_request(console="CLI0"), CreateOptions(timeout=30))
    assert _closed(life.backend)
    with pytest.raises(libvirt.libvirtError):
        libvirt_conn.lookupByName(label)


def test_cli0_vm_is_destroyed_when_the_command_fails_after_the_start(vmroot, media, janitor, libvirt_uri,
                                                                      libvirt_conn):
    label = janitor.add(unique_label("lifecli0"))
    write_conf(vmroot, label, image=media["hello"])
    vm = lifecycle.load_vm(str(vmroot / label))
    said = []
    with pytest.raises(RuntimeError, match="the console could not attach"):
        with Lifecycle.open("libvirt", libvirt_uri, vm, say=said.append) as life:
            res = life.create(vm, make_request(console="CLI0"), CreateOptions(timeout=30))
            assert res.state == "running" and libvirt_conn.lookupByName(label).isActive()
            raise RuntimeError("the console could not attach")
    assert not libvirt_conn.lookupByName(label).isActive()
    assert said == [f"{label}: destroyed (CLI0 console ended)"]
    assert _closed(life.backend)


def test_console_of_an_unknown_vm_is_libvirts_not_found(libvirt_uri, tmp_path, monkeypatch):
    monkeypatch.setenv("CTYS_RUNTIME_DIR", str(tmp_path / "rt"))
    monkeypatch.setenv("CTYS_INVENTORY_DB", str(tmp_path / "none.sqlite"))
    name = unique_label("nosuch")
    for kind in ("auto", "libvirt", "direct"):
        with pytest.raises(NotFoundError, match=name):
            lifecycle.console(name, kind=kind, uri=libvirt_uri, bases=[tmp_path])


def test_explicit_uri_is_never_replaced_by_the_direct_backend():
    with pytest.raises(LibvirtUnavailable):
        Lifecycle.open("auto", BOGUS_URI)
