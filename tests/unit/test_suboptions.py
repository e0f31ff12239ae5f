"""The ctys suboption grammar (ctys-cli.md §1.4) and the action specs built on it."""
from __future__ import annotations

import pytest

from ctys_libvirt.errors import UsageError
from ctys_libvirt.ctys.address import MachineAddress, collect_addresses, looks_like_address, parse_address
from ctys_libvirt.ctys.grammar import escape_value, split_action, split_subopts
from ctys_libvirt.ctys.actions import parse_cancel, parse_create
from ctys_libvirt.ctys.columns import parse_collector


def kv(text):
    return [(s.key, s.arg) for s in split_subopts(text)]


# -- tokenizer ----------------------------------------------------------------

def test_keys_upper_cased_and_values_kept():
    assert kv("label:MyVM,reuse,Console:vnc") == [("LABEL", "MyVM"), ("REUSE", None), ("CONSOLE", "vnc")]


def test_double_comma_is_literal_comma():
    assert kv("c:a,,b,x") == [("C", "a,b"), ("X", None)]


def test_backslash_comma_is_literal_comma():
    assert kv("c:a\\,b,x:1") == [("C", "a,b"), ("X", "1")]


def test_double_colon_is_literal_colon():
    assert kv("console:vnc::5901") == [("CONSOLE", "vnc:5901")]


def test_backslash_colon_is_literal_colon():
    assert kv("f:a\\:b") == [("F", "a:b")]


def test_double_colon_in_key_position_makes_a_flag_key():
    # the first *unmasked* ':' separates key and argument
    assert kv("d::e") == [("D:E", None)]


def test_second_single_colon_is_kept_not_dropped():
    # legacy dropped text after a second ':' (defect); we keep it
    assert kv("console:VNC:5901") == [("CONSOLE", "VNC:5901")]


def test_mac_needs_no_escaping():
    assert kv("m:00:50:56:13:11:39") == [("M", "00:50:56:13:11:39")]


def test_percent_separates_values_and_becomes_blank_in_arg():
    so = split_subopts("argsadd:S%-usb%-usbdevice%tablet")[0]
    assert so.values == ("S", "-usb", "-usbdevice", "tablet")
    assert so.arg == "S -usb -usbdevice tablet"


def test_double_percent_is_literal_percent():
    so = split_subopts("x:50%%%y")[0]
    assert so.values == ("50%", "y")
    assert so.arg == "50% y"


def test_single_trailing_quote_is_stripped():
    assert kv("l:vm1'") == [("L", "vm1")]
    assert kv("l:'vm1'") == [("L", "'vm1'")]  # matched quotes are data


def test_order_and_repetition_preserved():
    assert [s.key for s in split_subopts("l:a,u:1,l:b")] == ["L", "U", "L"]


def test_empty_string_gives_nothing():
    assert split_subopts("") == []


def test_stray_comma_is_an_error():
    with pytest.raises(UsageError, match="empty suboption"):
        split_subopts("l:a,,,")  # ',,' literal then a trailing ',' -> empty item


def test_split_action_at_first_equal_sign_only():
    assert split_action("create=l:a=b,reuse") == ("CREATE", "l:a=b,reuse")
    assert split_action("list") == ("LIST", "")


def test_escape_value_round_trips():
    raw = "a,b:c%d"
    so = split_subopts("x:" + escape_value(raw))[0]
    assert so.values == (raw,)


# -- machine addresses ----------------------------------------------------------

@pytest.mark.parametrize("text,field,value", [
    ("LABEL:vm1", "label", "vm1"), ("L:vm1", "label", "vm1"),
    ("UUID:3f2a6c1e-9b7d", "uuid", "3f2a6c1e-9b7d"), ("U:abc", "uuid", "abc"),
    ("MAC:00:50:56:13:11:40", "mac", "00:50:56:13:11:40"), ("M:aa:bb:cc:dd:ee:ff", "mac", "aa:bb:cc:dd:ee:ff"),
    ("FILENAME:vm1.ctys", "filename", "vm1.ctys"), ("FNAME:x", "filename", "x"), ("F:x", "filename", "x"),
    ("ID:/vm/a.ctys", "id", "/vm/a.ctys"), ("I:/vm/a.ctys", "id", "/vm/a.ctys"),
    ("PNAME:/vm/a.ctys", "pname", "/vm/a.ctys"), ("P:/vm/a.ctys", "pname", "/vm/a.ctys"),
    ("PATHNAME:/vm/a.ctys", "pname", "/vm/a.ctys"),
    ("TCP:10.0.0.1", "tcp", "10.0.0.1"), ("T:host1", "tcp", "host1"),
    ("DBRECORD:3", "dbrecord", 3), ("DBREC:3", "dbrecord", 3), ("DR:3", "dbrecord", 3),
])
def test_every_address_alias(text, field, value):
    assert getattr(parse_address(text), field) == value


