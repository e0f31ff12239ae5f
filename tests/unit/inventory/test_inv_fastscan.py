"""ENUMERATE's fast paths give what the plain paths give (issue 12), differentially:

* the record-keys-only header (``parse_header_bytes(record_keys=True)``) makes the same
  records as the full header, for the example confs, the 01.07 layout, every fuzz fragment
  and generated shell-ish text;
* the one-pass shell literals equal the per-variable reference walk below (the code they
  replaced), on the same inputs;
* ``conf_lines`` (the cold scan: bytes -> record lines) gives the full header's records
  joined, and the one-pass ``classify`` the three substring tests it replaced;
* ``read_bytes`` reads what ``open().read()`` reads, at every chunk boundary;
* a scan's record lines are the records joined, serial, forked, cached and uncached alike.
"""
from __future__ import annotations

import inspect
import os
import re
from pathlib import Path
from typing import Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctys_libvirt.inventory import collect, record, scan
from ctys_libvirt.ctys.enum_record import NFIELDS, join_record
from ctys_libvirt.inventory.record import header_records
from ctys_libvirt.inventory.scan import parse_header_bytes

REPO = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())
CONFS = sorted(p for p in (REPO / "tests" / "data").rglob("*")
               if p.suffix in (".ctys", ".conf") and p.is_file()) \
    + sorted((REPO / "examples").rglob("*.ctys"))

# conf-shaped pieces: the key and shell lines the fast paths look at, in odd spellings
PIECES = [
    "#@#MAGICID-QEMU", '#@#LABEL = "x"', "#@#LABEL=y z", "  #@#UUID = '0123'", "\t#@#MAC0 = a:b",
    "#@#MAC = 00:11", "#@#IP0 = 10.0.0.1%255.0.0.0%r%eth0%22%gw", "#@#IP1 = ,", "#@#MAC01 = m1",
    "#@#MAC1 = m2", "#@#MACHINE = no", "#@#IPX = no", "#@#IP\u0661 = no", '#@#OS = "Linux x"',
    "#@#OSREL= 2.6\t1", "#@#DIST = a b c", "#@#CTYSRELEASE = 1", "#@#CTYSREL = 2",
    "#@#VRAM = 64", "#@#VCPU = 3", "#@#INST_ACCELERATOR = KVM", "#@#INST_HYPERREL = q",
    "#@#STARTERCALL = /bin/q", "#@#ARCH = i386", "#@#VMSTATE = DISABLED", "#@#LABELX = no",
    "#@#UUID", "#@#DEFAULTCONSOLE = CLI", "#@#SPORT = 1\r", "#_@#VNCACCESSPORT = 5",
    "MEMSIZE=64", "MEMSIZE=${MEMSIZE:-128}", "MEMSIZE=${OTHER:-1}", "MEMSIZE=$X", "MEMSIZE=",
    "  SMP=2", "\tSMP=${SMP:-4}", "SMP='3'", 'ARCH="x86_64"', "ARCH=${ARCH:-}", "XARCH=1",
    "ACCELERATOR=KVM;", "ACCELERATOR=${ACCELERATOR:-QEMU}", "STARTERCALL=${STARTERCALL:-$Q}",
    "STARTERCALL=`q`", "SMP=1\u00a0", "MEMSIZE=1 # c", "qemu -m 256 -smp 4", "x\r", "",
    "x-m 5 -m 7", "q\u00a0-m\u00a0\u0661\u0662", "-m 64", "\t-m\t\t32 -smp 2",
    "# comment #@#MAC2 = late", "case $A in", "esac",
    "#@#MAGICID-IGNORE", "#@#MAGICID-NOENUM", "#@#MAGICID-do-not-IGNORE", "#@#MAGICID-QEM",
    "#@#MAGICID-#@#MAGICID-QEMU", "x#@#MAGICID-NOENUMy",
]


def _literal_value(text: str, var: str) -> Optional[str]:
    """Reference: the per-variable walk ``_shell_literals`` replaced (one ``find`` loop per
    variable, each occurrence checked for a blank line start)."""
    pat = var + "="
    val: Optional[str] = None
    i = text.find(pat)
    while i >= 0:
        nl = text.rfind("\n", 0, i)
        if not text[nl + 1:i].strip(" \t"):
            m = re.compile(r'["\']?(?:\$\{([A-Za-z_][A-Za-z0-9_]*):-)?([^"\'}\s;`]*)').match(
                text, i + len(pat))
            ref, v = m.group(1), m.group(2)
            if ref is not None and ref != var:
                return None
            if ref is None or not val:
                if "$" in v:
                    return None
                val = v or None
        i = text.find(pat, i + 1)
    return val


