"""Connection loss while `create --wait-install` waits: the same LibvirtUnavailable a plain
create reports (exit 4, "lost the libvirt connection"), not an internal error."""
from __future__ import annotations

import libvirt
import pytest

from ctys_libvirt.backends.libvirt import LibvirtBackend
from ctys_libvirt.errors import LibvirtUnavailable


class _Lost(libvirt.libvirtError):
    def __init__(self):
        Exception.__init__(self, "End of file while reading data: Input/output error")

    def get_error_code(self):
        return libvirt.VIR_ERR_SYSTEM_ERROR


class _Dom:
    def UUIDString(self):
        return "3f2a6c1e-9b7d-4e0a-8c5b-1d2e3f4a5b6c"

    def state(self):
        raise _Lost()


class _Conn:
    def lookupByName(self, name):
        return _Dom()

    def isAlive(self):
        return 0


class _Watcher:
    def wait_until(self, uuid, predicate, timeout):
        return predicate()


def test_connection_lost_while_waiting_for_the_install_run():
    be = LibvirtBackend.__new__(LibvirtBackend)
    be.uri = "qemu:///system"
    be.conn = _Conn()
    be._watcher = _Watcher()
    with pytest.raises(LibvirtUnavailable, match="lost the libvirt connection") as e:
        be.wait_inactive("vm1", 1.0)
    assert e.value.exit_code == 4
