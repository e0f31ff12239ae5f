"""`ctys-libvirt xml`: XML on stdout, warnings on stderr, one-line errors with exit codes."""

import pytest
from lxml import etree
from support.cli import run_cli
from support.translate import assert_valid, example_tree

def run(*args):
    return run_cli("xml", *args, env={"COLUMNS": "200"}, timeout=60)


@pytest.fixture(scope="module")
def tree(shared_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    return example_tree(shared_dir, root)


def test_xml_for_vm_dir(tree):
    r = run(tree["debian5"].parent, "--mydist", "CentOS", "--console", "VNC:3", "--validate",
            "--argsadd", "-no-hpet", "--argsadd", "-name 'a b'", "--argsadd", "-smbios type=1")
    assert r.returncode == 0, r.stderr
    root = assert_valid(r.stdout)
    assert root.findtext("name") == "debian5"
    assert root.find("devices/graphics").get("port") == "5903"
    assert root.find("devices/video/model").get("type") == "cirrus"       # MYDIST=CentOS keeps -vga cirrus
    q = "{http://libvirt.org/schemas/domain/qemu/1.0}"
    # -no-hpet became an element, -name is the LABEL (warned); only the rest is passed through
    assert [a.get("value") for a in root.iter(q + "arg")] == ["-smbios", "type=1"]
    assert root.find("clock/timer[@name='hpet']").get("present") == "no"
    assert "ARGSADD -name a b: the domain is named after the conf's LABEL" in r.stderr


def test_mydist_debian_drops_vga(tree):
    r = run(tree["debian5"], "--mydist", "debian")
    assert r.returncode == 0, r.stderr
    assert etree.fromstring(r.stdout.encode()).find("devices/video") is None


def test_default_console_from_conf_and_serial_log(tree, tmp_path):
    r = run(tree["kvmkern"], "--serial-log", tmp_path / "s.log", "--bridge", "br0")
    assert r.returncode == 0, r.stderr
    root = etree.fromstring(r.stdout.encode())
    g = root.find("devices/graphics")                                 # DEFAULTCONSOLE CLI:
    assert (g.get("type"), g.get("autoport")) == ("vnc", "yes")       # VNC prepared for later
    assert root.find("devices/serial/log").get("file") == str(tmp_path / "s.log")
    assert root.find("devices/interface").get("type") == "bridge"


def test_instmode_prints_install_and_final(tree):
    r = run(tree["centos55"], "--instmode", "DEFAULT")
    assert r.returncode == 0, r.stderr
    docs = ["<domain" + d for d in r.stdout.split("<domain")[1:]]
    assert len(docs) == 2
    assert [etree.fromstring(d.encode()).findtext("on_reboot") for d in docs] == ["destroy", "restart"]
    r = run(tree["centos55"], "--instmode", "DEFAULT", "--final")
    assert r.stdout.count("<domain") == 1 and "<on_reboot>restart" in r.stdout


def test_warnings_go_to_stderr(tree):
    r = run(tree["debian5"], "--console", "CLI")
    assert r.returncode == 0
    assert r.stdout.startswith("<domain")
    # local caps on this host may or may not offer KVM; any warning is one prefixed line
    for line in r.stderr.splitlines():
        assert line.startswith("ctys-libvirt: warning: ")


@pytest.mark.parametrize("args,code,text", [
    (["--bootmode", "floppy"], 1, "unknown BOOTMODE 'floppy'"),
    (["--instmode", "CD%a%HDD%b%INIT%x"], 1, "INSTMODE"),
    (["--console", "RDP"], 1, "unknown CONSOLE 'RDP'"),
    (["--kernel", ""], 1, "empty KERNEL"),
    (["--bootmode", "CD"], 2, "BOOTMODE CD needs an image: set CDIMAGE"),
    (["--argsadd", "-a 'open"], 1, "ARGSADD"),
])
def test_errors_one_line_exit_code(tree, args, code, text):
    r = run(tree["debian5"], *args)
    assert r.returncode == code
    assert r.stdout == ""
    assert r.stderr.count("\n") == 1 and text in r.stderr and "Traceback" not in r.stderr


def test_missing_conf(tmp_path):
    r = run(tmp_path / "nothing")
    assert r.returncode == 2 and r.stderr.count("\n") == 1


@pytest.mark.libvirt
def test_connect_uses_libvirt_caps(tree, libvirt_uri):
    r = run(tree["debian5"], "--connect", libvirt_uri)
    assert r.returncode == 0, r.stderr
    assert etree.fromstring(r.stdout.encode()).findtext("devices/emulator")


def test_bad_connect_uri(tree):
    r = run(tree["debian5"], "--connect", "qemu+unix:///nonexistent?socket=/nonexistent")
    assert r.returncode == 4 and r.stderr.count("\n") == 1