def _classify_ref(data: bytes) -> Optional[bool]:
    """Reference: the three substring tests ``classify`` replaced."""
    if b"#@#MAGICID-IGNORE" in data or b"#@#MAGICID-NOENUM" in data:
        return False
    return True if b"#@#MAGICID-QEMU" in data else None


def assert_same(data: bytes, path: str = "/vms/x/x.ctys") -> None:
    full = parse_header_bytes(path, data)
    fast = parse_header_bytes(path, data, record_keys=True)
    assert header_records(fast) == header_records(full)
    # the cold scan's straight bytes -> record lines: the full header's records, joined
    assert scan.classify(data) == _classify_ref(data)
    expect = "\n".join(join_record(r) for r in header_records(full))
    states = {r[18] for r in header_records(full)}
    assert len(states) == 1       # the VMSTATE filter looks at one record per VM
    assert record.conf_lines(path, data) == ((expect, states.pop()) if _classify_ref(data) else None)
    assert record.record_lines(fast) == expect
    assert set(fast.keys) <= set(full.keys)
    assert fast.shell == full.shell
    text = "\n" + data.decode("utf-8", "replace")
    # the -m fallback finds what the plain \s-m\s+ regex finds
    plain_m = re.search(r"\s-m\s+(\d+)", text)
    fast_m = scan._DASH_M_RE.search(text)
    assert (plain_m and plain_m.group(1)) == (fast_m and fast_m.group(1))
    ref = {v: _literal_value(text, v) for v in scan._SHELL_VARS}
    assert scan._shell_literals(scan._SHELL_ASSIGN_RE.findall(text)) == {k: v for k, v in ref.items() if v}


def test_corpus_is_there():
    assert len(CONFS) >= 5


@pytest.mark.parametrize("conf", CONFS, ids=lambda p: p.name)
def test_fast_header_same_records(conf):
    data = conf.read_bytes()
    assert_same(data, str(conf))
    # and with CRLF line ends, TABs and blanks in front of the key lines
    assert_same(data.replace(b"\n", b"\r\n"), str(conf))
    assert_same(data.replace(b"\n#@#", b"\n \t#@#"), str(conf))


def test_record_keys_cover_header_records():
    """Every #@# key header_records reads is matched by the record-keys regex."""
    src = inspect.getsource(record._records)
    used = set(re.findall(r'\bg\("([A-Z_]+)"', src)) | set(re.findall(r'\bk\.get\("([A-Z_]+)"\)', src))
    assert used and used <= set(scan.RECORD_KEYS)
    # LABEL (the label property) and the interface keys
    assert "LABEL" in scan.RECORD_KEYS
    every = "".join(f'#@#{k} = "v{k}"\n' for k in sorted(used | {"LABEL", "MAC3", "IP3"}))
    assert_same(("#@#MAGICID-QEMU\n" + every).encode())


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(PIECES), max_size=25),
       st.lists(st.sampled_from(PIECES), max_size=25))
def test_fast_header_same_records_fuzz(head, body):
    assert_same(("\n".join(head) + "\n#@#MAGICID-QEMU\n" + "\n".join(body)).encode())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet="#@=MACIPLBEUDOSRTVXYZ0123456789_ \t\n\r'\"${}:-;`\u00a0mps\u0661", max_size=300))
def test_fast_header_same_records_text(text):
    assert_same(text.encode("utf-8", "surrogateescape"))


def test_fast_header_fuzz_module_fragments():
    """The conf reader's fuzz fragments and hostile snippets, each alone and all together."""
    import ast

    # the two lists only (the module's helper imports depend on the test layout)
    path = next(REPO.glob("tests/unit/**/test_conf_fuzz.py"))
    ns = {"CANARY": "/fuzz/pwned", "CANARY_DIR": "/fuzz/keep"}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") in ("FRAGMENTS", "HOSTILE")
                                                for t in node.targets):
            exec(compile(ast.Module([node], []), str(path), "exec"), ns)
    FRAGMENTS, HOSTILE = ns["FRAGMENTS"], ns["HOSTILE"]
    assert len(FRAGMENTS) > 20 and len(HOSTILE) > 20

    for piece in FRAGMENTS + HOSTILE:
        assert_same(("#@#MAGICID-QEMU\n" + piece + "\n").encode())
    assert_same(("\n".join(FRAGMENTS + HOSTILE)).encode())


@pytest.mark.parametrize("size", [0, 1, 4096, scan._CHUNK - 1, scan._CHUNK, scan._CHUNK + 1,
                                  3 * scan._CHUNK + 7])
