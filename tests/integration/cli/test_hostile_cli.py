"""Black-box abuse of both command-line tools, the way users break them.

Every failure must be one stderr line starting with the tool name and naming the object,
a documented exit code (README 'Exit codes'), no traceback, no hang, and nothing of the
user's changed.  The CLIs run as subprocesses with HOME pointed at a scratch directory,
so no inventory or scan cache of the real user is touched.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
import uuid as uuidlib
from pathlib import Path

import pytest
from lxml import etree

from support import cli
from support.paths import REPO

EXAMPLE = REPO / "examples" / "hello"
HELLO_IMG = REPO / "examples" / "guests" / "hello.img"
TOOLS = ("ctys-libvirt", "ctys-qemu")


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def home():
    root = Path(f"/var/tmp/ctys-hostile-{os.getpid()}")
    shutil.rmtree(root, ignore_errors=True)
    (root / "home").mkdir(parents=True)
    os.chmod(root, 0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def home_env(home):
    """The module's CLI environment (for ``support.cli``): HOME in the scratch tree and no
    inventory database, so defaults under ~ are exercised."""
    return {"CTYS_INVENTORY_DB": None, "HOME": str(home / "home"),
            "CTYS_SCAN_CACHE_DIR": str(home / "cache")}


def run(tool, *args, env, timeout=30, **kw):
    return cli.run(tool, *args, env=env, timeout=timeout, **kw)


def one_error(p, code, *needles, tool=None):
    """Exactly one stderr line (warnings aside), the documented code, no traceback."""
    return cli.one_error(p, code, *needles, prog=tool, warnings_allowed=True)


def ok(p):
    assert "Traceback" not in p.stderr, p.stderr
    assert p.returncode == 0, (p.returncode, p.stderr)
    return p


def digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def make_vm(root: Path, label: str, *, body: bytes = None, dirname: str = None,
            uuid: str = None, mac: str = None, image: bool = True) -> Path:
    """<root>/<dirname or label>/<label>.ctys from the bundled example, relabelled."""
    d = root / (dirname or label)
    d.mkdir(parents=True, exist_ok=True)
    text = (EXAMPLE / "hello.ctys").read_bytes()
    text = text.replace(b'"hello"', f'"{label}"'.encode())
    text = text.replace(b"c7a5e0d2f1b34a6e9d8c0b1a2f3e4d5c", (uuid or uuidlib.uuid4().hex).encode())
    text = text.replace(b"52:54:00:c7:a5:01",
                        (mac or "52:54:00:%02x:%02x:%02x" % tuple(os.urandom(3))).encode())
    conf = d / f"{label}.ctys"
    conf.write_bytes(body(text) if callable(body) else (body if body is not None else text))
    if image:
        shutil.copyfile(HELLO_IMG, d / "hda.img")
    return conf


@pytest.fixture(scope="module")
def vms(home):
    """A small VM tree: vm1/vm10 (prefix trap), two 'twin's, one normal 'plain'."""
    base = home / "vms"
    make_vm(base, "vm1", uuid="11111111111111111111111111111111", mac="52:54:00:aa:bb:01")
    make_vm(base, "vm10", uuid="10101010101010101010101010101010", mac="52:54:00:aa:bb:10")
    make_vm(base / "a", "twin")
    make_vm(base / "b", "twin")
    make_vm(base, "plain")
    return base


# ---------------------------------------------------------------------------
# conf files that are not what they claim
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, body, needle", [
    ("nul", lambda t: t.replace(b"MEMSIZE=16", b"MEMSIZE=1\x006"), "NUL"),
    ("garbage", lambda t: bytes(range(256)) * 16, "NUL"),
    ("utf16", lambda t: t.decode().encode("utf-16"), "NUL"),
    ("big", lambda t: t + b"#" + b"x" * (10 * 1024 * 1024) + b"\n", "larger than"),
    ("nested", lambda t: t + b"if [ -n x ]; then\n" * 10000 + b"A=1\n" + b"fi\n" * 10000,
     "nested deeper"),
    ("empty", lambda t: b"", "MAGICID-QEMU"),
    ("cmdsub", lambda t: t + b"X=$(touch CANARY)\nY=`touch CANARY`\n", "$("),
])
def test_broken_confs_are_conf_errors_and_unchanged(home, home_env, name, body, needle):
    conf = make_vm(home / "broken", name, body=body)
    before = digest(conf)
    for cmd in ("check", "xml", "argv"):
        one_error(run("ctys-libvirt", cmd, conf, env=home_env, cwd=conf.parent), 3, str(conf), needle)
    one_error(run("ctys-qemu", "-a", f"CREATE=P:{conf},CONSOLE:NONE", env=home_env, cwd=conf.parent),
              3, str(conf), tool="ctys-qemu")
    assert digest(conf) == before
    assert not (conf.parent / "CANARY").exists()


@pytest.mark.parametrize("name, body", [
    ("bad-utf8", lambda t: t.replace(b'"bootsector"', b'"\xff\xfe\xc3 os"')),
    ("latin1", lambda t: t.replace(b"NIC=rtl8139", b"# caf\xe9\nNIC=rtl8139")),
    ("bom-crlf", lambda t: b"\xef\xbb\xbf" + t.replace(b"\n", b"\r\n")),
])
def test_hand_edited_encodings_still_translate(home, home_env, name, body):
    conf = make_vm(home / "enc", name, body=body)
    p = ok(run("ctys-libvirt", "xml", conf, env=home_env))
    root = etree.fromstring(p.stdout.encode())
    assert root.findtext("name") == name
    json.loads(ok(run("ctys-libvirt", "check", "--format", "json", conf, env=home_env)).stdout)


def test_directory_named_ctys(home, home_env):
    d = home / "dirconf" / "x.ctys"
    (d / "sub").mkdir(parents=True)
    one_error(run("ctys-libvirt", "xml", d, env=home_env), 2, str(d))
    one_error(run("ctys-libvirt", "check", d, env=home_env), 2, str(d))


def test_fifo_conf_never_blocks(home, home_env):
    d = home / "fifo" / "vmf"
    d.mkdir(parents=True)
    fifo = d / "vmf.ctys"
    os.mkfifo(fifo)
    for cmd in ("check", "xml", "create"):
        one_error(run("ctys-libvirt", cmd, fifo, env=home_env, timeout=15), 2, "vmf.ctys",
                  "not a regular file")
    one_error(run("ctys-libvirt", "xml", d, env=home_env, timeout=15), 2, str(d))
    one_error(run("ctys-libvirt", "xml", "-b", home / "fifo", "vmf", env=home_env, timeout=15), 2, "vmf")
    ok(run("ctys-libvirt", "enumerate", "--full", home / "fifo", env=home_env, timeout=15))
    ok(run("ctys-qemu", "-a", f"ENUMERATE=MACHINE,B:{home / 'fifo'}", env=home_env, timeout=15))


def test_symlink_loop(home, home_env):
    d = home / "loop"
    d.mkdir()
    os.symlink("b.ctys", d / "a.ctys")
    os.symlink("a.ctys", d / "b.ctys")
    for cmd in ("check", "xml"):
        one_error(run("ctys-libvirt", cmd, d / "a.ctys", env=home_env), 2, "a.ctys", "symlink loop")
    p = ok(run("ctys-libvirt", "enumerate", d, env=home_env))
    assert "Too many levels of symbolic links" in p.stderr


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root + setpriv")
def test_unreadable_conf_without_dac_override(home, home_env):
    """chmod 000 as a user would meet it: root without CAP_DAC_OVERRIDE/READ_SEARCH."""
    conf = make_vm(home / "perm", "locked")
    os.chmod(conf, 0)
    drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search",
            "--inh-caps=-dac_override,-dac_read_search"]
    try:
        for cmd in ("check", "xml"):
            p = subprocess.run(drop + [*cli.command("ctys-libvirt"), cmd, str(conf)], env=cli.child_env(home_env),
                               capture_output=True, text=True, timeout=30)
            one_error(p, 3, str(conf), "Permission denied")
        p = subprocess.run(drop + [*cli.command("ctys-libvirt"), "enumerate", str(home / "perm")],
                           env=cli.child_env(home_env), capture_output=True, text=True, timeout=30)
        assert p.returncode == 0 and "Traceback" not in p.stderr
        assert "cannot read" in p.stderr and str(conf) in p.stderr
    finally:
        os.chmod(conf, 0o644)


@pytest.mark.parametrize("label", ["a b", "a<b&c", "x" * 65, "vm\u00e9", "-dash", "a;b"])
def test_unusable_labels(home, home_env, label):
    safe = hashlib.md5(label.encode()).hexdigest()[:8]
    conf = make_vm(home / "labels", safe)
    text = conf.read_text().replace(f'"{safe}"', json.dumps(label))
    conf.write_text(text)
    one_error(run("ctys-libvirt", "xml", conf, env=home_env), 3, str(conf), "LABEL")


def test_label_of_64_chars_is_fine(home, home_env):
    conf = make_vm(home / "labels", "y" * 64)
    ok(run("ctys-libvirt", "xml", conf, env=home_env))


def test_startercall_is_never_an_arbitrary_program(home, home_env):
    """Regression: STARTERCALL=/any/program made `argv` (and `create` under auto) run
    `<program> -h` while probing it."""
    canary = home / "ran"
    prog = home / "not-qemu"
    prog.write_text(f"#!/bin/sh\ntouch {canary}\n")
    prog.chmod(0o755)
    conf = make_vm(home / "starter", "starter", body=lambda t: t.replace(
        b"STARTERCALL=${STARTERCALL:-qemu-system-x86_64}", f"STARTERCALL={prog}".encode()))
    for cmd in ("check", "xml", "argv"):
        ok(run("ctys-libvirt", cmd, conf, env=home_env))
    p = ok(run("ctys-libvirt", "argv", conf, env=home_env))
    assert "STARTERCALL" in p.stderr and "never run" in p.stderr
    assert not canary.exists()


def test_bad_install_size_is_a_conf_error(home, home_env):
    """Regression: a bad HDDBOOTIMAGE_INST_SIZE passed `xml` and failed `create` as exit 1."""
    conf = make_vm(home / "instsize", "instsize", body=lambda t: t.replace(
        b"HDDBOOTIMAGE_INST_SIZE=1M", b'HDDBOOTIMAGE_INST_SIZE="1Q; rm -rf /tmp/x"'))
    target = home / "instsize" / "tgt.img"
    req = ["--instmode", f"CD%{conf.parent / 'hda.img'}%HDD%{target}%INIT"]
    one_error(run("ctys-libvirt", "xml", *req, conf, env=home_env), 3, "HDDBOOTIMAGE_INST_SIZE")
    one_error(run("ctys-libvirt", "create", "--backend", "direct", *req, conf, env=home_env), 3,
              "HDDBOOTIMAGE_INST_SIZE")
    assert not target.exists()


def test_bad_keymap_is_a_conf_error(home, home_env):
    conf = make_vm(home / "kbd", "kbd", body=lambda t: t.replace(b"KBD_LAYOUT=en-us",
                                                                  b'KBD_LAYOUT="en us<&"'))
    one_error(run("ctys-libvirt", "xml", "--console", "VNC", conf, env=home_env), 3, "KBD_LAYOUT")


# ---------------------------------------------------------------------------
# boot media and requests
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("opt, needle", [
    (["--bootmode", "CD%/nonexistent.iso"], "/nonexistent.iso"),
    (["--bootmode", "FDD%/nonexistent.img"], "/nonexistent.img"),
    (["--bootmode", "USB%/nonexistent.img"], "/nonexistent.img"),
    (["--bootmode", "CD"], "CDIMAGE"),
    (["--bootmode", "KERNEL"], "KERNELIMAGE"),
    (["--kernel", "/nonexistent.bin"], "/nonexistent.bin"),
    (["--instmode", "CD%/nonexistent.iso%HDD%/var/tmp/ctys-hostile-new.img%INIT"], "/nonexistent.iso"),
])
def test_missing_boot_media(vms, home_env, opt, needle):
    one_error(run("ctys-libvirt", "xml", *opt, vms / "plain", env=home_env), 2, needle)
    assert not Path("/var/tmp/ctys-hostile-new.img").exists()


def test_directory_or_fifo_as_image(home, vms, home_env):
    """Regression: a directory as HDD image gave valid-looking XML; a FIFO as CD hung in
    the format sniffer."""
    fifo = home / "media.fifo"
    os.mkfifo(fifo)
    one_error(run("ctys-libvirt", "xml", "--bootmode", f"HDD%{home}", vms / "plain", env=home_env),
              2, str(home), "is a directory")
    one_error(run("ctys-libvirt", "xml", "--bootmode", f"CD%{fifo}", vms / "plain", env=home_env,
                  timeout=15), 2, str(fifo), "not a regular file")
    target = home / "tgt-dir"
    target.mkdir()
    one_error(run("ctys-libvirt", "xml", "--instmode", f"CD%{vms / 'plain' / 'hda.img'}%HDD%{target}%INIT",
                  vms / "plain", env=home_env), 2, str(target), "is a directory")
    assert list(target.iterdir()) == []


@pytest.mark.parametrize("opt, needle", [
    (["--bootmode", ""], "BOOTMODE"), (["--bootmode", "%%%"], "BOOTMODE"),
    (["--bootmode", "TAPE"], "TAPE"), (["--bootmode", "KERNEL%/x"], "KERNEL"),
    (["--console", ""], "CONSOLE"), (["--console", "VNC:abc"], "VNC:abc"),
    (["--console", "VNC:99999999"], "out of range"), (["--kernel", ""], "KERNEL"),
    (["--instmode", "CD%a%b%c%d%e"], "INSTMODE"), (["--instmode", "FOO%x"], "FOO"),
    (["--argsadd", '-foo "unbalanced'], "ARGSADD"), (["--argsadd", "-foo bar\\"], "ARGSADD"),
])
def test_malformed_requests_are_usage_errors(vms, home_env, opt, needle):
    conf = vms / "plain" / "plain.ctys"
    before = digest(conf)
    one_error(run("ctys-libvirt", "xml", *opt, conf, env=home_env), 1, needle)
    assert digest(conf) == before


@pytest.mark.parametrize("name", ["a b", "a,b", "a:b", "a'b", 'a"b', "a<b", "a\nb", "a%b"])
def test_odd_image_paths_give_valid_xml(home, vms, home_env, name):
    img = home / "odd-images" / f"{name}.img"
    img.parent.mkdir(exist_ok=True)
    shutil.copyfile(HELLO_IMG, img)
    p = ok(run("ctys-libvirt", "xml", "--bootmode", f"HDD%{img}", vms / "plain", env=home_env))
    src = etree.fromstring(p.stdout.encode()).find("devices/disk/source")
    assert src.get("file") == str(img)


def test_non_utf8_file_names(home, home_env):
    """Regression: a VM directory whose name is not UTF-8 raised UnicodeEncodeError from
    lxml (xml) and from SQLite (enumerate --update-db)."""
    base = home / "badname"
    d = os.fsencode(base) + b"/vm\xff\xfe"
    make_vm(Path(os.fsdecode(d)).parent, "bn1", dirname=os.fsdecode(b"vm\xff\xfe"))
    one_error(run("ctys-libvirt", "xml", "-b", base, "bn1", env=home_env), 3, "non-UTF-8")
    p = ok(run("ctys-libvirt", "enumerate", "--update-db", "--db", home / "bn.sqlite", base, env=home_env))
    assert "not valid UTF-8" in p.stderr
    ok(run("ctys-libvirt", "enumerate", "--format", "records", base, env=home_env))


# ---------------------------------------------------------------------------
# options, commands, addresses
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("args, needle", [
    (["frobnicate"], "frobnicate"), (["--frobnicate"], "--frobnicate"),
    (["xml", "--frobnicate", "x"], "--frobnicate"), (["xml"], "CONF"),
    (["list", "--format", "xml"], "--format"), (["cancel", "x", "--mode", "HIBERNATE"], "HIBERNATE"),
    (["cancel", "x", "--timeout", "abc"], "--timeout"), (["create", "x", "--backend", "warp"], "warp"),
    (["create", "x", "--timeout", "-1"], "--timeout"),   # regression: started the VM anyway
    (["create", "x", "--qemu-version", "0.12.5"], "--qemu PATH"),   # was ignored under libvirt
])
def test_unknown_options_and_commands(home_env, args, needle):
    one_error(run("ctys-libvirt", *args, env=home_env), 1, needle)


def test_addresses(vms, home_env):
    b = ["-b", vms]
    name = lambda p: etree.fromstring(ok(p).stdout.encode()).findtext("name")  # noqa: E731
    assert name(run("ctys-libvirt", "xml", *b, "vm1", env=home_env)) == "vm1"         # not vm10
    assert name(run("ctys-libvirt", "xml", *b, "L:vm10", env=home_env)) == "vm10"
    assert name(run("ctys-libvirt", "xml", *b, "M:52:54:00:AA:BB:10", env=home_env)) == "vm10"
    assert name(run("ctys-libvirt", "xml", *b, "U:11111111-1111-1111-1111-111111111111", env=home_env)) == "vm1"
    one_error(run("ctys-libvirt", "xml", *b, "L:vm", env=home_env), 2, "L:vm", str(vms))
    one_error(run("ctys-libvirt", "xml", *b, "L:VM1", env=home_env), 2, "L:VM1")
    line = one_error(run("ctys-libvirt", "xml", *b, "twin", env=home_env), 2, "ambiguous")
    assert str(vms / "a" / "twin" / "twin.ctys") in line and str(vms / "b" / "twin" / "twin.ctys") in line
    assert name(run("ctys-libvirt", "xml", *b, f"L:twin,B:{vms / 'b'}", env=home_env)) == "twin"
    one_error(run("ctys-libvirt", "xml", *b, "U:1234", env=home_env), 1, "U:1234", "UUID")
    one_error(run("ctys-libvirt", "xml", *b, "M:52:54:00:aa:bb", env=home_env), 1, "MAC")
    one_error(run("ctys-libvirt", "xml", *b, "L:vm1,U:10101010101010101010101010101010", env=home_env), 2)
    one_error(run("ctys-libvirt", "xml", "-b", "/nonexistent-base", "vm1", env=home_env), 2,
              "/nonexistent-base")
    # a typo'd local ENUMERATE base is 'not found' in both front ends, not an empty scan
    one_error(run("ctys-libvirt", "enumerate", "/nonexistent-base", env=home_env), 2, "/nonexistent-base")
    one_error(run("ctys-qemu", "-a", "ENUMERATE=B:/nonexistent-base", env=home_env), 2,
              "/nonexistent-base", tool="ctys-qemu")
    # regression: an unknown key was looked up as the label 'X:abc' (exit 2)
    one_error(run("ctys-libvirt", "xml", *b, "X:abc", env=home_env), 1, "'X'")
    one_error(run("ctys-qemu", "-a", "CREATE=L:twin", "--base", vms, env=home_env), 2, "ambiguous",
              tool="ctys-qemu")


# ---------------------------------------------------------------------------
# libvirt unreachable
# ---------------------------------------------------------------------------

def test_explicit_connect_never_falls_back_to_direct(vms, home_env):
    """Regression: `create -c <bad URI>` under --backend auto silently started the VM with
    the local direct backend (rc 0) -- for a qemu+ssh URI on the wrong host."""
    label = f"ctystest-hostile-{os.getpid()}"
    conf = make_vm(vms.parent / "conn", label)
    try:
        for uri, needle in (("bogus:///x", "check the URI"),
                            ("qemu+ssh://nohost.invalid/system", "nohost.invalid")):
            one_error(run("ctys-libvirt", "create", "--console", "NONE", "-c", uri, conf, env=home_env),
                      4, f"cannot connect to libvirt at {uri}", needle)
        one_error(run("ctys-libvirt", "list", "-c", "bogus:///x", env=home_env), 4, "bogus:///x")
        listed = ok(run("ctys-libvirt", "list", "--backend", "direct", "--format", "json", env=home_env))
        assert label not in listed.stdout
    finally:
        run("ctys-libvirt", "cancel", "--backend", "direct", "--mode", "FORCE", conf, env=home_env)
        subprocess.run(["virsh", "-q", "-c", "qemu:///system", "destroy", label], capture_output=True)
        subprocess.run(["virsh", "-q", "-c", "qemu:///system", "undefine", "--managed-save",
                        "--nvram", label], capture_output=True)


def test_libvirtd_down_default_uri_falls_back_with_a_warning(home_env):
    """The default (local) URI unreachable = libvirtd down: LIST still shows the direct
    backend's VMs, and says why; INFO needs libvirt and fails with the fix."""
    down = dict(home_env, LIBVIRT_DEFAULT_URI="qemu+unix:///system?socket=/nonexistent/libvirt-sock")
    for tool in TOOLS:
        args = ("-a", "LIST") if tool == "ctys-qemu" else ("list",)
        p = ok(run(tool, *args, env=down))
        lines = p.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"{tool}: warning: cannot connect to libvirt")
        args = ("-a", "INFO") if tool == "ctys-qemu" else ("info",)
        one_error(run(tool, *args, env=down), 4, "sh scripts/setup.sh", "--backend direct", tool=tool)
    remote = dict(home_env, LIBVIRT_DEFAULT_URI="qemu+ssh://nohost.invalid/system")
    one_error(run("ctys-qemu", "-a", "LIST", env=remote), 4, "nohost.invalid", tool="ctys-qemu")