def test_basepath_list():
    a = parse_address("l:x,b:/vm%/data/vm")
    assert a.label == "x" and a.basepaths == ("/vm", "/data/vm")


def test_relative_pname_rejected():
    with pytest.raises(UsageError, match="absolute"):
        parse_address("P:vm/a.ctys")


def test_dbrecord_must_be_integer():
    with pytest.raises(UsageError, match="not a record index"):
        parse_address("DR:x")


def test_address_part_without_value():
    with pytest.raises(UsageError, match="needs a value"):
        parse_address("L")


def test_unknown_address_key():
    with pytest.raises(UsageError, match="unknown machine-address part 'Q'"):
        parse_address("L:a,Q:b")


def test_looks_like_address():
    assert looks_like_address("l:vm1") and looks_like_address("UUID:x")
    assert not looks_like_address("vm1") and not looks_like_address("/a:b")
    assert not looks_like_address("console:x")


def test_cancel_addresses_split_on_repeated_key():
    addrs = collect_addresses(split_subopts("l:a,u:1,l:b,b:/vm"), multiple=True)
    assert [(a.label, a.uuid, a.basepaths) for a in addrs] == [("a", "1", ("/vm",)), ("b", None, ("/vm",))]


def test_create_last_repeated_key_wins():
    assert collect_addresses(split_subopts("l:a,l:b"))[0].label == "b"


# -- CREATE ----------------------------------------------------------------------

def test_create_full_spec():
    s = parse_create("l:vm1,reuse,console:vnc::5901,bootmode:cd%/iso/x.iso,instmode,"
                     "kernel:/k%/i%root=/dev/sda1,argsadd:S%-usb%-usbdevice%tablet,user:bob,"
                     "waitc:2,waits:3,ping:5%1,sshping:on")
    assert s.address.label == "vm1"
    assert s.attach == "REUSE"
    assert s.console == "vnc:5901"
    assert s.bootmode == "cd%/iso/x.iso"
    assert s.instmode == ""
    assert s.kernel == "/k%/i%root=/dev/sda1"
    assert s.argsadd == ("-usb -usbdevice tablet",)
    assert s.user == "bob" and s.waitc == 2 and s.waits == 3
    assert (s.ping.enabled, s.ping.count, s.ping.sleep) == (True, 5, 1)
    assert s.sshping.enabled and (s.sshping.count, s.sshping.sleep) == (20, 2)


def test_create_instmode_fields_keep_percent():
    s = parse_create("l:a,instmode:CD%/iso/inst.iso%HDD%default%INIT")
    assert s.instmode == "CD%/iso/inst.iso%HDD%default%INIT"


@pytest.mark.parametrize("attach", ["CONNECT", "REUSE", "RECONNECT", "RESUME"])
def test_create_attach_flags(attach):
    assert parse_create(f"l:a,{attach.lower()}").attach == attach


def test_create_attach_modes_exclusive():
    with pytest.raises(UsageError, match="EXOR"):
        parse_create("l:a,connect,reuse")


def test_create_duplicate_console():
    with pytest.raises(UsageError, match="CONSOLE has to be unique"):
        parse_create("l:a,console:vnc,console:sdl")


@pytest.mark.parametrize("attach", ["reuse", "connect", "reconnect"])
def test_create_sdl_only_initial(attach):
    with pytest.raises(UsageError, match="SDL could be used as initial CONSOLE only: omit"):
        parse_create(f"l:a,console:SDL,{attach}")


def test_create_missing_address():
    with pytest.raises(UsageError, match="Missing parameter for target entity of action"):
        parse_create("reuse,console:vnc")


def test_create_base_alone_is_no_address():
    with pytest.raises(UsageError, match="Missing parameter for target entity"):
        parse_create("b:/vm")


def test_create_unknown_suboption():
    with pytest.raises(UsageError, match="Unknown sub-opts for QEMU:FOO"):
        parse_create("l:a,foo:1")


def test_create_unknown_flag():
    with pytest.raises(UsageError, match="Unknown sub-opts for QEMU:PXE"):
        parse_create("l:a,pxe")


