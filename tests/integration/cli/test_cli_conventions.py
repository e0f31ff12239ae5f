"""virsh conventions of both front ends, as subprocesses: global options before the
subcommand, --version, -v/-q/--debug, one suggestion for a typo, the same option names
across commands (enumerate's old -f), warnings on stderr."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path


from ctys_libvirt import __version__
from support.cli import assert_one_line_error, qemu, run_cli
from support.confs import write_conf
from support.domains import unique_label
from support.paths import EXAMPLE_CONFS

CONFS = EXAMPLE_CONFS
TEST_URI = "test:///default"       # libvirt's built-in test driver: one domain named 'test'


def run_qemu(*args: str, env=None) -> subprocess.CompletedProcess:
    return qemu(*args, env=env, timeout=60)


def no_uuid_conf(root: Path, image: Path) -> Path:
    label = unique_label("nouuid")
    conf = write_conf(root, label, image=image)
    conf.write_text("".join(l for l in conf.read_text().splitlines(True) if "UUID" not in l))
    return conf


def names(p: subprocess.CompletedProcess):
    assert p.returncode == 0, p.stderr
    return [d["name"] for d in json.loads(p.stdout)]


def test_connect_and_format_before_the_subcommand():
    p = run_cli("-c", TEST_URI, "--format", "json", "list", "--backend", "libvirt")
    assert names(p) == ["test"]
    # the command's own option wins over the global one
    p = run_cli("-c", "qemu+unix:///system?socket=/nonexistent", "list", "-c", TEST_URI,
                "--backend", "libvirt", "--format", "json")
    assert names(p) == ["test"]
    p = run_cli("--format", "json", "list", "--format", "table", "-c", TEST_URI, "--backend", "libvirt")
    assert p.returncode == 0 and p.stdout.startswith("STATE"), p.stdout
    # still accepted after the subcommand, as before
    assert names(run_cli("list", "-c", TEST_URI, "--backend", "libvirt", "--format", "json")) == ["test"]


def test_version_of_both_front_ends():
    p = run_cli("--version")
    assert (p.returncode, p.stdout, p.stderr) == (0, f"ctys-libvirt {__version__}\n", "")
    p = run_qemu("--version")
    assert p.returncode == 0 and p.stdout == f"ctys-qemu {__version__} (ctys 01.11 QEMU plugin syntax)\n"


def test_a_typo_suggests_the_command_once():
    p = run_cli("lsit")
    line = assert_one_line_error(p, 1, "No such command 'lsit'")
    assert line.count("Did you mean 'list'?") == 1, line


def test_debug_shows_the_traceback_only_when_asked(tmp_path):
    missing = str(tmp_path / "nothing-here")
    plain = run_cli("check", missing)
    assert_one_line_error(plain, 2)
    for p in (run_cli("--debug", "check", missing), run_cli("check", missing, env={"CTYS_DEBUG": "1"})):
        assert p.returncode == 2 and "Traceback (most recent call last)" in p.stderr, p.stderr
        assert p.stderr.rstrip().splitlines()[-1] == plain.stderr.strip()


def test_verbose_logs_to_stderr_and_quiet_silences_warnings(vmroot, media):
    p = run_cli("-v", "-c", TEST_URI, "list", "--backend", "libvirt", "--format", "json")
    assert names(p) == ["test"]
    assert f"ctys-libvirt: INFO: libvirt: connected to {TEST_URI}" in p.stderr.splitlines()
    assert run_cli("-c", TEST_URI, "list", "--backend", "libvirt").stderr == ""

    conf = no_uuid_conf(vmroot, media["hello"])
    loud = run_cli("xml", str(conf))
    assert loud.returncode == 0, loud.stderr
    warns = [l for l in loud.stderr.splitlines() if "no UUID in the conf" in l]
    assert len(warns) == 1 and warns[0].startswith("ctys-libvirt: warning: "), loud.stderr
    assert "warning" not in loud.stdout
    quiet = run_cli("-q", "xml", str(conf))
    assert (quiet.returncode, quiet.stderr, quiet.stdout) == (0, "", loud.stdout)


def test_enumerate_takes_the_common_option_names():
    want = run_cli("enumerate", "--format", "records", "--no-cache", str(CONFS))
    assert want.returncode == 0 and want.stdout.count("\n") == 3, want.stderr
    p = run_cli("enumerate", "--format", "records", "--no-cache", "--base", str(CONFS))
    assert (p.returncode, p.stdout) == (0, want.stdout), p.stderr
    for alt in (("-f", "records"), ("--format", "records", "-c", "qemu:///system"),
                ("-c", "qemu:///session", "--format", "records")):
        p = run_cli("enumerate", *alt, "--no-cache", str(CONFS))
        assert (p.returncode, p.stdout) == (0, want.stdout), (alt, p.stderr)
    p = run_cli("--format", "records", "enumerate", "--no-cache", str(CONFS))
    assert (p.returncode, p.stdout) == (0, want.stdout), p.stderr
    assert_one_line_error(run_cli("enumerate", "-c", "qemu+tcp://h1/system", str(CONFS)), 1,
                          "qemu+ssh://")
    import re

    assert not re.search(r"(^|[\s,])-f\b", run_cli("enumerate", "--help").stdout)  # hidden alias


def test_ctys_qemu_quiet_and_debug():
    loud = run_qemu("-n", "-a", "LIST", "-a", "LIST=MACHINE")
    assert loud.returncode == 0 and "warning: -a given 2 times" in loud.stderr
    quiet = run_qemu("-q", "-n", "-a", "LIST", "-a", "LIST=MACHINE")
    assert (quiet.returncode, quiet.stderr, quiet.stdout) == (0, "", loud.stdout)
    p = run_qemu("--debug", "-a", "NOSUCH")
    assert p.returncode == 1 and "Traceback (most recent call last)" in p.stderr
    assert p.stderr.rstrip().splitlines()[-1].startswith("ctys-qemu: error: unknown action")
    p = run_qemu("-a", "NOSUCH")
    assert p.returncode == 1 and "Traceback" not in p.stderr and len(p.stderr.splitlines()) == 1