# ---------------------------------------------------------------------------
# the user's files
# ---------------------------------------------------------------------------

def test_failed_install_start_leaves_nothing(home, home_env):
    """Regression: STAGE INIT created the target image, the start failed, and the new
    image stayed behind; a target that existed before is never removed."""
    label = f"ctystest-hostinst-{os.getpid()}"
    conf = make_vm(home / "inst", label)
    target = home / "inst" / "new-target.img"
    req = ["--console", "NONE", "--network", "ctystest-no-such-net", "--backend", "libvirt",
           "--instmode", f"CD%{conf.parent / 'hda.img'}%HDD%{target}%INIT"]
    try:
        one_error(run("ctys-libvirt", "create", *req, conf, env=home_env), 4, label, "ctystest-no-such-net")
        assert not target.exists()
        target.write_bytes(b"precious")
        one_error(run("ctys-libvirt", "create", *req, conf, env=home_env), 4, label)
        assert target.read_bytes() == b"precious"
        gone = subprocess.run(["virsh", "-q", "-c", "qemu:///system", "dominfo", label],
                              capture_output=True)
        assert gone.returncode != 0       # no definition left behind either
    finally:
        subprocess.run(["virsh", "-q", "-c", "qemu:///system", "destroy", label], capture_output=True)
        subprocess.run(["virsh", "-q", "-c", "qemu:///system", "undefine", "--managed-save",
                        "--nvram", label], capture_output=True)

