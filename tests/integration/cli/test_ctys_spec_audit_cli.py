"""Spec-compliance audit of ``ctys-qemu`` as a subprocess: command lines written exactly as the
ctys manual / ctys-cli.md write them (fixed divergences; see tests/unit/cli/test_ctys_spec_audit.py
for the parser-level cases)."""
from __future__ import annotations

import os
import time

import pytest

from ctys_libvirt import __version__
from support.cli import one_error, qemu
from support.confs import write_conf
from support.domains import unique_label
from support.paths import GUESTS

HELLO = GUESTS / "hello.img"
TAB_TCP_ID_HEADER = ("TCP-container     |TCP-guest        |IF      |id               |stype    |accel|c|"
                     "user      |group")


@pytest.fixture
def confs(shared_dir):
    return shared_dir / "examples" / "confs"


LABELS = ["centos55", "debian5", "kvmkern"]


@pytest.mark.parametrize("args", [["-h"], ["-H"], ["-H", "man"], ["-H", "list"]])
def test_help_options(args, env):
    p = qemu(*args, env=env)
    assert p.returncode == 0 and p.stderr == ""
    assert p.stdout.startswith("usage: ctys-qemu") and "CANCEL=<address>" in p.stdout


def test_version_plain_and_terse(env):
    for opt in ("-V", "-v"):
        p = qemu(opt, env=env)
        assert p.returncode == 0 and p.stdout == f"ctys-qemu {__version__} (ctys 01.11 QEMU plugin syntax)\n"
    t = qemu("-X", "-V", env=env)
    assert t.returncode == 0 and t.stdout == f"{__version__}\n"


def test_ctys_generic_options_and_contexts_are_accepted(confs, env):
    base = qemu("-a", f"ENUMERATE=B:{confs},LABEL,TERSE", env=env)
    assert base.returncode == 0 and base.stdout.splitlines() == LABELS
    p = qemu("-t", "ALL", "-T", "all", "-d", "64,P", "-b", "1,2", "-z", "2", "-c", "off", "-C", "off",
             "-g", "100x100:A11:ALL", "-L", "SO", "-s", "ALL", "-A", "1", "-f", "-Z", "SUDO", "-W", "2",
             "-y", "-Y", "-x", "CHAIN", "-k", "REUSE:0", "-S", "2", "-D", "0", "-F", "01.11.022", "-P",
             "-a", f"enumerate=b:{confs},label,terse",
             "--", "(-d 3)", "localhost(-d 1 -b 1,2)", env=env)
    assert p.returncode == 0, p.stderr
    assert p.stderr == "" and p.stdout == base.stdout


def test_last_action_wins_with_a_warning(confs, env):
    p = qemu("-a", "LIST", "-a", f"ENUMERATE=B:{confs},L,TERSE", env=env)
    assert p.returncode == 0 and p.stdout.splitlines() == LABELS
    assert p.stderr == f"ctys-qemu: warning: -a given 2 times; using the last: -a ENUMERATE=B:{confs},L,TERSE\n"


def test_message_option(confs, env):
    p = qemu("-M", "== lab ==", "-a", f"ENUMERATE=B:{confs},L,TERSE", env=env)
    assert p.stdout.splitlines() == ["== lab =="] + LABELS