@pytest.mark.parametrize("key", ["console", "bootmode", "kernel", "argsadd", "user", "waitc", "ping"])
def test_create_key_requires_argument(key):
    with pytest.raises(UsageError, match=f"Erroneous KEY:{key.upper()}"):
        parse_create(f"l:a,{key}")


def test_argsadd_client_target_rejected():
    with pytest.raises(UsageError, match="Only valid target for additional arguments is 'S'"):
        parse_create("l:a,argsadd:C%-x")


def test_argsadd_both_target_rejected():
    with pytest.raises(UsageError, match="Only valid target for additional arguments is 'S'"):
        parse_create("l:a,argsadd:B%-x")


def test_argsadd_missing_target():
    with pytest.raises(UsageError, match="Missing target for additional arguments"):
        parse_create("l:a,argsadd:-usb")


def test_argsadd_repeated_accumulates():
    assert parse_create("l:a,argsadd:S%-usb,argsadd:S%-no-hpet").argsadd == ("-usb", "-no-hpet")


def test_waits_numeric():
    with pytest.raises(UsageError, match="WAITS has to be numeric"):
        parse_create("l:a,waits:x")


def test_ping_count_form_needs_both():
    with pytest.raises(UsageError, match="Both are mandatory"):
        parse_create("l:a,ping:5")


def test_ping_non_numeric():
    with pytest.raises(UsageError, match="Non-Numeric"):
        parse_create("l:a,ping:a%b")


def test_stackcheck_values():
    assert parse_create("l:a,stackcheck:hwcap%nocontext").stackcheck == "HWCAP%NOCONTEXT"
    with pytest.raises(UsageError, match="STACKCHECK"):
        parse_create("l:a,stackcheck:bogus")


def test_callopts_accepted_with_warning():
    s = parse_create("l:a,c:x%y")
    assert s.callopts == "x y" and s.warnings


def test_dbrecord_priority_warning():
    s = parse_create("dr:2,l:a")
    assert s.address.dbrecord == 2 and any("priority" in w for w in s.warnings)


def test_create_flag_with_argument_rejected():
    with pytest.raises(UsageError, match="REUSE takes no argument"):
        parse_create("l:a,reuse:1")


# -- CANCEL ----------------------------------------------------------------------

def test_cancel_defaults_to_poweroff_20s():
    s = parse_cancel("l:a")
    assert s.method == "POWEROFF" and s.wait_seconds == 20 and s.scope == "SERVER"


def test_cancel_poweroff_delay():
    s = parse_cancel("l:a,poweroff:5")
    assert s.method == "POWEROFF" and s.delay == 5 and s.wait_seconds == 5


def test_cancel_timeout_overrides_delay():
    assert parse_cancel("l:a,poweroff:5,timeout:9").wait_seconds == 9


@pytest.mark.parametrize("key,method", [("s5", "POWEROFF"), ("reset", "RESET"), ("reboot", "REBOOT"),
                                        ("pause", "PAUSE"), ("s3", "PAUSE"), ("suspend", "SUSPEND"),
                                        ("s4", "SUSPEND"), ("resume", "RESUME")])
def test_cancel_methods_bare(key, method):
    assert parse_cancel(f"l:a,{key}").method == method


def test_cancel_force_and_all():
    s = parse_cancel("all,force")
    assert s.all and s.force and not s.addresses


def test_cancel_several_addresses():
    s = parse_cancel("l:a,l:b,u:3f2a6c1e9b7d4e0a8c5b1d2e3f4a5b6c")
    assert [(a.label, a.uuid) for a in s.addresses] == [("a", None), ("b", "3f2a6c1e9b7d4e0a8c5b1d2e3f4a5b6c")]


def test_cancel_methods_exclusive():
    with pytest.raises(UsageError, match="EXOR.*REBOOT\\|RESET"):
        parse_cancel("l:a,reset,poweroff")


def test_cancel_scope_exclusive():
    with pytest.raises(UsageError, match="CLIENT\\|SERVER\\|BOTH"):
        parse_cancel("l:a,client,server")


def test_cancel_client_with_poweroff():
    with pytest.raises(UsageError, match="CLIENT cannot be combined with POWEROFF"):
        parse_cancel("l:a,client,poweroff")


def test_cancel_missing_address():
    with pytest.raises(UsageError, match="Missing address parameter."):
        parse_cancel("poweroff:5")


def test_cancel_timeout_requires_value():
    with pytest.raises(UsageError, match="TIMEOUT requires a value"):
        parse_cancel("l:a,timeout")


def test_cancel_unknown():
    with pytest.raises(UsageError, match="Unknown sub-opts for QEMU:BOGUS"):
        parse_cancel("l:a,bogus")


