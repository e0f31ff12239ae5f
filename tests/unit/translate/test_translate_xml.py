"""build_domain: XML rules of design.md §5; every document validated against libvirt's
RelaxNG schema."""
import pytest
from lxml import etree
from support.translate import FIXED_CAPS, QCOW2_HEADER, UUID, assert_valid, disks, make_vm, qemu_args, touch

from ctys_libvirt.errors import ConfError
from ctys_libvirt.model import CreateOptions, HostCaps
from ctys_libvirt.translate.request import make_request
from ctys_libvirt.host.facts import host_facts
from ctys_libvirt.translate.xml import (
    METADATA_NS,
    XmlOptions,
    build_domain,
    read_metadata,
    validate_domain_xml,
)


def build(vm, caps=FIXED_CAPS, options=None, **req):
    b = build_domain(vm, make_request(**req), host_facts(caps), options)
    root = assert_valid(b.xml)
    if b.final_xml:
        assert_valid(b.final_xml)
    return b, root


@pytest.fixture
def vm(tmp_path):
    return make_vm(tmp_path)


def test_basic_domain(vm):
    b, root = build(vm)
    assert root.get("type") == "qemu"
    assert root.findtext("name") == "vm1"
    assert root.findtext("uuid") == "3f2a6c1e-9b7d-4e0a-8c5b-1d2e3f4a5b6c" == b.uuid
    assert (root.find("memory").get("unit"), root.findtext("memory"), root.findtext("vcpu")) == ("MiB", "16", "1")
    t = root.find("os/type")
    assert (t.get("arch"), t.get("machine"), t.text) == ("x86_64", "pc", "hvm")
    assert root.find("os/boot") is None                       # per-device boot order only
    assert [e.tag for e in root.find("features")] == ["acpi", "apic"]
    cpu = root.find("cpu")
    assert (cpu.get("mode"), cpu.get("match"), cpu.find("model").get("fallback"), cpu.findtext("model")) == (
        "custom", "exact", "allow", "qemu64")
    assert root.find("clock").get("offset") == "localtime"
    assert [root.findtext(x) for x in ("on_poweroff", "on_reboot", "on_crash")] == ["destroy", "restart", "destroy"]
    assert root.findtext("devices/emulator") == "/usr/bin/qemu-system-x86_64"
    assert disks(root) == [("hda", "disk", str(vm.hdd_boot_image), "raw", 1, False)]
    assert root.find("devices/memballoon").get("model") == "none"
    assert (b.install, b.final_xml) == (False, None)


def test_no_emulator_when_unknown(vm):
    _, root = build(vm, caps=HostCaps())
    assert root.find("devices/emulator") is None


def test_kvm_only_when_asked_and_available(tmp_path):
    kvm_vm = make_vm(tmp_path, accelerator="KVM")
    b, root = build(kvm_vm, caps=HostCaps(kvm=True))
    assert root.get("type") == "kvm" and not b.warnings
    b, root = build(kvm_vm, caps=HostCaps(kvm=False))
    assert root.get("type") == "qemu"
    assert any("ACCELERATOR=KVM" in w and "TCG" in w for w in b.warnings)
    b, root = build(make_vm(tmp_path, accelerator="QEMU"), caps=HostCaps(kvm=True))
    assert root.get("type") == "qemu" and not b.warnings
    b, root = build(make_vm(tmp_path, accelerator="KQEMU"), caps=HostCaps(kvm=True))
    assert root.get("type") == "qemu" and any("KQEMU" in w for w in b.warnings)


def test_i686_qemu32(tmp_path):
    _, root = build(make_vm(tmp_path, arch="i686"))
    assert root.find("os/type").get("arch") == "i686" and root.findtext("cpu/model") == "qemu32"


def test_clock_utc(tmp_path):
    _, root = build(make_vm(tmp_path, localtime=False))
    assert root.find("clock").get("offset") == "utc"


def test_cd_boot_xml(tmp_path):
    iso = touch(tmp_path / "x.iso")
    b, root = build(make_vm(tmp_path), bootmode=f"CD%{iso}")
    assert disks(root) == [("hda", "disk", str(tmp_path / "vm1/hda.img"), "raw", 2, False),
                           ("hdc", "cdrom", str(iso), "raw", 1, True)]


