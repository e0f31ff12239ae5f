"""Minimal QEMU monitor clients over unix sockets: HMP (every version, the text
monitor with its ``(qemu)`` prompt) and QMP (JSON, where the binary lists ``-qmp``).

Both answer the commands the direct backend needs; both raise ``BackendError``
when the socket is gone or refuses, naming the socket, so CANCEL can escalate to
signals.  Replies are read (legacy ctys wrote blindly and unlinked the socket)."""
from __future__ import annotations

import json
import shlex
import socket
from typing import Any, Dict, Optional, Tuple

from ctys_libvirt.errors import BackendError

PROMPT = b"(qemu) "


def _connect(path: str, timeout: float) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
    except FileNotFoundError:
        s.close()
        raise BackendError(f"monitor socket {path} is gone",
                           hint="the VM is not running or its runtime dir was removed") from None
    except OSError as exc:
        s.close()
        raise BackendError(f"monitor socket {path} refused the connection ({exc.strerror})",
                           hint="stale socket of a dead QEMU; CANCEL FORCE cleans it up") from None
    return s


class _SocketClient:
    """What HMP and QMP share: connect, read up to a separator, the opening exchange (a QEMU
    that dies meanwhile is a BackendError), close."""

    kind = ""
    what = "monitor"   # in messages
    opening = "prompt"

    def __init__(self, path: str, timeout: float = 5.0):
        self.path = path
        self.timeout = timeout
        self.sock = _connect(path, timeout)
        self._buf = b""
        try:
            self._hello()
        except EOFError:
            self.close()
            raise BackendError(f"{self.what} socket {path} closed before the {self.opening} "
                               "(QEMU is going away)", hint="CANCEL FORCE finishes it with signals") from None

    def _hello(self) -> None:
        raise NotImplementedError

    def _read_until(self, sep: bytes, size: int) -> bytes:
        while sep not in self._buf:
            try:
                chunk = self.sock.recv(size)
            except socket.timeout:
                raise BackendError(f"{self.what} {self.path} did not answer within {self.timeout:g}s",
                                   hint="QEMU is busy or hung; use CANCEL FORCE") from None
            except OSError:      # ECONNRESET: QEMU is going away; same as end of stream
                chunk = b""
            if not chunk:
                raise EOFError
            self._buf += chunk
        out, _, self._buf = self._buf.partition(sep)
        return out

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class HmpClient(_SocketClient):
    """The human monitor: send one line, read up to the next ``(qemu)`` prompt."""

    kind = "hmp"

    def _hello(self) -> None:
        self._read_prompt()

    def _read_prompt(self) -> bytes:
        return self._read_until(PROMPT, 4096)

    def command(self, line: str) -> str:
        """Run ``line``; the reply without the echoed command.  ``quit`` and
        commands that end QEMU return '' when the connection closes."""
        try:
            self.sock.sendall(line.encode() + b"\n")
            out = self._read_prompt()
        except EOFError:
            return ""
        except OSError as exc:
            if line.split()[0] == "quit":
                return ""
            raise BackendError(f"monitor {self.path}: '{line}' failed ({exc})",
                               hint="QEMU went away; check LIST") from None
        text = out.decode("utf-8", "replace").replace("\r", "")
        lines = [l for l in text.split("\n")]
        # drop the echo of our command (old QEMUs echo with terminal escapes)
        if lines and line.strip() in lines[0]:
            lines = lines[1:]
        return "\n".join(l for l in lines if l.strip()).strip()

    def status(self) -> str:
        reply = self.command("info status")
        for l in reply.splitlines():
            if "VM status:" in l:
                st = l.split(":", 1)[1].strip()
                return "running" if st.startswith("running") else st
        return "unknown"