def test_dry_run_resolves_and_acts_on_nothing(confs, env):
    p = qemu("-n", "-a", "CREATE=L:debian5,CONSOLE:NONE", "--base", str(confs), env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout == f"dry run (-n): CREATE {confs}/debian5/debian5.ctys on localhost: nothing done\n"
    c = qemu("-n", "-a", "CANCEL=L:a,L:b,RESET", env=env)
    assert c.stdout == "dry run (-n): CANCEL L:a L:b (RESET) on localhost: nothing done\n"
    one_error(qemu("-n", "-a", "CREATE=L:nosuchvm", "--base", str(confs), env=env), 2, "L:nosuchvm")
    one_error(qemu("-n", "-a", "CREATE=L:debian5,BOGUS:1", "--base", str(confs), env=env), 1,
              "Unknown sub-opts for QEMU:BOGUS")


def test_resolution_option_rejected_for_qemu(env):
    one_error(qemu("-r", "800x600", "-a", "LIST", env=env), 1, "-r 800x600", "not supported by QEMU")


def test_per_target_action_rejected(env):
    one_error(qemu("-a", "LIST", "--", "localhost(-a create=l:x)", env=env), 1, "per-target actions")


def test_enumerate_tab_gen_by_names(confs, env):
    p = qemu("-a", f"ENUMERATE=B:{confs},TAB_GEN:LABEL%UUID_uuid_8%40_ram_5,SORT:3", env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["LABEL   |uuid    |ram", "--------+--------+-----",
                                     "centos55|9c1e5a2b|512", "debian5 |3f2a6c1e|1024", "kvmkern |5d4c3b2a|2048"]


@pytest.mark.libvirt
def test_list_default_is_tab_tcp_with_id(env, libvirt_conn):
    p = qemu("-a", "LIST", env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[:2] == [TAB_TCP_ID_HEADER, "------------------+-----------------+--------+"
                                         "-----------------+---------+-----+-+----------+----------"]
    c = qemu("-a", "LIST=CLIENTS,TAB_TCP,ID", env=env)      # QEMU reports servers only
    assert c.returncode == 0 and len(c.stdout.splitlines()) == 2


@pytest.mark.libvirt
def test_info_machine_record(env, libvirt_conn):
    p = qemu("-a", "INFO=MACHINE", env=env)
    assert p.returncode == 0, p.stderr
    f = p.stdout.strip().split(";")
    assert len(f) == 7 and f[0] == "localhost" and f[1] == "QEMU" and f[2] in ("KVM", "QEMU")
    assert f[3] == __version__ and f[4].startswith("QEMU_") and f[5] == "ENABLED"
    one_error(qemu("-a", "INFO=FOO", env=env), 1, "Unknown sub-opts for INFO:FOO")


@pytest.mark.libvirt
@pytest.mark.qemu
def test_manual_spellings_create_list_cancel(vmroot, env, libvirt_conn, janitor):
    import libvirt

    label = unique_label("aud")
    janitor.add(label)
    uuid = "a1b2c3d4e5f6" + "0" * 14 + label[-6:]
    conf = write_conf(vmroot, label, image=HELLO, uuid=uuid)
    p = qemu("-t", "qemu", "-a", f"create=Label:{label},Console:None,BootMode:vhdd", "--base", str(vmroot),
             env=env)
    assert p.returncode == 0, p.stderr
    dom = libvirt_conn.lookupByName(label)
    assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING

    tab = qemu("-a", "list=tab_tcp,id", env=env)
    row = [l for l in tab.stdout.splitlines() if str(conf)[-17:] in l]
    assert tab.stdout.splitlines()[0] == TAB_TCP_ID_HEADER and len(row) == 1
    assert row[0].split("|")[:5] == [os.uname().nodename[:18].ljust(18), "10.0.0.7".ljust(17), "".ljust(8),
                                     str(conf)[-17:], "QEMU".ljust(9)]
    gen = qemu("-a", "LIST=TAB_GEN:LABEL%UUID,SORT", env=env)
    assert f"{label}|{uuid}" in [l.replace(" ", "") for l in gen.stdout.splitlines()]
    srv = qemu("-a", "list=s,label,terse", env=env)
    assert label in srv.stdout.splitlines()

    t0 = time.monotonic()
    c = qemu("-a", f"cancel=l:{label},PowerOff:1", env=env)
    took = time.monotonic() - t0
    assert c.returncode == 0, c.stderr
    assert c.stdout.startswith(f"POWEROFF-SERVER localhost: {label}: destroyed")
    assert dom.state()[0] == libvirt.VIR_DOMAIN_SHUTOFF
    assert 1.0 <= took < 15       # the hello guest ignores ACPI: destroyed after the 1 s delay


def test_bad_suboption_value_is_usage_error_before_lookup(tmp_path, env):
    # the VM does not exist either: the CONSOLE value is checked first (exit 1, not 2)
    one_error(qemu("-a", "CREATE=L:ctystest-none,CONSOLE:FOO", "--base", str(tmp_path), env=env), 1,
              "unknown CONSOLE 'FOO'")
    one_error(qemu("-a", "CREATE=L:ctystest-none,BOOTMODE:FLOPPY", "--base", str(tmp_path), env=env), 1,
              "unknown BOOTMODE")


def test_type_option_loads_qemu_whatever_t_preloads(confs, env):
    p = qemu("-t", "QEMU", "-T", "VNC,X11", "-a", f"ENUMERATE=B:{confs},L,TERSE", env=env)
    assert p.returncode == 0 and p.stdout.splitlines() == LABELS
    one_error(qemu("-T", "VNC", "-a", "LIST", env=env), 1, "QEMU is not in the plugin list")