def test_fdd_usb_disks_xml(tmp_path):
    fd, usb = touch(tmp_path / "f.img"), touch(tmp_path / "u.img", QCOW2_HEADER)
    _, root = build(make_vm(tmp_path, fdd_image=fd), bootmode="FDD")
    assert ("fda", "floppy", str(fd), "raw", 1, False) in disks(root)
    assert root.find("devices/disk[@device='floppy']/target").get("bus") == "fdc"
    _, root = build(make_vm(tmp_path, usb_image=usb), bootmode="USB")
    assert ("sda", "disk", str(usb), "qcow2", 1, False) in disks(root)
    assert root.find("devices/disk/target[@dev='sda']").get("bus") == "usb"


def test_block_device_source(tmp_path):
    vm = make_vm(tmp_path, default_instsource="/dev/null")
    _, root = build(vm, instmode="", allow_devices=["/dev/null"])
    d = root.find("devices/disk[@device='cdrom']")
    assert d.get("type") == "block" and d.find("source").get("dev") == "/dev/null"


def test_extra_disks_xml(tmp_path):
    d = tmp_path / "vm1"
    vm = make_vm(tmp_path, extra_disks={"hdb": touch(d / "b.img"), "hdd": touch(d / "d.img"),
                                        "fdb": touch(d / "fb.img")})
    _, root = build(vm)
    assert [x[:2] + (x[4],) for x in disks(root)] == [("hda", "disk", 1), ("hdb", "disk", None),
                                                     ("hdd", "disk", None), ("fdb", "floppy", None)]


def test_pxe_interface_boot_order(vm):
    _, root = build(vm, bootmode="PXE")
    assert root.find("devices/interface/boot").get("order") == "1"
    assert disks(root)[0][4] == 2


def test_kernel_initrd_cmdline(tmp_path):
    vm = make_vm(tmp_path, kernel=touch(tmp_path / "k"), initrd=touch(tmp_path / "i"),
                 append="root=/dev/sda1 ro console=ttyS0")
    _, root = build(vm, bootmode="KERNEL")
    assert [(e.tag, e.text) for e in root.find("os")][1:] == [
        ("kernel", str(tmp_path / "k")), ("initrd", str(tmp_path / "i")),
        ("cmdline", "root=/dev/sda1 ro console=ttyS0")]
    _, root = build(vm, kernel=f"{tmp_path}/k%%quiet")
    assert root.findtext("os/cmdline") == "quiet"


@pytest.mark.parametrize("opts,caps,expect", [
    (None, HostCaps(), ("user", None)),
    (None, HostCaps(default_network_active=True), ("network", ("network", "default"))),
    (XmlOptions(network="lan"), HostCaps(), ("network", ("network", "lan"))),
    (XmlOptions(bridge="br0", network="lan"), HostCaps(default_network_active=True), ("bridge", ("bridge", "br0"))),
    (CreateOptions(bridge="br1"), HostCaps(), ("bridge", ("bridge", "br1"))),
    (XmlOptions(user_network=True), HostCaps(default_network_active=True), ("user", None)),
])
def test_nic_wiring(vm, opts, caps, expect):
    _, root = build(vm, caps=caps, options=opts)
    iface = root.find("devices/interface")
    src = iface.find("source")
    got_src = None if src is None else next(iter(src.attrib.items()))
    assert (iface.get("type"), got_src) == expect
    assert iface.find("mac").get("address") == "00:50:56:13:11:40"
    assert iface.find("model").get("type") == "rtl8139"


def test_no_nic(tmp_path):
    _, root = build(make_vm(tmp_path, nic_model=None))
    assert root.find("devices/interface") is None


def test_nic_without_mac_gets_the_uuid_derived_one(tmp_path):
    from ctys_libvirt.translate.plan import mac_from_uuid

    vm = make_vm(tmp_path, mac=None, nic_model="e1000")
    _, root = build(vm)
    assert root.find("devices/interface/mac").get("address") == mac_from_uuid(vm.uuid)
    assert root.find("devices/interface/model").get("type") == "e1000"


