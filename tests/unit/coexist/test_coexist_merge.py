"""The three-way merge of a conf's XML into an existing definition, the one-off overlay of
a run, and the in-place conf rewrite of `sync --prefer domain` (pure XML/text: the real
libvirt round trips are in tests/integration/coexist/test_coexist_define.py)."""
from __future__ import annotations

import pytest
from lxml import etree

from ctys_libvirt.coexist import confedit
from ctys_libvirt.coexist.merge import merge, overlay, read_baseline

UUID = "3f2a6c1e-9b7d-4e0a-8c5b-1d2e3f4a5b6c"
NS = "https://ctys-libvirt.invalid/xmlns/domain/1"


def gen(memory=16, vcpu=1, boot="hd", console=None, extra_disk="") -> str:
    cd = ("<disk type='file' device='cdrom'><driver name='qemu' type='raw'/><source file='/m/cd.iso'/>"
          "<target dev='hdc' bus='ide'/><boot order='1'/><readonly/></disk>") if boot == "cd" else ""
    hd_order = "2" if boot == "cd" else "1"
    gfx = "<graphics type='vnc' autoport='yes' listen='127.0.0.1'/>" if console == "VNC" else ""
    return f"""<domain type='qemu'><name>vm1</name><uuid>{UUID}</uuid>
      <metadata><ctys:instance xmlns:ctys='{NS}'><ctys:conf path='/c/vm1.ctys' sha256='aa'/>
        <ctys:label>vm1</ctys:label><ctys:request console='{console or "NONE"}' phase='boot'/>
      </ctys:instance></metadata>
      <memory unit='MiB'>{memory}</memory><vcpu>{vcpu}</vcpu>
      <os><type arch='x86_64' machine='pc'>hvm</type></os><clock offset='localtime'/>
      <devices><emulator>/usr/bin/qemu-system-x86_64</emulator>
        <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/m/hda.img'/>
          <target dev='hda' bus='ide'/><boot order='{hd_order}'/></disk>{cd}{extra_disk}
        <interface type='user'><mac address='52:54:00:00:00:01'/><model type='rtl8139'/></interface>
        <serial type='pty'><target port='0'/></serial><console type='pty'/>{gfx}
        {"" if gfx else "<video><model type='none'/></video>"}<memballoon model='none'/></devices></domain>"""


def libvirt_like(xml: str) -> str:
    """What libvirt hands back: machine expanded, units in KiB, addresses added."""
    root = etree.fromstring(xml.encode())
    root.find("os/type").set("machine", "pc-i440fx-7.2")
    m = root.find("memory")
    m.text, m.attrib["unit"] = str(int(m.text) * 1024), "KiB"
    for d in root.iterfind("devices/disk"):
        etree.SubElement(d, "address", type="drive", controller="0", bus="0", target="0", unit="0")
    etree.SubElement(root.find("devices/interface"), "address", type="pci", slot="0x03")
    return etree.tostring(root, encoding="unicode")


def admin_edit(xml: str) -> str:
    """virt-xml style additions: a description, a watchdog, another metadata namespace."""
    root = etree.fromstring(xml.encode())
    desc = etree.Element("description")
    desc.text = "the admin's"
    root.find("uuid").addnext(desc)
    etree.SubElement(root.find("devices"), "watchdog", model="i6300esb", action="reset")
    etree.SubElement(root.find("metadata"), "{urn:other}note", nsmap={"o": "urn:other"}).text = "x"
    return etree.tostring(root, encoding="unicode")


def defined(xml: str) -> str:
    r = merge(None, xml, conf_path="/c/vm1.ctys")
    assert r.status == "defined" and r.xml
    return libvirt_like(r.xml)


def test_new_definition_carries_a_baseline_and_is_then_unchanged():
    d = defined(gen())
    base = read_baseline(etree.fromstring(d.encode()))
    assert base is not None and "memory" in base.fields and base.targets == ("hda",)
    again = merge(d, gen(), conf_path="/c/vm1.ctys")
    assert again.status == "unchanged" and again.xml is None and again.drift == "in sync"


def test_conf_change_is_written_and_the_admins_parts_kept():
    d = admin_edit(defined(gen()))
    r = merge(d, gen(memory=32), conf_path="/c/vm1.ctys")
    assert r.status == "updated" and [f.name for f in r.fields if f.written] == ["memory"]
    root = etree.fromstring(r.xml.encode())
    assert root.findtext("memory") == "32"
    assert root.findtext("description") == "the admin's"
    assert root.find("devices/watchdog") is not None
    assert root.find("metadata/{urn:other}note").text == "x"
    assert root.find("devices/interface/address").get("slot") == "0x03"
    assert any("watchdog" in k for k in r.kept) and any("description" in k for k in r.kept)


def test_a_domain_edit_is_kept_and_reported():
    d = defined(gen()).replace("<vcpu>1</vcpu>", "<vcpu>2</vcpu>")
    r = merge(d, gen(), conf_path="/c/vm1.ctys")
    assert r.drift == "domain edited" and r.status == "unchanged"
    r = merge(d, gen(memory=32), conf_path="/c/vm1.ctys")      # another field of the conf changed
    root = etree.fromstring(r.xml.encode())
    assert root.findtext("vcpu") == "2" and root.findtext("memory") == "32"
    assert r.drift == "conf changed, domain edited"             # what this define found ...
    assert merge(r.xml, gen(memory=32), conf_path="/c/vm1.ctys").drift == "domain edited"  # ... and left


