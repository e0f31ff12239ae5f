"""Console client windows, as the ctys manual means CONSOLE: a VNC viewer for VNC, the serial
console in an xterm / gnome-terminal / emacs for XTERM / GTERM / EMACS*.

Two parts: ``client_argv`` is pure (which program to run, with which arguments, for a
console of a running VM) and ``spawn`` starts it detached (own session: it outlives the
command that started it and gets no SIGHUP from its terminal) and returns its pid.  SDL has
no client: QEMU opens its own window.  CLI / CLI0 attach in the caller's terminal.

Choices where the manual leaves room (documented in docs/consoles.md):
* VNC: tigervnc's ``vncviewer`` first (it takes ``-geometry``), then virt-viewer's
  ``remote-viewer``; always to 127.0.0.1 and the VM's port.
* EMACS / EMACSM: ``term`` mode; EMACSA / EMACSAM: ``ansi-term``'s buffer (``term-ansi-make-term``);
  the M variants maximise the frame.  A terminal-only emacs (emacs-nox) runs inside an xterm.
* ``-g WxH+X+Y``: pixels for the VNC viewer, characters for the terminals (as the manual says).

Every spawned client carries ``CTYS_LIBVIRT_CLIENT=<label>`` in its environment, so RECONNECT
can find (and end) the earlier clients of a label without a state file."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ctys_libvirt.errors import BackendError, NotFoundError, UsageError
from ctys_libvirt.model import WINDOW_CONSOLES, ConsoleType  # noqa: F401 (WINDOW_CONSOLES: API)

CLIENT_ENV = "CTYS_LIBVIRT_CLIENT"        # marks a client's processes with the VM label
VNC_HOST = "127.0.0.1"
VNC_PORT_ANY = 5900                        # a placeholder port for checking a client exists

# consoles whose client is a window (VNC viewer or a terminal running the serial console)
EMACS_CONSOLES = frozenset({ConsoleType.EMACS, ConsoleType.EMACSM, ConsoleType.EMACSA, ConsoleType.EMACSAM})

_GEOMETRY = re.compile(r"^(?:(?P<w>\d{1,5})x(?P<h>\d{1,5}))?(?P<pos>[+-]\d{1,5}[+-]\d{1,5})?$")


@dataclass(frozen=True)
class Geometry:
    """X11 geometry ``WxH+X+Y`` (either part optional); units depend on the client."""

    width: Optional[int] = None
    height: Optional[int] = None
    position: str = ""                    # "+X+Y" / "-X+Y" ... verbatim

    def __str__(self) -> str:
        size = f"{self.width}x{self.height}" if self.width is not None else ""
        return size + self.position


def parse_geometry(text: str) -> Geometry:
    """``WxH``, ``+X+Y`` or ``WxH+X+Y`` -> Geometry; anything else is a usage error (ctys's
    extended geometry with screen/display parts is not supported)."""
    m = _GEOMETRY.match((text or "").strip())
    if not text or not text.strip() or m is None:
        raise UsageError(f"bad geometry {text!r}",
                         hint="use WxH, +X+Y or WxH+X+Y (pixels for VNC, characters for terminals)")
    w, h = m.group("w"), m.group("h")
    if w is not None and (int(w) == 0 or int(h) == 0):
        raise UsageError(f"bad geometry {text!r}: width and height must be at least 1",
                         hint="use WxH+X+Y with W, H >= 1")
    return Geometry(int(w) if w else None, int(h) if h else None, m.group("pos") or "")


@dataclass(frozen=True)
class ClientTarget:
    """What a client attaches to: the VM, its console type and how to reach it."""

    label: str
    console: ConsoleType
    vnc_port: Optional[int] = None                # for VNC
    console_argv: Tuple[str, ...] = ()            # the command that attaches the serial console


def client_argv(target: ClientTarget, geometry: Optional[Geometry] = None, *,
                which: Callable[[str], Optional[str]] = shutil.which) -> List[str]:
    """The argv of the client for ``target`` (pure: ``which`` finds programs).  Raises
    NotFoundError when no suitable program is installed, UsageError for consoles that have
    no client window."""
    c = target.console
    title = f"{target.label} ({c.value})"
    if c is ConsoleType.VNC:
        if not target.vnc_port:
            raise BackendError(f"{target.label} has no VNC port", hint="is it running with CONSOLE VNC?")
        tiger = which("vncviewer")
        if tiger:
            argv = [tiger]
            if geometry is not None:
                argv += ["-geometry", str(geometry)]
            return argv + [f"{VNC_HOST}::{target.vnc_port}"]
        rv = which("remote-viewer")
        if rv:
            # remote-viewer has no geometry option: it sizes itself to the guest display
            return [rv, "--title", title, f"vnc://{VNC_HOST}:{target.vnc_port}"]
        raise NotFoundError("no VNC viewer installed (vncviewer or remote-viewer)",
                            hint=f"install tigervnc-viewer or virt-viewer, or connect any viewer "
                                 f"to {VNC_HOST}:{target.vnc_port}")
    if c not in WINDOW_CONSOLES:
        raise UsageError(f"CONSOLE {c.value} has no client window",
                         hint="CLI/CLI0 attach in this terminal (`ctys-libvirt console`), SDL is QEMU's own window")
    if not target.console_argv:
        raise UsageError(f"{target.label}: no console command to run in the {c.value} client")
    cmd = list(target.console_argv)
    if c is ConsoleType.XTERM:
        return _xterm(which, title, geometry, cmd)
    if c is ConsoleType.GTERM:
        gt = which("gnome-terminal")
        if not gt:
            raise NotFoundError("gnome-terminal is not installed (CONSOLE GTERM)",
                                hint="install gnome-terminal, or use CONSOLE XTERM")
        argv = [gt, "--wait", f"--title={title}"]     # --wait: the pid lives as long as the window
        if geometry is not None:
            argv.append(f"--geometry={geometry}")
        return argv + ["--"] + cmd
    # EMACS*
    emacs = which("emacs")
    if not emacs:
        raise NotFoundError(f"emacs is not installed (CONSOLE {c.value})",
                            hint="install emacs (or emacs-nox with xterm), or use CONSOLE XTERM")
    maximized = c in (ConsoleType.EMACSM, ConsoleType.EMACSAM)
    elisp = emacs_term_elisp(target.label, cmd, ansi=c in (ConsoleType.EMACSA, ConsoleType.EMACSAM))
    if _terminal_only_emacs(emacs):
        # emacs-nox opens no X frame: give it a terminal window of its own
        inner = [emacs, "-nw", "-Q", "--eval", elisp]
        return _xterm(which, title, geometry, inner, maximized=maximized)
    argv = [emacs, "-Q", "--title", title]
    if geometry is not None:
        argv += ["--geometry", str(geometry)]
    if maximized:
        argv.append("--maximized")
    return argv + ["--eval", elisp]


def _xterm(which, title: str, geometry: Optional[Geometry], cmd: Sequence[str], *,
           maximized: bool = False) -> List[str]:
    xt = which("xterm")
    if not xt:
        raise NotFoundError("xterm is not installed", hint="install xterm")
    argv = [xt, "-T", title, "-n", title]
    if geometry is not None:
        argv += ["-geometry", str(geometry)]
    if maximized:
        argv.append("-maximized")
    return argv + ["-e"] + list(cmd)


def _terminal_only_emacs(path: str) -> bool:
    """Debian's emacs alternative points at emacs-nox / emacs-gtk / emacs-lucid ..."""
    return "nox" in os.path.basename(os.path.realpath(path))