def _graphics(root):
    return [(g.get("type"), dict(g.attrib)) for g in root.iterfind("devices/graphics")]


def test_console_vnc_with_display_and_keymap(vm):
    _, root = build(vm, console="VNC:3")
    g = root.find("devices/graphics")
    assert dict(g.attrib) == {"type": "vnc", "port": "5903", "autoport": "no", "listen": "127.0.0.1",
                              "keymap": "de"}
    assert dict(g.find("listen").attrib) == {"type": "address", "address": "127.0.0.1"}
    assert root.find("devices/video") is None      # VGADRIVER unset: libvirt's default


def test_console_vnc_autoport(tmp_path):
    _, root = build(make_vm(tmp_path, keyboard=None), console="vnc")
    assert _graphics(root) == [("vnc", {"type": "vnc", "autoport": "yes", "listen": "127.0.0.1"})]


def test_console_sdl(vm):
    _, root = build(vm, console="SDL", argsadd=["-smbios type=1"])   # no libvirt element: passed through
    assert _graphics(root) == [("sdl", {"type": "sdl"})]
    assert qemu_args(root) == ["-smbios", "type=1"]


@pytest.mark.parametrize("console", ["CLI0", "NONE"])
def test_headless_consoles(tmp_path, console):
    vm = make_vm(tmp_path, vga="cirrus", argsadd="-no-hpet -no-reboot")
    _, root = build(vm, console=console)
    assert root.find("devices/graphics") is None
    assert root.find("devices/video/model").get("type") == "none"
    assert root.find("devices/serial").get("type") == "pty"
    assert root.find("devices/console/target").attrib == {"type": "serial", "port": "0"}
    # NONE keeps disks and ARGSADD (-no-hpet converted, -no-reboot passed through)
    assert disks(root)[0][0] == "hda" and qemu_args(root) == ["-no-reboot"]
    assert root.find("clock/timer[@name='hpet']").get("present") == "no"


@pytest.mark.parametrize("console", ["CLI", "XTERM", "GTERM", "EMACS", "EMACSM", "EMACSA", "EMACSAM"])
def test_serial_consoles_also_prepare_vnc(tmp_path, console):
    """The manual: CLI, XTERM, GTERM and EMACS* get the VNC port prepared for later
    attachment - VNC on 127.0.0.1 with autoport, and a real video device."""
    vm = make_vm(tmp_path, vga="cirrus", keyboard=None)
    _, root = build(vm, console=console)
    assert _graphics(root) == [("vnc", {"type": "vnc", "autoport": "yes", "listen": "127.0.0.1"})]
    assert root.find("devices/graphics/listen").attrib == {"type": "address", "address": "127.0.0.1"}
    assert root.find("devices/video/model").get("type") == "cirrus"
    assert root.find("devices/serial").get("type") == "pty"
    assert root.find("devices/console/target").attrib == {"type": "serial", "port": "0"}


def test_serial_console_ignores_a_vnc_display_of_the_conf(tmp_path):
    """A pinned display belongs to CONSOLE VNC; the prepared port of CLI is always autoport."""
    vm = make_vm(tmp_path, keyboard=None)
    _, root = build(vm, console="CLI", vnc_display=7)
    assert _graphics(root)[0][1]["autoport"] == "yes" and "port" not in _graphics(root)[0][1]


def test_sdl_names_the_display_for_qemu(vm):
    from ctys_libvirt.translate.xml import XmlOptions

    _, root = build(vm, console="SDL", options=XmlOptions(sdl_display=":7", sdl_xauth="/root/.Xauthority"))
    assert _graphics(root) == [("sdl", {"type": "sdl", "display": ":7", "xauth": "/root/.Xauthority"})]
    # no D-Bus autolaunch (a fork the seccomp sandbox punishes with SIGSYS)
    env = root.findall("{http://libvirt.org/schemas/domain/qemu/1.0}commandline/"
                       "{http://libvirt.org/schemas/domain/qemu/1.0}env")
    assert [(e.get("name"), e.get("value")) for e in env] == [("DBUS_SESSION_BUS_ADDRESS", "disabled:")]


