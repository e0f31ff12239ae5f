"""translate/ is pure: host facts (capabilities, image formats, multiboot kernels) come in
from the caller as model.HostFacts; nothing in translate/ reads an image header, asks
libvirt or imports host/ or backends/ (the static import rule: test_architecture)."""
from __future__ import annotations

import subprocess
import sys
import textwrap

from support.translate import FIXED_CAPS, make_vm, touch

from ctys_libvirt.host.facts import host_facts
from ctys_libvirt.model import HostCaps, HostFacts
from ctys_libvirt.translate.plan import resolve_plan
from ctys_libvirt.translate.request import make_request
from ctys_libvirt.translate.xml import build_domain


def test_formats_and_multiboot_come_from_the_facts_not_the_files(tmp_path):
    vm = make_vm(tmp_path, accelerator="KVM")     # hda.img: 512 zero bytes, raw by its header
    hda = str(vm.hdd_boot_image)
    kernel = touch(tmp_path / "vmlinuz", b"\x00" * 8192)     # no multiboot header
    req = make_request(bootmode="KERNEL", kernel=str(kernel), console="NONE")
    fake = HostFacts(caps=HostCaps(kvm=True, emulator="/fake/qemu"),
                     image_formats={hda: "qcow2"}, multiboot_kernels=frozenset({str(kernel)}))
    plan = resolve_plan(vm, req, fake)
    assert plan.disk("hda").format == "qcow2" and plan.kernel_multiboot is True
    b = build_domain(vm, req, fake)
    assert "<driver name='qemu' type='qcow2'" in b.xml.replace('"', "'")
    assert "<emulator>/fake/qemu</emulator>" in b.xml and "type='kvm'" in b.xml.replace('"', "'")
    # the same translation with the facts of this host reads the files: raw, not multiboot
    real = resolve_plan(vm, req, host_facts(FIXED_CAPS))
    assert real.disk("hda").format == "raw" and real.kernel_multiboot is False


def test_an_image_the_facts_do_not_know_is_raw(tmp_path):
    vm = make_vm(tmp_path)
    (vm.hdd_boot_image).write_bytes(b"QFI\xfb\x00\x00\x00\x03" + b"\x00" * 504)   # qcow2 header
    assert resolve_plan(vm, make_request(), HostFacts()).disk("hda").format == "raw"
    assert resolve_plan(vm, make_request(), host_facts()).disk("hda").format == "qcow2"


def test_host_facts_read_each_header_once(tmp_path):
    vm = make_vm(tmp_path)
    facts = host_facts()
    resolve_plan(vm, make_request(), facts)
    vm.hdd_boot_image.write_bytes(b"QFI\xfb\x00\x00\x00\x03" + b"\x00" * 504)
    # one create's builds share one HostFacts: the header read first is the answer
    assert resolve_plan(vm, make_request(), facts).disk("hda").format == "raw"
    assert list(facts.image_formats) == [str(vm.hdd_boot_image)]


def test_translation_loads_neither_libvirt_nor_host_nor_backends(tmp_path):
    vm_dir = tmp_path / "vm1"
    touch(vm_dir / "hda.img")
    script = textwrap.dedent(f"""
        import sys
        sys.modules["libvirt"] = None          # importing libvirt would fail
        from pathlib import Path
        from ctys_libvirt.model import HostCaps, HostFacts, VmConfig
        from ctys_libvirt.translate.request import make_request
        from ctys_libvirt.translate.xml import build_domain
        d = Path({str(vm_dir)!r})
        (d / "vm1.ctys").write_text("#@#MAGICID-QEMU\\n")
        vm = VmConfig(label="vm1", source_path=d / "vm1.ctys", conf_dir=d, sha256="ab" * 32,
                      uuid="3f2a6c1e9b7d4e0a8c5b1d2e3f4a5b6c", mac="00:50:56:13:11:40",
                      hdd_boot_image=d / "hda.img")
        b = build_domain(vm, make_request(), HostFacts(caps=HostCaps()))
        assert b.xml.startswith("<domain")
        loaded = sorted(m for m in sys.modules
                        if m.startswith(("ctys_libvirt.host", "ctys_libvirt.backends")))
        print(loaded)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr
