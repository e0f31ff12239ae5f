"""The 22-field LIST record: field order and escaping of values that hold the separators."""
from __future__ import annotations

import re

from ctys_libvirt.ctys.records import unescape
from ctys_libvirt.model import DomainInfo
from ctys_libvirt.ctys.records import format_records, list_record


def split_record(line: str) -> list:
    return [unescape(f) for f in re.split(r"(?<!\\);", line)]   # no value here ends in '\\'


def _info(**kw) -> DomainInfo:
    args = dict(name="vm1", uuid="0f7a9e4c-1111-2222-3333-444455556666", state="running",
                backend="libvirt", host="h1", ours=True, label="vm1", mac="00:50:56:13:11:40",
                ip="10.1.2.3", vnc_display=1, vnc_port=5901, pid=42, conf_path="/vm/vm1/vm1.ctys",
                accelerator="QEMU", arch="x86_64", user="root")
    args.update(kw)
    return DomainInfo(**args)


def test_plain_record_in_canonical_order():
    rec = list_record(_info())
    assert rec.canonical() == ("h1;QEMU;vm1;/vm/vm1/vm1.ctys;0f7a9e4c111122223333444455556666;"
                               "00:50:56:13:11:40;10.1.2.3;1;5901;;42;root;;SERVER;;;;;;;QEMU;x86_64")


def test_separators_inside_values_are_escaped_and_read_back():
    nasty = _info(name="a;b", label=None, ours=False, conf_path=None,
                  extra={"emulator": "/opt/q;emu\\bin/qemu\nx"})
    line = format_records([nasty])
    assert "\n" not in line
    fields = split_record(line)
    assert len(fields) == 22
    assert fields[2] == "a;b"
    assert fields[18] == "/opt/q;emu\\bin/qemu\nx"
    ours = list_record(_info(conf_path="/vm/x;y/vm1.ctys")).canonical()
    assert split_record(ours)[3] == "/vm/x;y/vm1.ctys"