def test_db_option_never_moves_a_users_file(home, vms, home_env):
    """Regression: `enumerate --db /etc/passwd --update-db` renamed the file to
    *.corrupt-<time> and put an SQLite database in its place."""
    victim = home / "notes.txt"
    victim.write_text("root:x:0:0:root:/root:/bin/bash\n")
    before = digest(victim)
    one_error(run("ctys-libvirt", "enumerate", "--update-db", "--db", victim, vms, env=home_env), 1,
              str(victim), "not touching it")
    p = run("ctys-qemu", "--db", victim, "-a", "CREATE=L:vm1", "--base", vms / "nope", env=home_env)
    assert "Traceback" not in p.stderr and p.returncode in (1, 2)
    one_error(run("ctys-libvirt", "enumerate", "--update-db", vms,
                  env=dict(home_env, CTYS_INVENTORY_DB=str(victim))), 1, str(victim))
    assert digest(victim) == before
    assert [x.name for x in home.iterdir() if x.name.startswith("notes.txt")] == ["notes.txt"]


def test_no_stray_top_level_directories(vms, home_env):
    """Regression: HOME=/nonexistent (or --db /typo/x.sqlite) created /nonexistent/... ."""
    ghost = Path(f"/ctys-hostile-ghost-{os.getpid()}")
    try:
        one_error(run("ctys-libvirt", "enumerate", "--update-db", vms, env=dict(home_env, HOME=str(ghost))),
                  2, str(ghost))
        one_error(run("ctys-libvirt", "enumerate", "--update-db", "--db", ghost / "x.sqlite", vms,
                      env=home_env), 2, str(ghost))
        ok(run("ctys-libvirt", "enumerate", vms, env=dict(home_env, HOME=str(ghost), CTYS_SCAN_CACHE_DIR="")))
        assert not ghost.exists()
    finally:
        shutil.rmtree(ghost, ignore_errors=True)


