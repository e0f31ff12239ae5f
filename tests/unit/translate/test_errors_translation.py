"""Item 7 of issue 8: values libvirt cannot define are conf errors at translation, and a
failed start names QEMU's failing line, not its first warning."""
from __future__ import annotations

import pytest

from ctys_libvirt.conf import load_conf
from ctys_libvirt.errors import ConfError
from ctys_libvirt.model import HostCaps
from ctys_libvirt.qemu.stderr import failing_line
from ctys_libvirt.translate.request import make_request
from ctys_libvirt.host.facts import host_facts
from ctys_libvirt.translate.xml import build_domain
from support.translate import FIXED_CAPS, assert_valid, make_vm


def small_conf(tmp_path, body):
    p = tmp_path / "v" / "v.ctys"
    p.parent.mkdir(exist_ok=True)
    p.write_text("#@#MAGICID-QEMU\nLABEL=v\n" + body)
    return p


@pytest.mark.parametrize("mac", ["00:00:00:00:00:00", "01:00:5e:00:00:01", "ff:ff:ff:ff:ff:ff"])
def test_zero_and_multicast_mac_are_conf_errors(tmp_path, mac):
    p = small_conf(tmp_path, f'MAC0="{mac}"\n')
    with pytest.raises(ConfError, match="MAC0") as e:
        load_conf(p)
    assert e.value.exit_code == 3 and str(p) in str(e.value)


def test_unicast_mac_still_fine(tmp_path):
    assert load_conf(small_conf(tmp_path, 'MAC0="52:54:00:00:00:01"\n')).mac == "52:54:00:00:00:01"


@pytest.mark.parametrize("uuid", ["00000000-0000-0000-0000-000000000000", "0" * 32])
def test_nil_uuid_is_a_conf_error(tmp_path, uuid):
    with pytest.raises(ConfError, match="nil UUID"):
        load_conf(small_conf(tmp_path, f'#@#UUID = "{uuid}"\n'))


def test_vcpus_above_the_machine_maximum(tmp_path):
    caps = HostCaps(kvm=False, emulator=FIXED_CAPS.emulator, max_vcpus=255)
    with pytest.raises(ConfError, match=r"SMP=65535 is above the 255 vCPUs") as e:
        build_domain(make_vm(tmp_path, smp=65535), make_request(), host_facts(caps))
    assert e.value.exit_code == 3
    with pytest.raises(ConfError, match="SMP=256"):
        build_domain(make_vm(tmp_path, smp=256), make_request(), host_facts(caps))
    assert_valid(build_domain(make_vm(tmp_path, smp=255), make_request(), host_facts(caps)).xml)
    # without the host fact nothing is guessed
    assert_valid(build_domain(make_vm(tmp_path, smp=256), make_request(), host_facts(FIXED_CAPS)).xml)


LIBVIRT_MSG = ("internal error: process exited while connecting to monitor: "
               "2026-12-05T19:00:00.123456Z qemu-system-x86_64: warning: TCG doesn't support requested "
               "feature: CPUID.01H:ECX.vmx [bit 5]\n"
               "2026-12-05T19:00:00.124000Z qemu-system-x86_64: -blockdev {\"driver\":\"file\"}: "
               "Could not open '/x/hda.img': Permission denied")


def test_failing_line_skips_the_cpuid_warning():
    line = failing_line(LIBVIRT_MSG)
    assert line == ("internal error: process exited while connecting to monitor: qemu-system-x86_64: "
                    "-blockdev {\"driver\":\"file\"}: Could not open '/x/hda.img': Permission denied")
    assert "warning" not in line


def test_failing_line_plain_qemu_stderr():
    text = ("qemu-system-x86_64: warning: host doesn't support requested feature: CPUID.80000001H:ECX.svm\n"
            "qemu-system-x86_64: -soundhw sb16: invalid option\n")
    assert failing_line(text) == "qemu-system-x86_64: -soundhw sb16: invalid option"
    assert failing_line("qemu: warning: only this\n") == "qemu: warning: only this"
    assert failing_line("") == ""
    assert failing_line("single error") == "single error"
