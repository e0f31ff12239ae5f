"""The CLI side of the console clients (ctys_libvirt.backends.console_client): when one is started,
the console command it runs, and the one line it reports (its pid, or why none started)."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List, Optional

from ctys_libvirt.cli.common import warn
from ctys_libvirt.errors import BackendError
from ctys_libvirt.model import WINDOW_CONSOLES, ConsoleType


def _say(text: str) -> None:
    print(text, file=sys.stderr)


def console_command(be, name: str) -> List[str]:
    """``ctys-libvirt console NAME`` for this backend (and this libvirt URI)."""
    exe = Path(sys.executable).parent / "ctys-libvirt"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "ctys_libvirt.cli.app"]
    cmd += ["console", name, "--backend", getattr(be, "name", "libvirt")]
    conn = getattr(be, "conn", None)
    if conn is not None:
        cmd += ["--connect", conn.getURI()]
    return cmd


def _remote_host(be) -> Optional[str]:
    """The host of a remote libvirt connection (None for this host)."""
    conn = getattr(be, "conn", None)
    if conn is None:
        return None
    from urllib.parse import urlsplit

    try:
        host = urlsplit(conn.getURI()).hostname
    except Exception:       # a connection that cannot say: treat it as local
        return None
    return host if host and host not in ("localhost", "127.0.0.1", "::1") else None


def _log_path(name: str, console: ConsoleType) -> Optional[Path]:
    from ctys_libvirt.qemu.runtime import runtime_base

    d = runtime_base() / "clients"
    try:
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return None
    return d / f"{name}.{console.value}.log"


def preflight(name: str, console: ConsoleType) -> None:
    """With $DISPLAY: the client program for ``console`` exists (NotFoundError before the VM
    is started, so a missing xterm changes nothing)."""
    if console in WINDOW_CONSOLES and os.environ.get("DISPLAY"):
        from ctys_libvirt.backends import console_client as cc

        cc.client_argv(cc.ClientTarget(label=name, console=console, vnc_port=cc.VNC_PORT_ANY,
                                       console_argv=("ctys-libvirt",)))


def launch(be, name: str, console: ConsoleType, vnc_port: Optional[int],
           geometry: Optional[str], *, reconnect: bool = False, strict: bool = True,
           warn_with=warn) -> Optional[int]:
    """Start the client window of ``console`` for the running VM ``name``; returns its pid,
    or None (no window console, or no $DISPLAY: then one line with the access details).
    ``strict=False`` (after a create): a client that dies at once is a warning, since the VM
    itself runs; CONNECT keeps it an error."""
    if console not in WINDOW_CONSOLES and geometry is None:
        return None             # no window to start (the client module stays unloaded)
    from ctys_libvirt.backends import console_client as cc

    geo = cc.parse_geometry(geometry) if geometry is not None else None
    if console not in WINDOW_CONSOLES:
        warn_with(f"-g/--geometry {geometry} ignored: CONSOLE {console.value} has no client window")
        return None
    if console is ConsoleType.VNC and not vnc_port:
        _say(f"{name}: has no VNC display (started with another CONSOLE), so no VNC viewer was started")
        return None
    remote = _remote_host(be)
    if console is ConsoleType.VNC and remote:
        # its VNC listens on the remote host's loopback: a local viewer would reach ours
        _say(f"{name}: VNC listens on 127.0.0.1 of {remote}, so no viewer was started here; "
             f"tunnel it: ssh -L {vnc_port}:127.0.0.1:{vnc_port} {remote}")
        return None
    if reconnect:
        ended = cc.end_clients(name)
        if ended:
            _say(f"{name}: ended earlier client(s), pid {', '.join(map(str, ended))}")
    if not os.environ.get("DISPLAY"):
        what = "VNC viewer" if console is ConsoleType.VNC else f"{console.value} terminal"
        access = (f"connect a viewer to 127.0.0.1:{vnc_port}" if console is ConsoleType.VNC
                  else f"attach with `ctys-libvirt console {name}`")
        _say(f"{name}: no $DISPLAY, so no {what} was started; {access}")
        return None
    target = cc.ClientTarget(label=name, console=console, vnc_port=vnc_port,
                             console_argv=tuple(console_command(be, name)))
    argv = cc.client_argv(target, geo)
    try:
        pid = cc.spawn(argv, label=name, log=_log_path(name, console))
    except BackendError as exc:
        if strict:
            raise
        warn_with(f"{exc.message}; {name} runs on without it")
        return None
    _say(f"{name}: {os.path.basename(argv[0])} started for CONSOLE {console.value} (pid {pid})")
    return pid