def test_export_to_a_directory(home, home_env):
    """Regression: IsADirectoryError traceback."""
    one_error(run("ctys-libvirt", "enumerate", "--export-enum-fdb", home, "--db", home / "x.sqlite",
                  env=home_env), 1, str(home), "directory")


# ---------------------------------------------------------------------------
# ctys-qemu grammar
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("args, needle", [
    (["-a"], "-a"), (["-a", "CREATE="], "CREATE"), (["-a", "CREATE"], "CREATE"),
    (["-a", "CREATE=,,"], "sub-opts"), (["-a", "CREATE=%%"], "sub-opts"), (["-a", "CREATE=::"], "sub-opts"),
    (["-a", "FOO"], "FOO"), (["-a", "SHOW"], "SHOW"), (["--frob"], "--frob"),
    (["-a", "LIST", "host(-d 1"], "host(-d 1"), (["-a", "LIST", "("], "("),
    (["-a", "CREATE=L:x,REUSE,CONNECT"], "REUSE"), (["-a", "CREATE=U:zz"], "U:zz"),
    (["-a", "CREATE=P:relative/x.ctys"], "P:relative"), (["-a", "CANCEL=ALL,POWEROFF:abc"], "POWEROFF"),
    (["-a", "LIST=TAB_GEN:1_x_99999999999"], "width"), (["-a", "LIST=TAB_GEN:1_x_-5"], "width"),
    (["-a", "LIST=TAB_TCP:99999999999"], "width"), (["-a", "LIST=SORT:%%%"], "SORT"),
    (["-t", "VNC", "-a", "LIST"], "-t VNC"), (["-a", "LIST", "-c", "FOO"], "FOO"),
])
def test_ctys_qemu_grammar_abuse(home_env, args, needle):
    one_error(run("ctys-qemu", *args, env=home_env), 1, needle, tool="ctys-qemu")


