"""Console clients as the ctys manual means them, with real Debian clients on a private Xvfb:
CONSOLE VNC opens a VNC viewer connected to the guest, XTERM / EMACS run the serial console in
an xterm / emacs (the guest's serial output reaches the window), SDL opens QEMU's own window,
``console --client`` CONNECTs / RECONNECTs a client to a running VM (the VNC port prepared for
CLI), ``-g`` places/sizes the window, no $DISPLAY gives one line, CLI0 under tmux."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import libvirt
import psutil
import pytest

from support.cli import CLI, assert_one_line_error, run_cli
from support.confs import write_conf
from support.domains import unique_label
from support.guests import wait_marker
from support.x11 import pid_alive, screenshot, start_xvfb, stop_xvfb, wait_for, window_title, windows_of_pid, xterm_logging

pytestmark = [pytest.mark.x11, pytest.mark.libvirt, pytest.mark.qemu]

WAIT = 90.0          # generous: clients and TCG guests on 2 shared cores
STARTED = re.compile(r"^(\S+): (\S+) started for CONSOLE (\S+) \(pid (\d+)\)$", re.M)


@pytest.fixture(autouse=True)
def private_runtime(vmroot, monkeypatch):
    """Client logs and direct-backend VMs of these tests under the test's own dir (one QEMU's
    unprivileged user can traverse: the direct backend runs it as libvirt-qemu as root)."""
    monkeypatch.setenv("CTYS_RUNTIME_DIR", str(vmroot / "run"))


@pytest.fixture(scope="module")
def xvfb():
    x = start_xvfb()
    yield x
    stop_xvfb(x)


@pytest.fixture
def clients():
    """Client pids a test started; their sessions are ended afterwards (a VNC viewer stays
    open with an error dialog when its VM goes away)."""
    pids = []
    yield pids
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGTERM)
        except OSError:
            pass


def create(conf: Path, *args: str, env=None, log: Path = None):
    extra = ["--serial-log", str(log)] if log else []
    p = run_cli("create", str(conf), "--format", "json", *extra, *args, env=env)
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    return json.loads(p.stdout), p.stderr


def started(stderr: str, label: str, console: str, program: str) -> int:
    m = STARTED.findall(stderr)
    assert [(lab, prog, con) for lab, prog, con, _ in m] == [(label, program, console)], stderr
    return int(m[0][3])


_ESCAPES = re.compile(r"\x1b(\[[0-9;?>=]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][0-9A-Za-z]|[=>])")


def text_of(path: Path) -> str:
    """A terminal log without its control sequences (emacs redraws a line in pieces, so the
    guest's bytes are interleaved with cursor moves)."""
    try:
        raw = path.read_bytes().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""
    return _ESCAPES.sub("", raw)


def vnc_peer(pid: int, port: int) -> bool:
    """``pid`` holds an established TCP connection to the guest's VNC port."""
    try:
        conns = psutil.Process(pid).net_connections(kind="tcp")
    except psutil.Error:
        return False
    return any(c.raddr and c.raddr.port == port and c.raddr.ip == "127.0.0.1"
               and c.status == psutil.CONN_ESTABLISHED for c in conns)


def one_window(xvfb, pid: int):
    return wait_for(lambda: windows_of_pid(xvfb, pid), WAIT, f"a window of pid {pid}")[0]


def geometry(xvfb, wid: int):
    out = xvfb.run("xdotool", "getwindowgeometry", str(wid))
    pos = re.search(r"Position: (\d+),(\d+)", out)
    size = re.search(r"Geometry: (\d+)x(\d+)", out)
    return (int(pos.group(1)), int(pos.group(2))), (int(size.group(1)), int(size.group(2)))


def reset_guest(label: str) -> None:
    p = run_cli("cancel", label, "--mode", "RESET")
    assert p.returncode == 0, p.stderr


# --- VNC ----------------------------------------------------------------------------------

def test_vnc_console_opens_a_connected_viewer(xvfb, vmroot, media, janitor, clients):
    label = janitor.add(unique_label("vncv"))
    conf = write_conf(vmroot, label, image=media["hello"])
    res, err = create(conf, "--console", "VNC", "-g", "800x600+40+30", env=xvfb.env(),
                      log=vmroot / "s.log")
    pid = started(err, label, "VNC", "vncviewer")
    clients.append(pid)
    assert os.getsid(pid) == pid                      # detached: a session of its own
    wid = one_window(xvfb, pid)
    # the viewer took the desktop name QEMU gives the VNC session: it is connected
    wait_for(lambda: f"QEMU ({label})" in window_title(xvfb, wid), WAIT, "the viewer's title")
    assert vnc_peer(pid, res["vnc_port"])
    pos, _ = geometry(xvfb, wid)
    assert pos == (40, 30)        # -g placed it (tigervnc then fits the size to the guest screen)
    wait_marker(vmroot / "s.log", "CTYS-GUEST-OK")
    # what the viewer shows is the guest's screen (SeaBIOS text), not one flat colour
    shot = wait_for(lambda: (lambda s: s if s.colours() > 1 else None)(screenshot(xvfb, wid)),
                    WAIT, "a non-blank viewer window")
    assert shot.colours() > 1
    # the CLI has exited; the viewer lives on
    assert pid_alive(pid)


# --- XTERM / EMACS: the serial console in a terminal window -----------------------------------

@pytest.mark.parametrize("console,program,backend", [
    ("XTERM", "xterm", "libvirt"), ("EMACS", "xterm", "libvirt"), ("XTERM", "xterm", "direct")])
def test_terminal_console_shows_the_guest_serial(xvfb, vmroot, media, janitor, libvirt_conn,
                                                  clients, tmp_path, console, program, backend):
    """The client's screen output (xterm's own log) carries the guest's serial marker: the
    window runs a console that is really attached.  EMACS: emacs-nox in term mode inside an
    xterm (Debian's emacs-gtk would open its own frame).  direct: the xterm attaches QEMU's
    serial socket."""
    label = janitor.add(unique_label(console.lower()))
    conf = write_conf(vmroot, label, image=media["hello"])
    xlog = tmp_path / "xterm.log"
    extra = {"CTYS_RUNTIME_DIR": str(vmroot / "run")} if backend == "direct" else {}
    env = xvfb.env(**xterm_logging(tmp_path, xlog), **extra)
    res, err = create(conf, "--console", console, "-g", "100x30+10+20", "--backend", backend, env=env)
    pid = started(err, label, console, program)
    clients.append(pid)
    assert res["vnc_port"]                            # VNC prepared for later attachment too
    wid = one_window(xvfb, pid)
    assert window_title(xvfb, wid).startswith(f"{label} ({console})")
    pos, _ = geometry(xvfb, wid)
    assert pos == (10, 20)
    wait_for(lambda: f"Connected to {label}" in text_of(xlog), WAIT, "the console in the client")
    # the guest printed its marker before the console attached: reset it and read it again
    p = run_cli("cancel", label, "--mode", "RESET", "--backend", backend, env=extra)
    assert p.returncode == 0, p.stderr
    wait_for(lambda: "CTYS-GUEST-OK" in text_of(xlog), WAIT, "the guest's marker in the client")
    if backend == "libvirt":
        # the console is taken: another (non-forcing) console attach is refused
        p = run_cli("console", label, input="")
        assert p.returncode == 4 and "no other client attached" in p.stderr, p.stderr
    # the client ends with the VM
    p = run_cli("cancel", label, "--mode", "FORCE", "--backend", backend, env=extra)
    assert p.returncode == 0, p.stderr
    wait_for(lambda: not pid_alive(pid), WAIT, "the client's exit after the VM ended")


# --- SDL: QEMU's own window ---------------------------------------------------------------

@pytest.mark.parametrize("backend", ["libvirt", "direct"])
def test_sdl_opens_qemus_window(xvfb, vmroot, media, janitor, libvirt_conn, tmp_path, backend):
    """libvirt: <graphics type='sdl' display=...> (QEMU runs as libvirt-qemu; this Xvfb takes
    local clients without a cookie); direct: QEMU inherits $DISPLAY."""
    label = janitor.add(unique_label("sdl"))
    conf = write_conf(vmroot, label, image=media["hello"])
    extra = {"CTYS_RUNTIME_DIR": str(vmroot / "run")} if backend == "direct" else {}
    res, err = create(conf, "--console", "SDL", "--backend", backend, env=xvfb.env(**extra),
                      log=vmroot / "s.log")
    assert "started for CONSOLE" not in err           # no client: QEMU draws the window
    wids = wait_for(lambda: [int(w) for w in xvfb.run("xdotool", "search", "--onlyvisible", "--name",
                                                      f"^QEMU \\({re.escape(label)}-0\\)$").split()],
                    WAIT, "QEMU's SDL window")
    assert len(wids) == 1                             # SDL titles it "QEMU (<name>-<console>)"
    wait_marker(vmroot / "s.log", "CTYS-GUEST-OK")
    shot = wait_for(lambda: (lambda s: s if s.colours() > 1 else None)(screenshot(xvfb, wids[0])),
                    WAIT, "a non-blank SDL window")
    assert shot.colours() > 1
    p = run_cli("cancel", label, "--mode", "FORCE", "--backend", backend, env=extra)
    assert p.returncode == 0, p.stderr


def test_sdl_without_display_is_a_usage_error(vmroot, media, janitor, libvirt_conn):
    label = janitor.add(unique_label("sdlnd"))
    conf = write_conf(vmroot, label, image=media["hello"])
    p = run_cli("create", str(conf), "--console", "SDL", env={"DISPLAY": ""})
    assert_one_line_error(p, 1, "CONSOLE SDL", "$DISPLAY is not set")
    with pytest.raises(libvirt.libvirtError):
        libvirt_conn.lookupByName(label)              # nothing was defined or started


# --- CONNECT / RECONNECT ------------------------------------------------------------------

def test_connect_and_reconnect_a_viewer_to_the_prepared_vnc_port(xvfb, vmroot, media, janitor,
                                                                 clients):
    label = janitor.add(unique_label("conn"))
    conf = write_conf(vmroot, label, image=media["hello"])
    res, err = create(conf, "--console", "CLI", env=xvfb.env())
    assert "started for CONSOLE" not in err           # CLI: no window at create
    port = res["vnc_port"]
    assert port                                       # ... but VNC prepared for later
    p = run_cli("console", label, "--client", "VNC", env=xvfb.env())
    assert p.returncode == 0, p.stderr
    first = started(p.stderr, label, "VNC", "vncviewer")
    clients.append(first)
    one_window(xvfb, first)
    wait_for(lambda: vnc_peer(first, port), WAIT, "the first viewer's connection")
    p = run_cli("console", label, "--client", "VNC", "--reconnect", "-g", "640x480+0+0", env=xvfb.env())
    assert p.returncode == 0, p.stderr
    assert f"{label}: ended earlier client(s), pid {first}" in p.stderr
    second = started(p.stderr, label, "VNC", "vncviewer")
    clients.append(second)
    wait_for(lambda: not pid_alive(first), WAIT, "the earlier viewer's end")
    wait_for(lambda: vnc_peer(second, port), WAIT, "the new viewer's connection")
    # REUSE: create on the running VM attaches the console's client instead of failing
    res2, err = create(conf, "--reuse", "--console", "XTERM", env=xvfb.env())
    assert res2["pid"] == res["pid"]
    xterm = started(err, label, "XTERM", "xterm")
    clients.append(xterm)
    one_window(xvfb, xterm)
    p = run_cli("cancel", label, "--mode", "FORCE")
    assert p.returncode == 0, p.stderr
    # CONNECT needs a running VM
    p = run_cli("console", label, "--client", "XTERM", env=xvfb.env())
    assert_one_line_error(p, 4, "CONNECT and RECONNECT require a running server", label)


def test_console_client_usage_errors(vmroot):
    p = run_cli("console", "whatever", "--client", "CLI0")
    assert_one_line_error(p, 1, "CLI0 has no client window")
    p = run_cli("console", "whatever", "--client", "VNC", "-g", "80x")
    assert_one_line_error(p, 1, "bad geometry '80x'")
    p = run_cli("console", "whatever", "--reconnect")
    assert_one_line_error(p, 1, "--client")


# --- no display ---------------------------------------------------------------------------

def test_without_display_one_line_and_access_details(vmroot, media, janitor, libvirt_conn):
    label = janitor.add(unique_label("nodisp"))
    conf = write_conf(vmroot, label, image=media["hello"])
    p = run_cli("create", str(conf), "--console", "XTERM", env={"DISPLAY": ""})
    assert p.returncode == 0, p.stderr
    assert p.stderr.strip().splitlines() == [
        f"{label}: no $DISPLAY, so no XTERM terminal was started; attach with `ctys-libvirt console {label}`"]
    assert f"serial console: ctys-libvirt console {label}" in p.stdout
    assert re.search(r"VNC: 127\.0\.0\.1:\d+ \(port \d+\)", p.stdout)


# --- CLI0 under tmux -------------------------------------------------------------------------

def test_cli0_in_tmux_shows_guest_and_destroys_on_detach(vmroot, media, janitor, libvirt_conn, tmp_path):
    label = janitor.add(unique_label("tmux"))
    conf = write_conf(vmroot, label, image=media["hello"])
    sock = str(tmp_path / "tmux.sock")
    tmux = ["tmux", "-S", sock]
    cmd = " ".join(CLI) + f" create {conf} --console CLI0; echo CTYS-EXIT=$?; sleep 600"
    subprocess.run(tmux + ["new-session", "-d", "-s", "t", "-x", "160", "-y", "50", cmd],
                   check=True, env={k: v for k, v in os.environ.items() if k not in ("DISPLAY", "TMUX")})
    try:
        def pane() -> str:
            return subprocess.run(tmux + ["capture-pane", "-p", "-J", "-S", "-200", "-t", "t"],
                                  capture_output=True, text=True).stdout

        wait_for(lambda: f"Connected to {label}" in pane(), WAIT, "the CLI0 console in tmux")
        reset_guest(label)
        wait_for(lambda: "CTYS-GUEST-OK" in pane(), WAIT, "the guest's marker in the tmux pane")
        subprocess.run(tmux + ["send-keys", "-t", "t", "C-]"], check=True)
        wait_for(lambda: "CTYS-EXIT=" in pane(), WAIT, "the end of the CLI0 command")
        text = pane()
        assert "CTYS-EXIT=0" in text and f"{label}: destroyed (CLI0 console ended)" in text, text
        assert not libvirt_conn.lookupByName(label).isActive()
    finally:
        subprocess.run(tmux + ["kill-server"], capture_output=True)


# --- the ctys front end: CREATE / CONNECT / RECONNECT / CANCEL CLIENT ------------------------

def test_ctys_qemu_clients(xvfb, vmroot, media, janitor, libvirt_conn, clients, tmp_path):
    from support.cli import qemu

    label = janitor.add(unique_label("cqx"))
    write_conf(vmroot, label, image=media["hello"])
    xlog = tmp_path / "xterm.log"
    env = xvfb.env(**xterm_logging(tmp_path, xlog))
    p = qemu("-a", f"CREATE=L:{label},CONSOLE:XTERM", "-g", "90x25+3+4", "--base", str(vmroot), env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(f"CREATE localhost: {label}: running")
    xterm = started(p.stderr, label, "XTERM", "xterm")
    clients.append(xterm)
    assert geometry(xvfb, one_window(xvfb, xterm))[0] == (3, 4)
    wait_for(lambda: f"Connected to {label}" in text_of(xlog), WAIT, "the console in the xterm")
    # CONNECT a VNC viewer to the port prepared for the XTERM console
    p = qemu("-a", f"CREATE=L:{label},CONNECT,CONSOLE:VNC", "--base", str(vmroot), env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(f"CONNECT localhost: {label}: running, VNC :")
    viewer = started(p.stderr, label, "VNC", "vncviewer")
    clients.append(viewer)
    dom = libvirt_conn.lookupByName(label)
    wait_for(lambda: windows_of_pid(xvfb, viewer), WAIT, "the viewer window")
    # CANCEL ...,CLIENT ends the clients and leaves the VM running
    p = qemu("-a", f"CANCEL=L:{label},CLIENT", env=env)
    assert p.returncode == 0, p.stderr
    line = p.stdout.strip()
    assert line.startswith(f"CANCEL-CLIENT localhost: {label}: ended client(s), pid "), line
    assert sorted(int(x) for x in line.rsplit("pid ", 1)[1].split(", ")) == sorted([xterm, viewer])
    wait_for(lambda: not pid_alive(xterm) and not pid_alive(viewer), WAIT, "the clients' end")
    assert dom.isActive()                             # ... the VM keeps running
    # RECONNECT: a fresh client on the running VM
    p = qemu("-a", f"CREATE=L:{label},RECONNECT,CONSOLE:XTERM", "--base", str(vmroot), env=env)
    assert p.returncode == 0, p.stderr
    again = started(p.stderr, label, "XTERM", "xterm")
    clients.append(again)
    one_window(xvfb, again)


def test_missing_client_program_fails_before_anything_starts(xvfb, vmroot, media, janitor, libvirt_conn,
                                                            tmp_path):
    """GTERM with no gnome-terminal on PATH: exit 2 naming the package, no domain defined."""
    label = janitor.add(unique_label("nogt"))
    conf = write_conf(vmroot, label, image=media["hello"])
    path = tmp_path / "bin"
    path.mkdir()
    for tool in ("xterm",):
        (path / tool).symlink_to(f"/usr/bin/{tool}")
    env = xvfb.env(PATH=f"{path}:/usr/sbin:/sbin")
    p = run_cli("create", str(conf), "--console", "GTERM", env=env)
    assert_one_line_error(p, 2, "gnome-terminal is not installed")
    with pytest.raises(libvirt.libvirtError):
        libvirt_conn.lookupByName(label)


def test_no_client_option_starts_no_window(xvfb, vmroot, media, janitor, libvirt_conn):
    label = janitor.add(unique_label("nocl"))
    conf = write_conf(vmroot, label, image=media["hello"])
    before = xvfb.run("xdotool", "search", "--onlyvisible", "--name", ".")
    res, err = create(conf, "--console", "VNC", "--no-client", env=xvfb.env())
    assert err.strip() == "" and res["vnc_port"]
    assert xvfb.run("xdotool", "search", "--onlyvisible", "--name", ".") == before
    p = run_cli("cancel", label, "--mode", "FORCE")
    assert p.returncode == 0, p.stderr


def test_ctys_qemu_bad_geometry_is_a_usage_error(vmroot):
    from support.cli import one_error, qemu

    one_error(qemu("-a", "CREATE=L:whatever,CONSOLE:XTERM", "-g", "100x", "--base", str(vmroot)), 1,
              "bad geometry '100x'")


def test_client_that_cannot_open_the_display(vmroot, media, janitor, libvirt_conn):
    """create: the VM runs, the dead client is one warning; CONNECT: the client is the point,
    so exit 4 with the client's own complaint."""
    label = janitor.add(unique_label("baddisp"))
    conf = write_conf(vmroot, label, image=media["hello"])
    env = {"DISPLAY": ":31999"}              # no X server there
    p = run_cli("create", str(conf), "--console", "VNC", env=env)
    assert p.returncode == 0, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ctys-libvirt: warning: vncviewer for {label} exited at once"), lines
    assert lines[0].endswith(f"; {label} runs on without it")
    assert libvirt_conn.lookupByName(label).isActive()
    p = run_cli("console", label, "--client", "VNC", env=env)
    assert_one_line_error(p, 4, f"vncviewer for {label} exited at once")