@pytest.mark.parametrize("vga,model", [("cirrus", "cirrus"), ("std", "vga"), ("vmware", "vmvga"),
                                       ("qxl", "qxl"), ("virtio", "virtio")])
def test_video_models(tmp_path, vga, model):
    _, root = build(make_vm(tmp_path, vga=vga))
    assert root.find("devices/video/model").get("type") == model


def test_serial_log(vm, tmp_path):
    _, root = build(vm, options=XmlOptions(serial_log=str(tmp_path / "s.log")))
    assert root.find("devices/serial/log").attrib == {"file": str(tmp_path / "s.log"), "append": "on"}
    _, root = build(vm)
    assert root.find("devices/serial/log") is None


def test_qemubios_timeopt_and_argsadd_quoting(tmp_path):
    vm = make_vm(tmp_path, qemubios="/usr/share/kvm", timeopt="-rtc-td-hack",
                 argsadd="-usb -usbdevice tablet -device 'e1000,netdev=x'")
    _, root = build(vm, argsadd=["-name 'a b'"])
    # -rtc-td-hack, -usb/-usbdevice tablet became elements, -name is the LABEL; a -device
    # whose netdev is not given stays as written
    assert qemu_args(root) == ["-L", "/usr/share/kvm", "-device", "e1000,netdev=x"]
    assert root.find("clock/timer[@name='rtc']").get("tickpolicy") == "catchup"
    cmd = root.find("{http://libvirt.org/schemas/domain/qemu/1.0}commandline")
    assert cmd.nsmap["qemu"] == "http://libvirt.org/schemas/domain/qemu/1.0"


def test_no_qemu_commandline_without_args(vm):
    b, root = build(vm)
    assert "qemu:commandline" not in b.xml


def test_install_and_final_pair(tmp_path):
    iso = touch(tmp_path / "i.iso")
    vm = make_vm(tmp_path, default_instsource=str(iso), inst_size="1G")
    b, root = build(vm, instmode=f"CD%%HDD%{tmp_path}/t.img%INIT")
    assert b.install and b.final_xml
    assert root.findtext("on_reboot") == "destroy"
    assert disks(root) == [("hda", "disk", f"{tmp_path}/t.img", "raw", 2, False),
                           ("hdc", "cdrom", str(iso), "raw", 1, True)]
    final = etree.fromstring(b.final_xml.encode())
    assert final.findtext("uuid") == root.findtext("uuid") and final.findtext("name") == "vm1"
    assert final.findtext("on_reboot") == "restart"
    assert disks(final) == [("hda", "disk", f"{tmp_path}/t.img", "raw", 1, False)]
    assert read_metadata(b.xml)["phase"] == "install" and read_metadata(b.final_xml)["phase"] == "final"
    assert b.plan.create_target is not None and b.final_plan.create_target is None


def test_final_phase_request(tmp_path):
    vm = make_vm(tmp_path, default_instsource=str(touch(tmp_path / "i.iso")))
    b, root = build(vm, instmode="", install_phase=False)
    assert not b.install and b.final_xml is None and root.findtext("on_reboot") == "restart"
    assert disks(root) == [("hda", "disk", str(vm.hdd_boot_image), "raw", 1, False)]


def test_metadata_round_trip(tmp_path):
    vm = make_vm(tmp_path, keys={"LABEL": "vm1", "UUID": UUID, "DIST": "debian", "WEIRD": "a<b>&'\"ü\x01"},
                 vnc_display=None)
    b, _ = build(vm, console="VNC:7", argsadd=["-no-hpet -name 'y z'"], kernel=None, bootmode="HDD")
    md = read_metadata(b.xml)
    assert md == {
        "conf_path": str(vm.source_path), "conf_sha256": "ab" * 32, "label": "vm1",
        "tool_version": __import__("ctys_libvirt").__version__,
        "console": "VNC", "phase": "boot", "bootmode": "HDD", "bootpath": None, "instmode": None,
        "kernel": None, "vnc_display": 7, "argsadd": ["-no-hpet -name 'y z'"], "install_phase": False,
        "keys": {"LABEL": "vm1", "UUID": UUID, "DIST": "debian", "WEIRD": "a<b>&'\"ü\ufffd"},
    }
    # the fragment libvirt's dom.metadata() returns parses the same way
    frag = etree.tostring(etree.fromstring(b.xml.encode()).find(f"metadata/{{{METADATA_NS}}}instance"))
    assert read_metadata(frag) == md
    assert read_metadata("<domain><name>x</name></domain>") is None
    assert read_metadata("not xml") is None