@pytest.mark.parametrize("target", ["-oProxyCommand=x", "{a}", "host[-oProxyCommand=x]", "a/b", "us$er@h",
                                    os.fsdecode(b"h\xffx")])
def test_ctys_qemu_bad_host_names(home_env, target):
    """Regression: '-x' went to ssh as a host name, 'h[vm]' into an unparsable URI, and a
    non-UTF-8 name raised UnicodeEncodeError."""
    one_error(run("ctys-qemu", "-a", "LIST", "--", target, env=home_env), 1, "bad ", tool="ctys-qemu")


def test_ctys_qemu_hostile_group_files(home, home_env):
    g = home / "groups"
    g.mkdir()
    (g / "loop1").write_text("#include loop2\nlocalhost\n")
    (g / "loop2").write_text("#include loop1\n")
    (g / "binary").write_bytes(b"host\x00x\n")
    os.mkfifo(g / "fifo")
    e = dict(home_env, CTYS_GROUPS_PATH=str(g))
    one_error(run("ctys-qemu", "-a", "LIST", "--group", "loop1", env=e), 2, "loop", tool="ctys-qemu")
    one_error(run("ctys-qemu", "-a", "LIST", "--group", "binary", env=e), 1, "bad host name",
              tool="ctys-qemu")
    one_error(run("ctys-qemu", "-a", "LIST", "--group", "fifo", env=e, timeout=15), 2, "fifo",
              tool="ctys-qemu")
    one_error(run("ctys-qemu", "-a", "LIST", "--group", "../etc", env=e), 2, "../etc",
              tool="ctys-qemu")


