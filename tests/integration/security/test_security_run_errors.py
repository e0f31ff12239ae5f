"""Issue 8 item 7 against the real libvirtd and QEMU: a failed start names QEMU's failing
line (not the CPUID warning before it); vCPUs above the machine type's maximum are a conf
error before anything is defined."""
from __future__ import annotations

import pytest

from support.cli import assert_one_line_error, run_cli
from support.confs import write_conf
from support.domains import unique_label

BAD_ARGS = 'ARGSADD="-cpu qemu64,+avx512f -device ctys-no-such-device"\n'


@pytest.mark.libvirt
def test_libvirt_start_failure_shows_the_error_not_the_warning(vmroot, media, janitor, libvirt_conn):
    label = janitor.add(unique_label("failline"))
    conf = write_conf(vmroot, label, image=media["hello"], extra=BAD_ARGS)
    r = run_cli("create", str(conf), "--backend", "libvirt", "--console", "NONE", "--transient")
    line = assert_one_line_error(r, 4, label, "ctys-no-such-device")
    assert "avx512f" not in line and "warning" not in line.lower(), line
    assert label not in libvirt_conn.listDefinedDomains()


def test_direct_start_failure_shows_the_error_not_the_warning(vmroot, media, tmp_path):
    label = unique_label("failline")
    conf = write_conf(vmroot, label, image=media["hello"], extra=BAD_ARGS)
    r = run_cli("create", str(conf), "--backend", "direct", "--console", "NONE",
                env={"CTYS_RUNTIME_DIR": str(vmroot / "rt")})
    line = assert_one_line_error(r, 4, label, "ctys-no-such-device")
    assert "avx512f" not in line and "warning" not in line.lower(), line
    assert not (vmroot / "rt" / label).exists()      # nothing of the failed start stays


@pytest.mark.libvirt
@pytest.mark.parametrize("smp", [256, 65535])
def test_vcpus_above_machine_maximum_is_a_conf_error(vmroot, media, janitor, libvirt_conn, smp):
    label = janitor.add(unique_label("smp"))
    conf = write_conf(vmroot, label, image=media["hello"], extra=f"SMP={smp}\n")
    r = run_cli("create", str(conf), "--backend", "libvirt", "--console", "NONE")
    assert_one_line_error(r, 3, str(conf), f"SMP={smp}", "vCPUs")
    assert label not in libvirt_conn.listDefinedDomains()
    assert all(d.name() != label for d in libvirt_conn.listAllDomains())