def _elisp_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def emacs_term_elisp(label: str, cmd: Sequence[str], *, ansi: bool = False) -> str:
    """Elisp that runs ``cmd`` in a term buffer (char mode: every key goes to the console)
    and kills emacs when the console ends."""
    make = "term-ansi-make-term" if ansi else "make-term"
    name = f"*{label}*" if ansi else label                  # make-term adds the stars itself
    program, switches = cmd[0], " ".join(_elisp_string(a) for a in cmd[1:])
    return ("(progn (require 'term) "
            f"(let ((buf ({make} {_elisp_string(name)} {_elisp_string(program)} nil {switches}))) "
            "(switch-to-buffer buf) (term-mode) (term-char-mode) "
            "(set-process-sentinel (get-buffer-process buf) "
            "(lambda (_p _e) (kill-emacs 0)))))")


def spawn(argv: Sequence[str], *, label: str, env: Optional[Dict[str, str]] = None,
          log: Optional[Path] = None, settle: float = 0.5) -> int:
    """Start ``argv`` detached (new session, stdin from /dev/null, output to ``log`` or
    /dev/null), tagged with ``CTYS_LIBVIRT_CLIENT=label``; returns its pid.  A client that
    exits with an error within ``settle`` seconds (no display, bad option) is a BackendError
    carrying the end of its output."""
    e = dict(os.environ if env is None else env)
    e[CLIENT_ENV] = label
    out = open(log, "wb") if log is not None else open(os.devnull, "wb")   # last client only
    try:
        try:
            proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                    env=e, start_new_session=True, close_fds=True)
        except OSError as exc:
            raise BackendError(f"cannot start {argv[0]}: {exc.strerror or exc}",
                               hint="check that the client program is installed") from None
    finally:
        out.close()
    try:
        rc = proc.wait(timeout=settle)
    except subprocess.TimeoutExpired:
        return proc.pid
    if rc != 0:
        tail = ""
        if log is not None:
            try:
                tail = " ".join(Path(log).read_text(errors="replace").strip().splitlines()[-2:])
            except OSError:
                pass
        raise BackendError(f"{os.path.basename(argv[0])} for {label} exited at once (exit {rc})"
                           + (f": {tail}" if tail else ""),
                           hint="check $DISPLAY and the client's options")
    return proc.pid


def client_pids(label: str) -> List[int]:
    """Session leaders of the clients spawned for ``label`` (by this user)."""
    import psutil

    out = []
    me = os.getuid()
    for p in psutil.process_iter(["pid", "uids"]):
        try:
            if p.info["uids"] is None or p.info["uids"].real != me:
                continue
            if p.environ().get(CLIENT_ENV) == label and os.getsid(p.pid) == p.pid:
                out.append((p.pid, p.ppid()))
        except (psutil.Error, OSError):
            continue
    mine = {pid for pid, _ in out}
    # a terminal puts its command in a session of its own: report the terminal only
    return sorted(pid for pid, parent in out if parent not in mine)


def end_clients(label: str) -> List[int]:
    """RECONNECT: SIGTERM every earlier client session of ``label``; returns their pids."""
    import signal

    pids = client_pids(label)
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGTERM)
        except OSError:
            pass
    return pids