# ---------------------------------------------------------------------------
# machine-readable output
# ---------------------------------------------------------------------------

def _split(line):
    fields, cur, esc = [], "", False
    for ch in line:
        if esc:
            cur += {"n": "\n", "r": "\r"}.get(ch, ch)
            esc = False
        elif ch == "\\":
            esc = True
        elif ch == ";":
            fields.append(cur)
            cur = ""
        else:
            cur += ch
    return fields + [cur]


def test_records_and_json_with_odd_values(home, home_env):
    base = home / "odd"
    make_vm(base, "o1", body=lambda t: t.replace(b'"bootsector"', b'"a;b\\\\c\x1b[31m"')
            .replace(b'#@#VERSION                   = "01.11.018"', b'#@#VERSION = "1\r2;3"')
            .replace(b'"none"', b'"x;y"'))
    p = ok(run("ctys-libvirt", "enumerate", "--format", "records", base, env=home_env))
    lines = p.stdout.split("\n")
    assert lines[-1] == "" and len(lines) == 2            # one record, no stray line breaks
    f = _split(lines[0])
    assert len(f) == 47 and f[2] == "o1" and f[11] == "x;y" and f[15] == "1\r2;3"
    data = json.loads(ok(run("ctys-libvirt", "enumerate", "--format", "json", base, env=home_env)).stdout)
    assert data
    json.loads(ok(run("ctys-libvirt", "check", "--format", "json", base / "o1", env=home_env)).stdout)
    table = ok(run("ctys-libvirt", "check", base / "o1", env=home_env)).stdout
    assert "\x1b" not in table and "\\x1b[31m'" in table     # shown escaped, never raw
    p = ok(run("ctys-qemu", "-a", f"ENUMERATE=MACHINE,B:{base}", env=home_env))
    assert len(_split(p.stdout.rstrip("\n"))) == 47