class QmpClient(_SocketClient):
    """QMP: greeting, ``qmp_capabilities``, then execute; events are skipped."""

    kind = "qmp"
    what = "QMP"
    opening = "greeting"

    def _hello(self) -> None:
        self.greeting = self._read_msg()
        self.execute("qmp_capabilities")

    def _read_msg(self) -> Dict[str, Any]:
        line = self._read_until(b"\n", 65536)
        return json.loads(line) if line.strip() else self._read_msg()

    def execute(self, command: str, arguments: Optional[Dict[str, Any]] = None,
                fds: Tuple[int, ...] = ()) -> Any:
        """``fds``: descriptors passed along (SCM_RIGHTS), e.g. for ``getfd``."""
        msg: Dict[str, Any] = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        try:
            data = json.dumps(msg).encode() + b"\n"
            if fds:
                sent = socket.send_fds(self.sock, [data], list(fds))
                if sent < len(data):
                    self.sock.sendall(data[sent:])
            else:
                self.sock.sendall(data)
            while True:
                reply = self._read_msg()
                if "return" in reply:
                    return reply["return"]
                if "error" in reply:
                    err = reply["error"]
                    raise BackendError(f"QMP {command} failed: {err.get('desc', err)}",
                                       hint=f"monitor {self.path}")
                # an event: skip
        except EOFError:
            if command == "quit":
                return {}
            raise BackendError(f"QMP {self.path} closed during {command}",
                               hint="QEMU went away; check LIST") from None
        except OSError as exc:
            if command == "quit":
                return {}
            raise BackendError(f"QMP {self.path}: {command} failed ({exc})",
                               hint="QEMU went away; check LIST") from None

    def command(self, line: str) -> str:
        """HMP text through QMP (used for ``migrate "exec:..."`` and the like)."""
        return str(self.execute("human-monitor-command", {"command-line": line}) or "")

    def status(self) -> str:
        return str(self.execute("query-status").get("status", "unknown"))


class Monitor:
    """The verbs the backend uses, over either protocol."""

    def __init__(self, client):
        self.client = client

    @property
    def kind(self) -> str:
        return self.client.kind

    def _run(self, cmd: str) -> None:
        if self.client.kind == "qmp":
            self.client.execute(cmd)
        else:
            self.client.command(cmd)

    def powerdown(self) -> None:
        self._run("system_powerdown")

    def reset(self) -> None:
        self._run("system_reset")

    def stop(self) -> None:
        self._run("stop")

    def cont(self) -> None:
        self._run("cont")

    def quit(self) -> None:
        self._run("quit")

    def status(self) -> str:
        return self.client.status()

    def file_uri(self, path: str) -> str:
        """The ``exec:cat > FILE`` migration URI for ``path``.  It is a /bin/sh command line,
        so the path is shell-quoted (a runtime base may hold blanks, '$', quotes); HMP takes
        the URI inside double quotes, where a '"' or '\\' cannot be said.  Call it before
        stopping the guest, so a path that cannot be named leaves the VM running."""
        target = shlex.quote(path)
        if self.client.kind != "qmp" and ('"' in target or "\\" in target):
            raise BackendError(f"SUSPEND cannot name {path} in an HMP migrate command "
                               "(it holds '\"' or '\\')",
                               hint="use a runtime dir without them ($CTYS_RUNTIME_DIR)")
        return f"exec:cat > {target}"

    def migrate_to_fd(self, fd: int, path: str, timeout: float = 60.0) -> None:
        """Save the VM state into the open file ``fd`` (QMP ``getfd`` + ``migrate fd:``): a
        sandboxed QEMU may not spawn the ``cat`` of an exec: URI, nor open our files."""
        if self.client.kind != "qmp":
            raise BackendError("saving through a passed descriptor needs QMP",
                               hint="this QEMU has only HMP; use PAUSE")
        self.client.execute("getfd", {"fdname": "ctys-state"}, fds=(fd,))
        self.client.execute("migrate", {"uri": "fd:ctys-state"})
        self._wait_migration(path, timeout)

    def migrate_to_file(self, path: str, timeout: float = 60.0) -> None:
        """Save the VM state to ``path`` through ``migrate "exec:cat > FILE"`` and wait."""
        uri = self.file_uri(path)
        if self.client.kind == "qmp":
            self.client.execute("migrate", {"uri": uri})
            self._wait_migration(path, timeout)
            return
        self.client.command(f'migrate "{uri}"')  # HMP migrate blocks until done

    def _wait_migration(self, path: str, timeout: float) -> None:
        def done() -> bool:
            st = self.client.execute("query-migrate") or {}
            if st.get("status") in ("failed", "cancelled"):
                raise BackendError(f"migration to {path} {st.get('status')}: "
                                   f"{st.get('error-desc', 'no reason given')}",
                                   hint="check free space and that 'cat' exists on the host")
            return st.get("status") == "completed"

        from ctys_libvirt.util.retry import wait_for

        if not wait_for(done, timeout, interval=0.02, max_interval=0.2):
            raise BackendError(f"migration to {path} did not finish within {timeout:g}s",
                               hint="the VM keeps running; retry with a longer timeout")

    def close(self) -> None:
        self.client.close()


def open_monitor(path: str, kind: str = "hmp", timeout: float = 5.0) -> Monitor:
    return Monitor(QmpClient(path, timeout) if kind == "qmp" else HmpClient(path, timeout))