def test_both_sides_changed_is_a_conflict_settled_either_way():
    d = defined(gen()).replace(">16384<", ">65536<")           # the admin: 64 MiB
    r = merge(d, gen(memory=32), conf_path="/c/vm1.ctys")
    assert r.status == "conflict" and r.xml is None
    assert [(f.name, f.conf, f.domain) for f in r.conflicts] == [("memory", "32768 KiB", "65536 KiB")]
    by_conf = merge(d, gen(memory=32), prefer="conf", conf_path="/c/vm1.ctys")
    assert etree.fromstring(by_conf.xml.encode()).findtext("memory") == "32"
    by_dom = merge(d, gen(memory=32), prefer="domain", conf_path="/c/vm1.ctys")
    assert etree.fromstring(by_dom.xml.encode()).findtext("memory") == "65536"
    after = merge(by_dom.xml, gen(memory=32), conf_path="/c/vm1.ctys")
    assert after.drift == "in sync" and after.status == "unchanged"   # the new baseline holds


def test_same_value_on_both_sides_is_no_conflict():
    d = defined(gen()).replace(">16384<", ">32768<")
    assert merge(d, gen(memory=32), conf_path="/c/vm1.ctys").drift == "in sync"


def test_admin_disk_on_another_target_survives_a_disk_change():
    vdb = ("<disk type='file' device='disk'><source file='/m/data.img'/>"
           "<target dev='vdb' bus='virtio'/></disk>")
    d = defined(gen()).replace("</devices>", vdb + "</devices>")
    r = merge(d, gen(boot="cd"), conf_path="/c/vm1.ctys")
    root = etree.fromstring(r.xml.encode())
    assert sorted(x.find("target").get("dev") for x in root.iterfind("devices/disk")) == ["hda", "hdc", "vdb"]


def test_overlay_changes_only_what_the_run_asks():
    d = admin_edit(defined(gen()))
    assert overlay(d, gen(), gen()) is None
    live = etree.fromstring(overlay(d, gen(), gen(boot="cd", console="VNC")).encode())
    assert live.find("devices/watchdog") is not None and live.findtext("description") == "the admin's"
    cds = [x for x in live.iterfind("devices/disk") if x.get("device") == "cdrom"]
    assert cds and cds[0].find("boot").get("order") == "1"
    assert live.find("devices/graphics").get("type") == "vnc"
    assert live.find("devices/video/model").get("type") == "cirrus"   # what libvirt would add
    assert live.findtext("memory") == "16384"                         # the definition's, untouched


CONF = """#@#MAGICID-QEMU
#@#LABEL = "vm1"
#@#MAC0 = "52:54:00:00:00:01"
LABEL="vm1"
MEMSIZE=16   # small
MAC0="52:54:00:00:00:01"
if [ "$MYDIST" == "debian" ]; then
  SMP=2
fi
CPU=qemu64
CPU=${CPU},+ssse3
"""


def test_confedit_rewrites_one_assignment_and_keeps_every_other_byte():
    new, changes, refused = confedit.apply(CONF, {"MEMSIZE": "32"}, {})
    assert new == CONF.replace("MEMSIZE=16   # small", "MEMSIZE=32   # small")
    assert changes == ["line 5: MEMSIZE=16 -> MEMSIZE=32"] and refused == []


def test_confedit_refuses_what_is_not_a_simple_assignment():
    new, changes, refused = confedit.apply(CONF, {"SMP": "4", "CPU": "host"}, {})
    assert new == CONF and changes == []
    assert any("SMP on line 8 is not a simple top-level assignment" in r for r in refused)
    assert any("CPU is assigned 2 times" in r for r in refused)


def test_confedit_appends_missing_variables_and_updates_keys():
    new, changes, _ = confedit.apply(CONF, {"NIC": "e1000", "MAC0": "52:54:00:00:00:02"},
                                     {"MAC0": "52:54:00:00:00:02", "UUID": "ab" * 16})
    assert new.endswith("NIC=e1000\n")
    assert '#@#MAC0 = "52:54:00:00:00:02"' in new and 'MAC0="52:54:00:00:00:02"' not in new
    assert "MAC0=52:54:00:00:00:02\n" in new
    lines = new.splitlines()
    assert lines[2].startswith("#@#UUID") and lines[1] == '#@#LABEL = "vm1"'


@pytest.mark.parametrize("value", ["a b", "it's", "$HOME", "`id`", "", 'q"uote\\'])
def test_confedit_values_are_read_back_literally(tmp_path, value):
    from ctys_libvirt.conf import load_conf

    text = '#@#MAGICID-QEMU\n#@#LABEL = "vm1"\nLABEL="vm1"\nAPPEND=x\n'
    new, _, refused = confedit.apply(text, {"APPEND": value}, {})
    assert not refused
    conf = tmp_path / "vm1" / "vm1.ctys"
    conf.parent.mkdir()
    conf.write_text(new)
    assert load_conf(conf).variables["APPEND"] == value


def test_confedit_refuses_values_that_span_lines():
    new, changes, refused = confedit.apply(CONF, {"MEMSIZE": "16\nrm -rf /"}, {"MAC0": 'x"\ny'})
    assert new == CONF and changes == [] and len(refused) == 2


def test_export_drops_values_a_conf_cannot_hold():
    from ctys_libvirt.coexist.export import conf_from_xml

    xml = ("<domain type='qemu'><name>odd</name><memory>65536</memory><vcpu>1</vcpu>"
           "<os><type arch='x86_64'>hvm</type><kernel>/k</kernel><cmdline>a&#10;touch /tmp/x</cmdline></os>"
           "<devices/></domain>")
    _label, text, notes = conf_from_xml(xml)
    assert "touch" not in text and any("APPEND" in n for n in notes)
