"""Spec-compliance audit of the ctys-qemu front end: parsing/rendering cases that diverged from
ctys-cli.md / qemu-plugin-runtime.md / ctys-QEMU(1) and were fixed (pure, no libvirt)."""
from __future__ import annotations

import pytest

from ctys_libvirt.errors import UsageError
from ctys_libvirt.ctys.targets import parse_target, parse_targets
from ctys_libvirt.inventory import output
from ctys_libvirt.ctys.enum_record import FIELD_NAMES
from ctys_libvirt.model import BootMode
from ctys_libvirt.ctys.records import TITLES
from ctys_libvirt.ctys.columns import TabColumn, parse_collector, tab_tcp_columns
from ctys_libvirt.ctys.actions import parse_cancel, parse_create
from ctys_libvirt.translate.request import make_request


def _cols(spec):
    return [(c.index, c.title, c.width, c.mode) for c in spec.table]


# -- TAB_GEN / TAB: columns by field name as well as by index (README: TAB_GEN:LABEL%UUID%MAC) --

def test_tab_gen_by_field_names_list():
    spec = parse_collector("TAB_GEN:LABEL%UUID%MAC,SORT", "LIST")
    assert _cols(spec) == [(3, "LABEL", 0, ""), (5, "UUID", 0, ""), (6, "MAC", 0, "")]
    assert spec.sort


def test_tab_gen_names_case_insensitive_mixed_with_indexes_enumerate():
    spec = parse_collector("tab:label_lbl_8%uuid_u_6_L%40_ram_5%vram", "ENUMERATE")
    assert _cols(spec) == [(3, "lbl", 8, ""), (5, "u", 6, "L"), (40, "ram", 5, ""), (40, "VRAM", 0, "")]


def test_tab_gen_unknown_name_is_one_usage_error():
    with pytest.raises(UsageError, match="bad column 'NOSUCH'"):
        parse_collector("TAB_GEN:NOSUCH", "LIST")


def test_tab_gen_by_name_renders_like_by_index():
    recs = [["h", "QEMU", "vm2", "/v/vm2.ctys", "u2", "m2"] + [""] * 16,
            ["h", "QEMU", "vm1", "/v/vm1.ctys", "u1", ""] + [""] * 16]
    by_name = output.render_ctys([list(r) for r in recs], parse_collector("TAB_GEN:LABEL%UUID,SORT:3", "LIST"),
                                 TITLES, [])
    by_idx = output.render_ctys([list(r) for r in recs], parse_collector("TAB_GEN:3_LABEL%5_UUID,SORT:3", "LIST"),
                                TITLES, [])
    assert by_name == by_idx == "LABEL|UUID\n-----+----\nvm1  |u1\nvm2  |u2"


# -- TAB_TCP: ID replaces the label column; widths by the documented positions ---------------

def test_tab_tcp_with_id_shows_id_right_clipped():
    spec = parse_collector("TAB_TCP,ID", "LIST")
    assert _cols(spec)[3] == (4, "id", 17, "L")
    assert [c.index for c in spec.table] == [1, 7, 16, 4, 2, 21, 14, 12, 13]
    rec = ["h", "QEMU", "lbl", "/very/long/path/to/the/vm.ctys"] + [""] * 18
    line = output.render_table([rec], spec.table).splitlines()[2]
    assert line.split("|")[3] == "/path/to/the/vm.ctys"[-17:]


def test_tab_tcp_without_id_keeps_label():
    assert _cols(parse_collector("TAB_TCP", "LIST"))[3] == (3, "label", 17, "")


def test_tab_tcp_widths_by_ctys_position():
    # positions: 1 container, 2 guest, 3 label, 4 stype, 5 accel, 6 c, 7 user, 8 group; IF = 16
    vals = ["20", "12", "25", "4", "3", "2", "6", "7"] + ["9"] * 7 + ["5"]   # 9..15 unused
    spec = parse_collector("TAB_TCP:" + "%".join(vals), "LIST")
    assert [(c.title, c.width) for c in spec.table] == [
        ("TCP-container", 20), ("TCP-guest", 12), ("IF", 5), ("label", 25), ("stype", 4),
        ("accel", 3), ("c", 2), ("user", 6), ("group", 7)]


def test_tab_tcp_default_columns_helper():
    assert [c.index for c in tab_tcp_columns(with_id=True)] == [1, 7, 16, 4, 2, 21, 14, 12, 13]
    assert tab_tcp_columns()[3] == TabColumn(3, "label", 17, "")


# -- LIST site filter: the manual's spellings CLIENTS|C, SERVER|S, BOTH|B --------------------

@pytest.mark.parametrize("word,site", [("clients", "CLIENT"), ("C", "CLIENT"), ("client", "CLIENT"),
                                       ("S", "SERVER"), ("server", "SERVER"), ("b", "BOTH"),
                                       ("Both", "BOTH"), ("tunnel", "TUNNEL")])
def test_list_site_aliases(word, site):
    assert parse_collector(f"{word},label", "LIST").site == site


def test_list_site_aliases_still_exclusive():
    with pytest.raises(UsageError, match="EXOR"):
        parse_collector("S,C", "LIST")


def test_enumerate_s_is_still_the_sport_column():
    assert parse_collector("S", "ENUMERATE").fields == [10]


# -- PING/SSHPING: the legacy '%%' workaround is understood too ----------------------------

@pytest.mark.parametrize("text", ["l:x,ping:20%2", "l:x,ping:20%%2", "l:x,PING:20%%2"])
def test_ping_count_sleep_both_spellings(text):
    p = parse_create(text).ping
    assert (p.enabled, p.count, p.sleep) == (True, 20, 2)