def test_cancel_self_is_parsed():
    """SELF is checked against the targets by ctys-qemu (only a stack target's VM)."""
    assert parse_cancel("all,self").include_self
    assert not parse_cancel("all").include_self
    with pytest.raises(UsageError, match="SELF takes no argument"):
        parse_cancel("all,self:x")


def test_cancel_init_refused_clearly():
    with pytest.raises(UsageError, match="pure guest-OS"):
        parse_cancel("l:a,init:3")


def test_cancel_poweroff_delay_numeric():
    with pytest.raises(UsageError, match="numeric"):
        parse_cancel("l:a,poweroff:soon")


# -- LIST / ENUMERATE selectors ---------------------------------------------------

def test_list_machine_and_title():
    s = parse_collector("machine,titleidx", "LIST")
    assert s.machine and s.terse and s.title == "TITLEIDX"


def test_list_fields_canonical_order():
    s = parse_collector("pid,label,host,terse", "LIST")
    assert s.fields == [1, 3, 11] and s.terse


def test_list_tab_gen():
    s = parse_collector("tab_gen:3_label_10%4_id_20_L", "LIST")
    assert [(c.index, c.title, c.width, c.mode) for c in s.table] == [(3, "label", 10, ""), (4, "id", 20, "L")]


def test_list_tab_tcp_widths():
    s = parse_collector("tab_tcp:20%15", "LIST")
    assert s.table[0].width == 20 and s.table[1].width == 15 and s.table[2].width == 8


def test_list_sort_flags():
    s = parse_collector("sort:all%unique%3", "LIST")
    assert s.sort and s.sort_unique and s.sort_key == 3


def test_list_bad_sort_flag():
    with pytest.raises(UsageError, match="unknown sort flag"):
        parse_collector("sort:sideways", "LIST")


def test_list_site_exclusive():
    with pytest.raises(UsageError, match="SERVER\\|CLIENT"):
        parse_collector("server,client", "LIST")


def test_list_unknown_key():
    with pytest.raises(UsageError, match="Unknown sub-opts for LIST:BOGUS"):
        parse_collector("bogus", "LIST")


def test_enumerate_base_and_matchvstat():
    s = parse_collector("b:/vm%/data,matchvstat:active%empty,machine", "ENUMERATE")
    assert s.basepaths == ("/vm", "/data") and s.matchvstat == ("ACTIVE", "EMPTY") and s.machine


def test_enumerate_field_keys_use_47_field_numbering():
    s = parse_collector("label,uuid,vram,defcon", "ENUMERATE")
    assert s.fields == [3, 5, 40, 47]


def test_enumerate_missing_base():
    with pytest.raises(UsageError, match="Missing base for search"):
        parse_collector("b:", "ENUMERATE")


def test_enumerate_bad_vstate():
    with pytest.raises(UsageError, match="unknown state"):
        parse_collector("matchvstat:sleepy", "ENUMERATE")


def test_enumerate_custom_vstate():
    assert parse_collector("matchvstat:custom%sleepy", "ENUMERATE").matchvstat == ("CUSTOM", "SLEEPY")


def test_tab_gen_bad_column():
    with pytest.raises(UsageError, match="bad column"):
        parse_collector("tab_gen:99_x_3", "LIST")


def test_create_spec_maps_onto_boot_request():
    from ctys_libvirt.model import BootMode, ConsoleType
    from ctys_libvirt.translate.request import make_request

    s = parse_create("l:a,bootmode:cd%/iso/x.iso,console:vnc::5903,argsadd:S%-usb%-usbdevice%tablet")
    req = make_request(bootmode=s.bootmode, instmode=s.instmode, kernel=s.kernel, console=s.console,
                       argsadd=s.argsadd)
    assert (req.bootmode, req.boot_path) == (BootMode.CD, "/iso/x.iso")
    assert (req.console, req.vnc_display) == (ConsoleType.VNC, 3)
    assert req.argsadd == ("-usb -usbdevice tablet",)
    k = parse_create("l:a,kernel:/b/vmlinuz%/b/initrd%console=ttyS0 root=/dev/sda1,console:none")
    req = make_request(kernel=k.kernel, console=k.console)
    assert req.kernel == "/b/vmlinuz%/b/initrd%console=ttyS0 root=/dev/sda1"
    assert req.console is ConsoleType.NONE
    i = parse_create("l:a,instmode:CD%/iso/i.iso%HDD%default%INIT")
    assert make_request(instmode=i.instmode).instmode == "CD%/iso/i.iso%HDD%default%INIT"

