"""Loopback transports for the multi-host tests, set up and torn down per test module.

* ``sshd``: a test-only ``/usr/sbin/sshd`` on 127.0.0.1:<free port> with a generated host key,
  a generated client key and its own ``authorized_keys`` (root's ~/.ssh is never touched); an
  ssh wrapper script pins the client config (known_hosts in the tmp dir, the key, BatchMode).
  ``SetEnv PATH`` puts this checkout's venv first, so ``ctys-libvirt`` exists "remotely".
* ``tcp_proxy``: a TCP listener on 127.0.0.1:<free port> forwarding each connection to the
  running libvirtd's UNIX socket -- what ``virtproxyd`` does, without reconfiguring or
  restarting the main daemon (a second system libvirtd would fight over its state).  The
  client side is libvirt's real ``qemu+tcp`` transport.
Only loopback addresses are ever used.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from .paths import REPO

LIBVIRT_SOCK = "/run/libvirt/libvirt-sock"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@dataclass
class Sshd:
    port: int
    keyfile: str
    wrapper: str           # ssh wrapper script (client config pinned)
    dir: Path

    @property
    def target(self) -> str:
        """The ctys target word reaching this sshd as root."""
        return (f"root@127.0.0.1:{self.port}(--ssh-command {self.wrapper} "
                f"--keyfile {self.keyfile} --no-verify)")

    @property
    def uri(self) -> str:
        return (f"qemu+ssh://root@127.0.0.1:{self.port}/system?keyfile={self.keyfile}"
                f"&no_verify=1&no_tty=1&command={self.wrapper}")


def ssh_client_files(d: Path, known_hosts: str) -> Path:
    """A client key ``d/client_key``, an ``ssh_config`` pinning it (batch mode, host keys
    kept in ``known_hosts``) and an ``ssh`` wrapper using that config; returns the wrapper."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "client_key")], check=True)
    (d / "ssh_config").write_text(
        f"Host *\n  UserKnownHostsFile {known_hosts}\n  StrictHostKeyChecking no\n"
        f"  IdentityFile {d}/client_key\n  IdentitiesOnly yes\n  BatchMode yes\n  LogLevel ERROR\n")
    wrapper = d / "ssh"
    wrapper.write_text(f'#!/bin/sh\nexec /usr/bin/ssh -F {d}/ssh_config "$@"\n')
    os.chmod(wrapper, 0o755)
    return wrapper


def sshd_files(d: Path, client_pub: str, extra: str) -> int:
    """A host key, ``authorized_keys`` (the client's public key) and an ``sshd_config`` in
    ``d`` for a key-only sshd on 127.0.0.1:<free port> with ``extra`` lines; returns the port."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host_key")], check=True)
    shutil.copyfile(client_pub, d / "authorized_keys")
    port = free_port()
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\n"
        f"AuthorizedKeysFile {d}/authorized_keys\nPidFile {d}/sshd.pid\n"
        "PubkeyAuthentication yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "UsePAM no\nStrictModes no\n" + extra + "LogLevel ERROR\n")
    return port


def start_sshd(d: Path, port: int) -> subprocess.Popen:
    """sshd of ``d/sshd_config`` in the foreground, once it accepts connections (stopped
    again when it does not)."""
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation dir
    proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(d / "sshd_config")],
                            stdout=subprocess.DEVNULL, stderr=open(d / "sshd.log", "wb"))
    try:
        wait_port(port, proc)
    except BaseException:
        stop(proc)
        raise
    return proc


@pytest.fixture(scope="module")
def sshd():
    if not Path("/usr/sbin/sshd").exists():
        pytest.fail("openssh-server is required (/usr/sbin/sshd)")
    d = Path(tempfile.mkdtemp(prefix="ctystest-sshd-"))
    os.chmod(d, 0o700)
    wrapper = ssh_client_files(d, f"{d}/known_hosts")
    venv_bin = REPO / ".venv" / "bin"
    port = sshd_files(d, str(d / "client_key.pub"),
                      "PermitRootLogin prohibit-password\n"
                      f"SetEnv PATH={venv_bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "
                      f"CTYS_SCAN_CACHE_DIR={d}/scancache\n")
    proc = None
    try:
        proc = start_sshd(d, port)
        yield Sshd(port=port, keyfile=str(d / "client_key"), wrapper=str(wrapper), dir=d)
    finally:
        if proc is not None:
            stop(proc)
        shutil.rmtree(d, ignore_errors=True)


PROXY_CODE = r"""
import socket, sys, threading
port, target = int(sys.argv[1]), sys.argv[2]
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port)); srv.listen(16)
def pump(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try: s.shutdown(socket.SHUT_RDWR)
            except OSError: pass
while True:
    c, _ = srv.accept()
    u = socket.socket(socket.AF_UNIX); u.connect(target)
    threading.Thread(target=pump, args=(c, u), daemon=True).start()
    threading.Thread(target=pump, args=(u, c), daemon=True).start()
"""


@dataclass
class TcpProxy:
    port: int

    @property
    def uri(self) -> str:
        return f"qemu+tcp://127.0.0.1:{self.port}/system"


@pytest.fixture(scope="module")
def tcp_proxy():
    if not Path(LIBVIRT_SOCK).exists():
        pytest.fail(f"libvirtd socket {LIBVIRT_SOCK} missing (run scripts/setup.sh)")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", PROXY_CODE, str(port), LIBVIRT_SOCK],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc)
        yield TcpProxy(port=port)
    finally:
        stop(proc)