def test_sshping_double_percent():
    p = parse_create("l:x,sshping:5%%1").sshping
    assert (p.enabled, p.count, p.sleep) == (True, 5, 1)


# -- BOOTMODE modes only the manual lists: ISO, INSTALL, KERNEL%img%initrd%append ------------

def test_bootmode_iso_is_cd():
    s = parse_create("l:x,bootmode:iso%/isos/x.iso")
    r = make_request(bootmode=s.bootmode, instmode=s.instmode, kernel=s.kernel)
    assert (r.bootmode, r.boot_path) == (BootMode.CD, "/isos/x.iso")


def test_bootmode_install_is_instmode_with_conf_defaults():
    s = parse_create("l:x,BOOTMODE:install%/isos/inst.iso")
    assert (s.bootmode, s.instmode) == (None, "DEFAULT%/isos/inst.iso")
    r = make_request(bootmode=s.bootmode, instmode=s.instmode)
    assert r.instmode == "DEFAULT%/isos/inst.iso" and r.bootmode is None
    assert parse_create("l:x,bootmode:INSTALL").instmode == "DEFAULT"


def test_bootmode_kernel_with_image_initrd_append():
    s = parse_create("l:x,bootmode:kernel%/b/vmlinuz%/b/initrd%console=ttyS0")
    assert (s.bootmode, s.kernel) == ("KERNEL", "/b/vmlinuz%/b/initrd%console=ttyS0")
    r = make_request(bootmode=s.bootmode, kernel=s.kernel)
    assert r.bootmode is BootMode.KERNEL and r.kernel == "/b/vmlinuz%/b/initrd%console=ttyS0"


def test_bootmode_kernel_alone_and_plain_modes_unchanged():
    assert parse_create("l:x,bootmode:KERNEL").kernel is None
    assert parse_create("l:x,bootmode:cd%/i.iso").bootmode == "cd%/i.iso"
    with pytest.raises(UsageError, match="unknown BOOTMODE"):
        s = parse_create("l:x,bootmode:floppy")
        make_request(bootmode=s.bootmode)


# -- case rules and spellings that were already right (guard them) --------------------------

@pytest.mark.parametrize("text", ["L:x,CONSOLE:VNC:5901", "l:x,console:vnc::5901", "Label:x,Console:Vnc:5901"])
def test_console_vnc_port_forms(text):
    r = make_request(console=parse_create(text).console)
    assert (r.console.value, r.vnc_display) == ("VNC", 1)


@pytest.mark.parametrize("text,method,wait", [("l:x,poweroff:7", "POWEROFF", 7), ("l:x,S5:3", "POWEROFF", 3),
                                              ("l:x,timeout:4", "POWEROFF", 4), ("l:x,reboot", "REBOOT", 20),
                                              ("l:x,pause", "PAUSE", 20), ("l:x,s4", "SUSPEND", 20)])
def test_cancel_methods_and_delays(text, method, wait):
    c = parse_cancel(text)
    assert (c.method, c.wait_seconds) == (method, wait)


def test_title_names_of_both_records():
    assert output.title(TITLES, [1, 9, 22], "TITLEIDX") == "ContainingMachine(1);ClientAccessPort(9);ARCH(22)"
    assert output.title(FIELD_NAMES, [46, 47], "TITLEIDXASC") == "DefHOSTs(AT-46);DefCONSOLE(AU-47)"


# -- target contexts: ctys options inside '(...)' and group CONTEXT lines -------------------

def test_ctys_options_in_target_context_are_accepted_and_ignored():
    t = parse_target("host02(-d 1)")
    assert (t.host, t.user) == ("host02", None)
    ts = parse_targets(["(-d 3)", "host01", "host02(-d 1 -b 1,2 -z 2)", "host03(-d 0)"])
    assert [t.host for t in ts] == ["host01", "host02", "host03"]


def test_spec_group_context_line(tmp_path, monkeypatch):
    monkeypatch.setenv("CTYS_GROUPS_PATH", str(tmp_path))
    (tmp_path / "lab").write_text("CONTEXT'(-d 2,s:16,w:0,p -b sync,par -c off -C on)'\n"
                                  "root@lab02\nlab03 lab04'(-l ops -g 1268x992:A11:ALL)'\n")
    ts = parse_targets(["lab"])
    assert [(t.host, t.user) for t in ts] == [("lab02", "root"), ("lab03", None), ("lab04", "ops")]


def test_context_type_and_action():
    assert parse_target("h(-t qemu)").host == "h"
    with pytest.raises(UsageError, match="only QEMU"):
        parse_target("h(-t VNC)")
    with pytest.raises(UsageError, match="per-target actions"):
        parse_target("h(-a create=l:x)")


def test_blank_between_host_and_its_context():
    # ctys-cli.md §1.5: "whitespace between host and '(' allowed"
    assert [(t.host, t.user) for t in parse_targets(["h1", "(-l bob)"])] == [("h1", "bob")]
    assert [(t.host, t.user) for t in parse_targets(["h1 (-l bob) h2"])] == [("h1", "bob"), ("h2", None)]
    ts = parse_targets(["(-l g)", "h1", "(-l bob)", "h2"])
    assert [(t.host, t.user) for t in ts] == [("h1", "bob"), ("h2", "g")]


def test_blank_before_context_in_group_file(tmp_path, monkeypatch):
    monkeypatch.setenv("CTYS_GROUPS_PATH", str(tmp_path))
    (tmp_path / "g").write_text("lab03 '(-l ops)' lab04\n")
    assert [(t.host, t.user) for t in parse_targets(["g"])] == [("lab03", "ops"), ("lab04", None)]
