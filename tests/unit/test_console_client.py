"""console_client: geometry parsing, which argv each CONSOLE's client gets (programs found by
a fake ``which``), the detached spawner and RECONNECT's client lookup (real processes)."""
from __future__ import annotations

import os
import signal
import sys
import time

import pytest

from ctys_libvirt.backends import console_client as cc
from ctys_libvirt.errors import BackendError, NotFoundError, UsageError
from ctys_libvirt.model import ConsoleType

CONSOLE = ("/venv/bin/ctys-libvirt", "console", "vm1", "--backend", "libvirt", "--connect", "qemu:///system")


def which_of(*present):
    table = {p: f"/usr/bin/{p}" for p in present}
    return table.get


def target(console, port=None):
    return cc.ClientTarget(label="vm1", console=ConsoleType(console), vnc_port=port, console_argv=CONSOLE)


@pytest.mark.parametrize("text,geo", [
    ("800x600", cc.Geometry(800, 600, "")), ("800x600+10+20", cc.Geometry(800, 600, "+10+20")),
    ("+0-5", cc.Geometry(None, None, "+0-5")), (" 80x24 ", cc.Geometry(80, 24, "")),
])
def test_parse_geometry(text, geo):
    assert cc.parse_geometry(text) == geo
    assert str(geo) == text.strip()


@pytest.mark.parametrize("bad", ["", "80x", "x24", "80x24+1", "0x24", "80*24", "80x24:0.1", "-g"])
def test_parse_geometry_rejects(bad):
    with pytest.raises(UsageError, match="geometry"):
        cc.parse_geometry(bad)


def test_vnc_prefers_tigervnc_with_geometry():
    argv = cc.client_argv(target("VNC", 5907), cc.parse_geometry("800x600+1+2"),
                          which=which_of("vncviewer", "remote-viewer"))
    assert argv == ["/usr/bin/vncviewer", "-geometry", "800x600+1+2", "127.0.0.1::5907"]


def test_vnc_falls_back_to_remote_viewer():
    argv = cc.client_argv(target("VNC", 5907), None, which=which_of("remote-viewer"))
    assert argv == ["/usr/bin/remote-viewer", "--title", "vm1 (VNC)", "vnc://127.0.0.1:5907"]


def test_vnc_without_viewer_names_the_packages_and_the_port():
    with pytest.raises(NotFoundError) as ei:
        cc.client_argv(target("VNC", 5907), None, which=which_of("xterm"))
    assert "tigervnc-viewer" in str(ei.value) and "127.0.0.1:5907" in str(ei.value)


def test_xterm_runs_the_console_command():
    argv = cc.client_argv(target("XTERM"), cc.parse_geometry("100x30+5+5"), which=which_of("xterm"))
    assert argv == ["/usr/bin/xterm", "-T", "vm1 (XTERM)", "-n", "vm1 (XTERM)", "-geometry", "100x30+5+5",
                    "-e", *CONSOLE]


def test_gterm_waits_so_its_pid_is_the_window():
    argv = cc.client_argv(target("GTERM"), cc.parse_geometry("80x24"), which=which_of("gnome-terminal"))
    assert argv == ["/usr/bin/gnome-terminal", "--wait", "--title=vm1 (GTERM)", "--geometry=80x24",
                    "--", *CONSOLE]
    with pytest.raises(NotFoundError, match="gnome-terminal"):
        cc.client_argv(target("GTERM"), None, which=which_of("xterm"))


@pytest.mark.parametrize("console,maker,maximized", [
    ("EMACS", "make-term", False), ("EMACSM", "make-term", True),
    ("EMACSA", "term-ansi-make-term", False), ("EMACSAM", "term-ansi-make-term", True)])
def test_emacs_variants_gui(monkeypatch, console, maker, maximized):
    monkeypatch.setattr(cc, "_terminal_only_emacs", lambda _p: False)
    argv = cc.client_argv(target(console), cc.parse_geometry("120x40"), which=which_of("emacs"))
    assert argv[:6] == ["/usr/bin/emacs", "-Q", "--title", f"vm1 ({console})", "--geometry", "120x40"]
    assert ("--maximized" in argv) == maximized
    elisp = argv[argv.index("--eval") + 1]
    assert f"({maker} " in elisp and "(term-char-mode)" in elisp and "kill-emacs" in elisp