def test_read_bytes_whole_file(tmp_path, size):
    p = tmp_path / "f.ctys"
    p.write_bytes(bytes(range(256)) * (size // 256) + b"x" * (size % 256))
    assert scan.read_bytes(str(p)) == p.read_bytes()


def test_read_bytes_errors(tmp_path):
    with pytest.raises(OSError):
        scan.read_bytes(str(tmp_path / "missing.ctys"))
    with pytest.raises(OSError):
        scan.read_bytes(str(tmp_path))          # a directory


def _tree(root: Path, n: int) -> None:
    """n VMs from the example confs, with the odd cases: escapes in values, IGNORE backups,
    two confs of one stem, VMSTATE values, several interfaces."""
    examples = [p for p in CONFS if p.suffix == ".ctys" and "layout0107" not in str(p)]
    for i in range(n):
        d = root / f"g{i % 7}" / f"vm{i:03d}"
        d.mkdir(parents=True)
        text = examples[i % len(examples)].read_text()
        text = text.replace("#@#MAGICID-QEMU", f"#@#MAGICID-QEMU\n#@#LABEL = \"vm{i:03d}\"\n"
                            f"#@#MAC{i % 3 + 1} = 00:00:00:00:00:{i % 256:02x}\n"
                            + ("#@#VMSTATE = DISABLED\n" if i % 5 == 0 else "")
                            + ("#@#VMSTATE = BROKEN\n" if i % 5 == 1 else "")
                            + ("#@#USTRG = a;b\\c\n" if i % 11 == 0 else ""), 1)
        (d / f"vm{i:03d}.ctys").write_text(text)
        if i % 9 == 0:
            (d / f"vm{i:03d}.ctys.bak").write_text(text.replace("MAGICID-QEMU", "MAGICID-IGNORE"))
        if i % 13 == 0:
            (d / f"vm{i:03d}.old.ctys").write_text(text)


def test_scan_lines_are_the_records_every_way(tmp_path, monkeypatch):
    _tree(tmp_path / "t", 60)
    base = tmp_path / "t"
    runs = {
        "serial": collect.enumerate_local([base], jobs=1),
        "forked": collect.enumerate_local([base], jobs=2),
        "cold cache": collect.enumerate_local([base], cache_dir=tmp_path / "c"),
    }
    # the cache trusts nothing changed within RACY_NS before the caching scan: trust all here
    monkeypatch.setattr(collect, "RACY_NS", -10**12)
    collect.enumerate_local([base], cache_dir=tmp_path / "c2")
    with monkeypatch.context() as m:
        m.setattr(collect, "read_bytes", lambda *a, **k: pytest.fail("cache missed"))
        runs["warm cache"] = collect.enumerate_local([base], cache_dir=tmp_path / "c2")
    ref = runs["serial"]
    assert ref.vms == 60 and len(ref.records) > 0
    assert any("\\;" in line for line in ref.lines)                  # escaped values
    assert {r[18] for r in ref.records} == {"", "DISABLED"}           # BROKEN filtered out
    for name, res in runs.items():
        assert res.lines == ref.lines, name
        assert res.records == ref.records, name
        assert res.lines == [join_record(r) for r in res.records], name
        assert sorted(res.warnings) == sorted(ref.warnings), name   # walk order differs
        assert res.vms == ref.vms, name
    # the slow path: full headers, records joined
    slow = scan.scan([base])
    expect = [join_record(r) for h in slow.headers for r in header_records(h)
              if r[18] in ("", "ACTIVE", "DISABLED")]
    assert ref.lines == expect
    assert sorted(ref.warnings) == sorted(slow.warnings) and len(ref.warnings) == 5


def test_result_records_and_lines_either_way():
    recs = [[str(i)] * NFIELDS for i in range(3)]
    recs[1][5] = "a;b\\c\nd"
    res = collect.EnumerateResult(records=recs)
    assert res.lines == [join_record(r) for r in recs]
    res2 = collect.EnumerateResult()
    res2.lines.extend(res.lines)
    assert res2.records == recs
    res2.records = recs[:1]
    assert res2.lines == [join_record(recs[0])]


def _interfaces_reference(keys):
    """Reference: the regex-driven interface walk record._interfaces replaced."""
    idx = {}
    for k, v in keys.items():
        if k[:1] not in ("M", "I"):
            continue
        m = re.fullmatch(r"(MAC|IP)(\d*)", k)
        if not m:
            continue
        slot = idx.setdefault(m.group(2), ["", ""])
        slot[0 if m.group(1) == "MAC" else 1] = scan.last_word(v)
    out = []
    for n in sorted(idx, key=lambda s: (s != "", int(s) if s else -1)):
        mac, ip = idx[n]
        if mac or ip:
            out.append((n, mac, ip))
    return out


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(
    st.one_of(st.sampled_from(["MAC", "IP", "MAC0", "IP0", "MAC1", "IP01", "MAC10", "IP2", "MACX",
                               "IPMAC", "MAC\u0661", "IP\u00b2", "INST_X", "LABEL", "M", "I"]),
              st.builds(lambda a, n: a + n, st.sampled_from(["MAC", "IP"]),
                        st.text(alphabet="0123456789\u0661x", max_size=3))),
    st.text(alphabet="ab: \t,%", max_size=8), max_size=8))
def test_interfaces_same_as_the_regex_walk(keys):
    assert record._interfaces(keys) == _interfaces_reference(keys)


def test_forked_scan_falls_back_when_a_child_fails(tmp_path, monkeypatch):
    """The forked half of a scan comes back through a pipe; a child that dies has its part
    scanned by the parent, so the result is the serial one all the same."""
    _tree(tmp_path / "t", 40)
    serial = collect.enumerate_local([tmp_path / "t"], jobs=1)
    parent = os.getpid()
    real = collect._scan_unit

    def unit(args):
        if os.getpid() != parent:
            os._exit(3)                         # the child dies without an answer
        return real(args)

    monkeypatch.setattr(collect, "_scan_unit", unit)
    monkeypatch.setattr(collect.threading, "active_count", lambda: 1)
    forks = []
    real_fork = os.fork
    monkeypatch.setattr(collect.os, "fork", lambda: forks.append(1) or real_fork())
    res = collect.enumerate_local([tmp_path / "t"], jobs=2)
    assert forks == [1]
    assert res.lines == serial.lines and res.vms == serial.vms == 40


def test_read_ahead_scan_equals_the_plain_one(tmp_path, monkeypatch):
    """On a network file system the cold scan reads ahead in threads: same records, same
    warnings (an unreadable conf included), in the same order."""
    _tree(tmp_path / "t", 50)
    base = str(tmp_path / "t")
    broken = sorted(scan.iter_ctys_files(base, []))[7]
    real = scan.read_bytes

    def read(p):
        if p == broken:
            raise PermissionError(13, "Permission denied")
        return real(p)

    monkeypatch.setattr(scan, "read_bytes", read)
    plain, ahead = scan.ScanResult(), scan.ScanResult()
    opts = dict(include_ignored=False, full=False, context=None, record_keys=True)
    scan._scan_files(scan.iter_ctys_files(base, []), plain, set(), **opts)
    scan._scan_files(scan.iter_ctys_files(base, []), ahead, set(), read_threads=4, **opts)
    assert [h.path for h in ahead.headers] == [h.path for h in plain.headers]
    assert [header_records(h) for h in ahead.headers] == [header_records(h) for h in plain.headers]
    assert ahead.warnings == plain.warnings and f"cannot read {broken}: Permission denied" in plain.warnings
    assert ahead.files_seen == plain.files_seen
    # enumerate_local reads ahead where read_ahead_threads says so, serial and forked alike
    monkeypatch.setattr(scan, "read_bytes", real)
    ref = collect.enumerate_local([base], jobs=1)
    used = []
    real_ahead = scan._read_ahead
    monkeypatch.setattr(scan, "_read_ahead", lambda *a, **k: used.append(1) or real_ahead(*a, **k))
    monkeypatch.setattr(collect, "_read_ahead", scan._read_ahead)   # the records' own loop
    monkeypatch.setattr(collect, "read_ahead_threads", lambda b: 4)
    for jobs in (1, 2):
        used.clear()
        res = collect.enumerate_local([base], jobs=jobs)
        assert res.lines == ref.lines and sorted(res.warnings) == sorted(ref.warnings)
        assert used


def test_network_file_systems_are_told_from_mountinfo(tmp_path):
    info = tmp_path / "mountinfo"
    info.write_text(
        "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
        "40 22 0:50 / /srv/vms rw,relatime shared:30 - nfs4 fs:/export/vms rw,vers=4.2\n"
        "41 40 0:51 / /srv/vms/local\\040disk rw - xfs /dev/sdb1 rw\n")
    assert scan.fs_type("/srv/vms/x/x.ctys", str(info)) == "nfs4"
    assert scan.fs_type("/srv/vms", str(info)) == "nfs4"
    assert scan.fs_type("/srv/vms/local disk/y", str(info)) == "xfs"
    assert scan.fs_type("/srv/vmsx", str(info)) == "ext4"
    assert scan.fs_type("/x", str(tmp_path / "missing")) == ""
    assert "nfs4" in scan.NETWORK_FS and "ext4" not in scan.NETWORK_FS
    assert scan.read_ahead_threads(str(tmp_path)) == (
        scan.READ_AHEAD_THREADS if scan.fs_type(str(tmp_path)) in scan.NETWORK_FS else 0)
