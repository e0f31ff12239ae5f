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


def _count_resolves(monkeypatch):
    from ctys_libvirt.translate import xml as xmlmod

    calls = []
    real = xmlmod.resolve_plan

    def counting(vm, req, facts):
        calls.append(req)
        return real(vm, req, facts)

    monkeypatch.setattr(xmlmod, "resolve_plan", counting)
    return calls


def test_render_build_reuses_the_plans(tmp_path, monkeypatch):
    from ctys_libvirt.translate.xml import XmlOptions, render_build

    vm = make_vm(tmp_path, inst_size="1G")
    facts = host_facts(FIXED_CAPS)
    req = make_request(instmode=f"CD%{touch(tmp_path / 'i.iso')}%HDD%{tmp_path}/t.img%INIT", console="CLI")
    log = XmlOptions(serial_log=str(tmp_path / "serial.log"))
    b = build_domain(vm, req, facts, log)
    calls = _count_resolves(monkeypatch)
    again = render_build(vm, b, facts, None)
    assert calls == []                                   # nothing resolved again
    assert (again.plan, again.final_plan) == (b.plan, b.final_plan)
    fresh = build_domain(vm, req, facts, None)          # byte-identical to a fresh build
    assert (again.xml, again.final_xml, again.warnings) == (fresh.xml, fresh.final_xml, fresh.warnings)
    assert "serial.log" in b.xml and "serial.log" not in again.xml


class _Backend:
    """LibvirtBackend's definition logic without a connection: build() as the backend's,
    minus the ARGSADD probe and lint that need the host's emulator."""

    from ctys_libvirt.backends.libvirt import LibvirtBackend as _B

    _definition_xml = _B._definition_xml

    def build(self, vm, request, options, facts=None):
        return build_domain(vm, request, facts, options)


def test_install_definition_keeps_the_run_plans(tmp_path, monkeypatch):
    # the conf's HDDBOOTIMAGE is the target the install creates: its normal boot cannot be
    # built yet, so the definition boots as the run does -- from the run's plans, not
    # resolved a second time (before: install and final plan resolved again)
    from dataclasses import replace as dc_replace

    from ctys_libvirt.model import CreateOptions

    target = tmp_path / "vm1" / "t.img"
    vm = dc_replace(make_vm(tmp_path), hdd_boot_image=target, inst_size="1G")
    facts = host_facts(FIXED_CAPS)
    req = make_request(instmode=f"CD%{touch(tmp_path / 'i.iso')}%HDD%{target}%INIT", console="CLI")
    opts = CreateOptions(serial_log=str(tmp_path / "serial.log"))
    run = build_domain(vm, req, facts, opts)
    calls = _count_resolves(monkeypatch)
    xml, note, plan, tree = _Backend()._definition_xml(vm, req, opts, run, facts)
    assert len(calls) == 1 and calls[0].instmode is None      # only the normal boot, tried
    assert "normal boot cannot be defined" in note and plan is run.final_plan
    assert xml == build_domain(vm, req, facts, CreateOptions()).final_xml
    # the tree handed on with it is the one that text was serialized from
    from ctys_libvirt.translate.domxml import serialize

    assert serialize(tree) == xml