@pytest.mark.parametrize("tool, args", [
    ("ctys-libvirt", ["xml", "{plain}"]), ("ctys-libvirt", ["enumerate", "--format", "records", "{vms}"]),
    ("ctys-libvirt", ["check", "{plain}"]), ("ctys-qemu", ["-a", "ENUMERATE=MACHINE,B:{vms}"]),
    ("ctys-libvirt", ["--help"]), ("ctys-libvirt", ["xml", "--help"]),
])
def test_reader_going_away(vms, home_env, tool, args):
    """`| head -1` with the reader already gone: EPIPE ends the command quietly."""
    args = [a.format(plain=vms / "plain", vms=vms) for a in args]
    r, w = os.pipe()
    os.close(r)
    try:
        p = subprocess.run([*cli.command(tool), *args], stdout=w, stderr=subprocess.PIPE, text=True,
                           env=cli.child_env(home_env), timeout=30)
    finally:
        os.close(w)
    assert "Traceback" not in p.stderr and "Exception ignored" not in p.stderr, p.stderr
    assert p.stderr == "" and p.returncode == 0


def test_sigint_is_one_line_130(home, vms, home_env):
    """Ctrl-C while blocked (here: probing a 'QEMU' whose -h never answers) is one line,
    exit 130, and leaves nothing behind."""
    slow = home / "slow-qemu"
    slow.write_text("#!/bin/sh\nsleep 30\n")
    slow.chmod(0o755)
    # SIGINT as a terminal delivers it: default disposition in the child even when this test
    # runs in a background job (where the shell leaves SIGINT ignored, and Python with it)
    p = subprocess.Popen([*cli.command("ctys-libvirt"), "argv", "--qemu", str(slow), str(vms / "plain")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli.child_env(home_env),
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    import psutil

    deadline = time.monotonic() + 30       # blocked = the probe's "QEMU" is running
    while not any("slow-qemu" in " ".join(c.cmdline()) for c in _children(psutil, p.pid)):
        if p.poll() is not None:
            pytest.fail(f"argv returned before SIGINT: {p.returncode} {p.stderr.read()}")
        assert time.monotonic() < deadline, "argv never started probing the slow binary"
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=30)
    assert "Traceback" not in err, err
    assert p.returncode == 130, (p.returncode, err)
    assert err.strip() == "ctys-libvirt: error: interrupted"


def _children(psutil, pid):
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []
