"""HostCaps from the local host (mode bits of /dev/kvm) and from libvirt."""
import os

import pytest

from ctys_libvirt.host import caps as hostcaps
from ctys_libvirt.host.caps import _kvm_usable_by, local_host_caps


def test_local_caps_on_this_host():
    caps = local_host_caps()
    assert caps.default_network_active is False
    if os.access("/usr/bin/qemu-system-x86_64", os.X_OK):
        assert caps.emulator == "/usr/bin/qemu-system-x86_64"


def test_kvm_missing_device(tmp_path):
    assert local_host_caps(kvm_device=str(tmp_path / "kvm")).kvm is False


def test_regular_file_is_not_kvm(tmp_path):
    f = tmp_path / "kvm"
    f.write_text("")
    os.chmod(f, 0o666)
    assert _kvm_usable_by("root", str(f)) is False


def test_kvm_group_rule_matches_host():
    # /dev/kvm root:kvm 0660 and libvirt-qemu in group kvm -> usable; 0600 -> not
    import grp
    import pwd
    import stat

    try:
        st = os.stat("/dev/kvm")
        pw = pwd.getpwnam("libvirt-qemu")
    except (OSError, KeyError):
        pytest.skip("no /dev/kvm or libvirt-qemu user")
    groups = {pw.pw_gid} | {g.gr_gid for g in grp.getgrall() if "libvirt-qemu" in g.gr_mem}
    expected = bool(st.st_mode & 0o006 == 0o006 or (st.st_gid in groups and st.st_mode & 0o060 == 0o060))
    assert stat.S_ISCHR(st.st_mode)
    assert _kvm_usable_by("libvirt-qemu") is expected


@pytest.mark.libvirt
def test_libvirt_caps(libvirt_conn):
    caps = hostcaps.libvirt_host_caps(libvirt_conn)
    assert caps.emulator and os.path.basename(caps.emulator).startswith("qemu")
    assert "x86_64" in caps.arches
    net_active = False
    try:
        net_active = bool(libvirt_conn.networkLookupByName("default").isActive())
    except Exception:
        pass
    assert caps.default_network_active is net_active
    assert caps.kvm == ("<domain type='kvm'" in libvirt_conn.getCapabilities())