def test_hostile_values_escaped_structurally(tmp_path):
    label = "ev<il>&'\"ü"
    d = tmp_path / "d<i>r&'\"é"
    img = touch(d / "h<&>'\".img")
    vm = make_vm(tmp_path, label="x", hdd_boot_image=img, keys={"LABEL": label},
                 argsadd="-smbios '</qemu:arg><evil/>'", keyboard="de")
    vm.label = label
    b, root = build(vm, options=XmlOptions(serial_log=str(d / "s&.log")))
    assert root.findtext("name") == label
    assert disks(root)[0][2] == str(img)
    assert qemu_args(root) == ["-smbios", "</qemu:arg><evil/>"]
    assert root.find(".//evil") is None
    assert read_metadata(b.xml)["label"] == label


def test_control_characters_in_paths_are_conf_errors(tmp_path):
    img = touch(tmp_path / "bad\x01name.img")
    with pytest.raises(ConfError, match="control characters"):
        build_domain(make_vm(tmp_path, hdd_boot_image=img), make_request(), host_facts(FIXED_CAPS))


def test_arch_not_offered_warns(tmp_path):
    b, _ = build(make_vm(tmp_path, arch="i686"), caps=HostCaps(arches=("x86_64",)))
    assert any("ARCH i686" in w for w in b.warnings)


def test_validate_domain_xml_reports_problems(vm):
    b, _ = build(vm)
    assert validate_domain_xml(b.xml) is None
    bad = b.xml.replace("<vcpu placement=\"static\">1</vcpu>", "<vcpu>one</vcpu>")
    assert validate_domain_xml(bad)


def test_output_is_stable(vm):
    a = build_domain(vm, make_request(bootmode="PXE"), host_facts(FIXED_CAPS)).xml
    assert a == build_domain(vm, make_request(bootmode="PXE"), host_facts(FIXED_CAPS)).xml
    assert a.startswith("<domain type=\"qemu\">\n  <name>")


# --- property: any XML-capable text survives structurally -------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_xml_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",),
                                           blacklist_characters="\x00\x01\x02\x03\x04\x05\x06\x07\x08"
                                           "\x0b\x0c\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19"
                                           "\x1a\x1b\x1c\x1d\x1e\x1f\ufffe\uffff"),
                    min_size=1, max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=_xml_text, word=_xml_text)
def test_property_values_round_trip(tmp_path, value, word):
    import shlex

    # passed through as values of a guest-only option (a bare word would be refused: QEMU
    # opens it as a disk image)
    vm = make_vm(tmp_path, keys={"K": value}, argsadd="-append " + shlex.quote(word), append=value,
                 kernel=touch(tmp_path / "k"))
    b = build_domain(vm, make_request(argsadd=["-append " + shlex.quote(value)]), host_facts(FIXED_CAPS))
    root = assert_valid(b.xml)
    assert qemu_args(root) == ["-append", word, "-append", value]
    assert read_metadata(b.xml)["keys"]["K"] == value
    assert root.findtext("os/cmdline") == value