def test_emacs_nox_runs_inside_xterm(monkeypatch):
    monkeypatch.setattr(cc, "_terminal_only_emacs", lambda _p: True)
    argv = cc.client_argv(target("EMACSM"), None, which=which_of("emacs", "xterm"))
    assert argv[:5] == ["/usr/bin/xterm", "-T", "vm1 (EMACSM)", "-n", "vm1 (EMACSM)"]
    assert "-maximized" in argv
    e = argv.index("-e")
    assert argv[e + 1:e + 5] == ["/usr/bin/emacs", "-nw", "-Q", "--eval"]


def test_elisp_quotes_the_console_command():
    cmd = ["/opt/my dir/ctys-libvirt", "console", 'odd"name\\x']
    elisp = cc.emacs_term_elisp("lab", cmd)
    assert '(make-term "lab" "/opt/my dir/ctys-libvirt" nil "console" "odd\\"name\\\\x")' in elisp


@pytest.mark.parametrize("console", ["CLI", "CLI0", "SDL", "NONE"])
def test_consoles_without_a_window(console):
    with pytest.raises(UsageError, match="no client window"):
        cc.client_argv(target(console), None, which=which_of("xterm", "vncviewer"))


def test_spawn_detaches_and_tags_the_client(tmp_path):
    log = tmp_path / "c.log"
    pid = cc.spawn([sys.executable, "-c", "import os,time; print(os.environ['CTYS_LIBVIRT_CLIENT'], flush=True); time.sleep(60)"],
                   label="vm-spawn-test", log=log, settle=0.2)
    try:
        assert os.getsid(pid) == pid and os.getpgid(pid) == pid     # own session
        assert os.getsid(pid) != os.getsid(0)
        deadline = time.monotonic() + 30
        while "vm-spawn-test" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert log.read_text().strip() == "vm-spawn-test"
        assert cc.client_pids("vm-spawn-test") == [pid]
        assert cc.client_pids("another-vm") == []
        assert cc.end_clients("vm-spawn-test") == [pid]
        os.waitpid(pid, 0)                 # our child in the tests (the CLI exits instead)
        assert cc.client_pids("vm-spawn-test") == []
    finally:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass


def test_spawn_reports_a_client_that_fails_at_once(tmp_path):
    log = tmp_path / "c.log"
    with pytest.raises(BackendError) as ei:
        cc.spawn(["sh", "-c", "echo 'Error: Can not open display' >&2; exit 3"], label="vm1", log=log,
                 settle=30)
    assert "exit 3" in str(ei.value) and "Can not open display" in str(ei.value)


def test_spawn_of_a_missing_program():
    with pytest.raises(BackendError, match="cannot start"):
        cc.spawn(["/nonexistent/viewer"], label="vm1")


class _FakeConn:
    def __init__(self, uri):
        self.uri = uri

    def getURI(self):
        return self.uri


class _FakeBackend:
    name = "libvirt"

    def __init__(self, uri):
        self.conn = _FakeConn(uri)


def test_cli_launch_starts_no_local_viewer_for_a_remote_vnc(monkeypatch, capsys):
    from ctys_libvirt.cli.clients import launch

    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(cc, "spawn", lambda *a, **k: pytest.fail("no client may be spawned"))
    pid = launch(_FakeBackend("qemu+ssh://root@vmhost.example/system"), "vm1", ConsoleType.VNC, 5905, None)
    assert pid is None
    assert capsys.readouterr().err.strip() == (
        "vm1: VNC listens on 127.0.0.1 of vmhost.example, so no viewer was started here; "
        "tunnel it: ssh -L 5905:127.0.0.1:5905 vmhost.example")


def test_cli_launch_console_command_carries_backend_and_uri(monkeypatch, capsys):
    from ctys_libvirt.cli import clients

    seen = {}
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(cc, "spawn", lambda argv, **k: seen.setdefault("argv", argv) and 4321)
    monkeypatch.setattr(clients, "_log_path", lambda *a: None)
    pid = clients.launch(_FakeBackend("qemu+ssh://root@vmhost.example/system"), "vm1",
                         ConsoleType.XTERM, 5905, "80x24+1+1")
    assert pid == 4321
    argv = seen["argv"]
    assert argv[argv.index("-geometry") + 1] == "80x24+1+1"
    # the terminal runs `ctys-libvirt console` through the same backend and connection
    assert argv[-6:] == ["console", "vm1", "--backend", "libvirt",
                         "--connect", "qemu+ssh://root@vmhost.example/system"]
    assert capsys.readouterr().err.strip() == "vm1: xterm started for CONSOLE XTERM (pid 4321)"