def test_cpu_host_is_passthrough_under_kvm_and_maximum_under_tcg(tmp_path):
    vm = make_vm(tmp_path, cpu="host", accelerator="KVM")
    b = build_domain(vm, make_request(), host_facts(HostCaps(kvm=True, emulator="/usr/bin/qemu-system-x86_64")))
    root = etree.fromstring(b.xml.encode())
    assert root.get("type") == "kvm"
    assert root.find("cpu").attrib == {"mode": "host-passthrough"} and len(root.find("cpu")) == 0
    assert not any("CPU=host" in w for w in b.warnings)
    # TCG cannot pass the host CPU through (QEMU refuses -cpu host without KVM)
    b = build_domain(vm, make_request(), host_facts(HostCaps(kvm=False, emulator="/usr/bin/qemu-system-x86_64")))
    root = etree.fromstring(b.xml.encode())
    assert root.get("type") == "qemu"
    assert root.find("cpu").attrib == {"mode": "maximum"} and len(root.find("cpu")) == 0
    assert any("CPU=host needs KVM" in w for w in b.warnings)


@pytest.mark.parametrize("arch", ["x8664", "armv5tel", "pdp11"])
def test_arch_libvirt_does_not_know_is_conf_error(tmp_path, arch):
    vm = make_vm(tmp_path, "archvm")
    vm.arch = arch
    with pytest.raises(ConfError, match="ARCH"):
        build_domain(vm, make_request(), host_facts(FIXED_CAPS))


@pytest.mark.parametrize("cpu,model,features", [
    ("qemu64,+ssse3,-svm", "qemu64", [("require", "ssse3"), ("disable", "svm")]),
    ("Nehalem,vmx=off", "Nehalem", [("disable", "vmx")]),
    ("qemu32", "qemu32", []),
])
def test_cpu_feature_flags_become_feature_elements(tmp_path, cpu, model, features):
    vm = make_vm(tmp_path, "cpuvm")
    vm.cpu = cpu
    root = assert_valid(build_domain(vm, make_request(), host_facts(FIXED_CAPS)).xml)
    assert root.findtext("cpu/model") == model
    assert [(f.get("policy"), f.get("name")) for f in root.findall("cpu/feature")] == features


@pytest.mark.parametrize("cpu", ["<evil>", "qemu64,+", "qemu64,vmx=maybe", "qemu 64"])
def test_bad_cpu_is_conf_error(tmp_path, cpu):
    vm = make_vm(tmp_path, "cpuvm")
    vm.cpu = cpu
    with pytest.raises(ConfError, match="CPU"):
        build_domain(vm, make_request(), host_facts(FIXED_CAPS))


def test_build_keeps_the_trees_it_serialized(shared_dir, tmp_path):
    """DomainBuild.tree is the document ``xml`` was serialized from: a copy of it is the same
    tree a parse of the text gives (what merge and drift used to parse again)."""
    import copy

    from ctys_libvirt.coexist import fields as F
    from support.translate import GOLDEN_VARIANTS, example_tree, GOLDEN_CAPS
    from ctys_libvirt.conf import load_conf
    from ctys_libvirt.host.facts import host_facts
    from ctys_libvirt.model import HostContext
    from ctys_libvirt.translate.request import make_request
    from ctys_libvirt.translate.xml import XmlOptions, build_domain

    confs = example_tree(shared_dir, tmp_path)
    seen = 0
    for label, _, req_kw, opt_kw in GOLDEN_VARIANTS:
        d = str(confs[label].parent)
        fill = (lambda v: v.replace("{d}", d) if isinstance(v, str) else v)
        vm = load_conf(confs[label], context=HostContext(mydist="CentOS", user="acue"))
        b = build_domain(vm, make_request(**{k: fill(v) for k, v in req_kw.items()}), host_facts(GOLDEN_CAPS),
                         XmlOptions(**{k: fill(v) for k, v in opt_kw.items()}))
        for xml, tree in ((b.xml, b.tree), (b.final_xml, b.final_tree)):
            if xml is None:
                assert tree is None
                continue
            parsed = etree.tostring(F.parse(xml))
            assert etree.tostring(F.parse(xml, {xml: tree})) == parsed
            assert etree.tostring(copy.deepcopy(tree)) == parsed
            seen += 1
        # a copy: what merge changes is not the build's own tree
        F.parse(b.xml, {b.xml: b.tree}).find("name").text = "changed"
        assert b.tree.findtext("name") == vm.label
    assert seen >= len(GOLDEN_VARIANTS)
