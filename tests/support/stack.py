"""Hypervisors "inside a VM" on loopback, for the VM-stack tests.

Each ``SessionHv`` is a real, separate libvirt: the session libvirtd of the unprivileged
account ``ctys-stack`` (scripts/setup.sh creates it) with its own XDG directories, reached
through a test-only sshd on 127.0.0.1:<free port> as ``qemu+ssh://ctys-stack@127.0.0.1:<port>/session``
-- the URI a VM's conf names as its inside (``#@#STACKURI``).  Its domains are all ours, so
a propagated CANCEL (which stops every VM inside) never touches anyone else's.  Client key
and ssh wrapper are shared by all of a module's hypervisors and handed to ctys-libvirt as
the site settings ``CTYS_STACK_SSH_COMMAND`` / ``CTYS_STACK_KEYFILE`` / ``CTYS_STACK_NO_VERIFY``.
"""
from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import List

import pytest

from .cli import run_cli
from .confs import write_conf
from .domains import unique_label
from .guests import wait_marker
from .loopback import ssh_client_files, sshd_files, start_sshd, stop
from .paths import REPO

USER = "ctys-stack"


@dataclass
class SshClient:
    dir: Path
    keyfile: str
    wrapper: str

    @property
    def env(self) -> dict:
        return {"CTYS_STACK_SSH_COMMAND": self.wrapper, "CTYS_STACK_KEYFILE": self.keyfile,
                "CTYS_STACK_NO_VERIFY": "1"}

    def params(self) -> str:
        return f"keyfile={self.keyfile}&no_verify=1&no_tty=1&command={self.wrapper}"


@dataclass
class SessionHv:
    port: int
    dir: Path
    client: SshClient
    proc: subprocess.Popen
    conns: List[object] = field(default_factory=list)

    @property
    def conf_uri(self) -> str:
        """What a conf says (#@#STACKURI): no parameters."""
        return f"qemu+ssh://{USER}@127.0.0.1:{self.port}/session"

    @property
    def uri(self) -> str:
        """What the test itself connects with (the site's ssh settings added)."""
        return f"{self.conf_uri}?{self.client.params()}"

    @property
    def logs(self) -> Path:
        return self.dir / "logs"

    def conn(self):
        import libvirt

        c = libvirt.open(self.uri)
        self.conns.append(c)
        return c

    def state(self, name: str) -> int:
        c = self.conn()
        try:
            return c.lookupByName(name).state()[0]
        finally:
            c.close()
            self.conns.remove(c)

    def cleanup(self) -> None:
        import libvirt

        try:
            c = libvirt.open(self.uri)
            for d in c.listAllDomains():
                try:
                    if d.isActive():
                        d.destroy()
                    if d.isPersistent():
                        d.undefine()
                except libvirt.libvirtError:
                    pass
            c.close()
        except libvirt.libvirtError:
            pass
        for c in self.conns:
            try:
                c.close()
            except Exception:
                pass
        stop(self.proc)
        # the session libvirtd this sshd's logins started (ours: its pid file is in our dir)
        pidfile = self.dir / "run" / "libvirt" / "libvirtd.pid"
        try:
            pid = int(pidfile.read_text().strip())
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                os.kill(pid, 0)
                time.sleep(0.05)
        except (OSError, ValueError):
            pass


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for n in dirs + files:
            os.chown(os.path.join(root, n), uid, gid)


def give_to_stack_user(path: Path) -> None:
    """A VM tree (disk, logs) the session QEMU of ``ctys-stack`` may read and write."""
    pw = pwd.getpwnam(USER)
    _chown_tree(path, pw.pw_uid, pw.pw_gid)


@pytest.fixture(scope="module")
def ssh_client():
    try:
        pwd.getpwnam(USER)
    except KeyError:
        pytest.fail(f"user {USER} missing (run scripts/setup.sh)")
    if not Path("/usr/sbin/sshd").exists():
        pytest.fail("openssh-server is required (/usr/sbin/sshd)")
    d = Path(tempfile.mkdtemp(prefix="ctystest-stackssh-"))
    os.chmod(d, 0o700)
    wrapper = ssh_client_files(d, "/dev/null")
    try:
        yield SshClient(dir=d, keyfile=str(d / "client_key"), wrapper=str(wrapper))
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def session_hvs(ssh_client):
    """Factory: ``session_hvs()`` -> a new SessionHv (torn down with the module)."""
    made: List[SessionHv] = []
    pw = pwd.getpwnam(USER)

    def make() -> SessionHv:
        d = Path(tempfile.mkdtemp(prefix="ctystest-stackhv-", dir="/var/tmp"))
        os.chmod(d, 0o755)
        for sub in ("run", "cfg", "cache", "data", "logs", "scancache"):
            (d / sub).mkdir(mode=0o700)
        port = sshd_files(
            d, ssh_client.keyfile + ".pub",
            f"AllowUsers {USER}\n"
            f"SetEnv XDG_RUNTIME_DIR={d}/run XDG_CONFIG_HOME={d}/cfg XDG_CACHE_HOME={d}/cache "
            f"XDG_DATA_HOME={d}/data CTYS_SCAN_CACHE_DIR={d}/scancache "
            f"PATH={REPO}/.venv/bin:/usr/local/bin:/usr/bin:/bin\n")
        _chown_tree(d, pw.pw_uid, pw.pw_gid)
        os.chown(d / "host_key", 0, 0)
        os.chmod(d / "host_key", 0o600)
        proc = start_sshd(d, port)
        hv = SessionHv(port=port, dir=d, client=ssh_client, proc=proc)
        made.append(hv)
        return hv

    try:
        yield make
    finally:
        for hv in made:
            hv.cleanup()
            shutil.rmtree(hv.dir, ignore_errors=True)


def stack_line(uri: str) -> str:
    return f'#@#STACKURI = "{uri}"\n'


def start_vm(root, media, *, guest="acpi", stack_uri=None, hv=None, extra="", ip="", backend=None):
    """A tiny guest from a conf, on the system libvirtd (hv None) or inside ``hv``; waits
    for its serial marker (the ACPI guest arms its power button before printing it)."""
    label = unique_label(guest)
    conf = write_conf(root, label, image=media[guest], ip=ip,
                      extra=(stack_line(stack_uri) if stack_uri else "") + extra)
    if hv is None:
        log = root / f"{label}.serial"
        p = run_cli("create", str(conf), "--console", "NONE", "--serial-log", str(log),
                    *(("--backend", backend) if backend else ()))
    else:
        give_to_stack_user(conf.parent)
        log = hv.logs / f"{label}.serial"
        p = run_cli("create", "-c", hv.uri, str(conf), "--console", "NONE", "--serial-log", str(log))
    assert p.returncode == 0, p.stderr
    wait_marker(log, "CTYS-GUEST-OK", timeout=60)
    return label


@pytest.fixture(scope="module")
def libvirtless_guests(ssh_client):
    """Factory: ``libvirtless_guests(hv)`` -> port of a root sshd on loopback that stands in
    for a guest without libvirt: its ForceCommand refuses everything (so libvirt over ssh
    fails) but ``ctys-libvirt cancel --all --backend libvirt ...``, which it runs with
    ``--connect`` pinned to ``hv`` -- never this host's own libvirtd."""
    made = []

    def make(hv: SessionHv) -> int:
        d = Path(tempfile.mkdtemp(prefix="ctystest-nolibvirt-"))
        os.chmod(d, 0o700)
        force = d / "force"
        force.write_text(
            "#!/bin/sh\n"
            'case "$SSH_ORIGINAL_COMMAND" in\n'
            "  'ctys-libvirt cancel --all --backend libvirt '*)\n"
            f'    exec /bin/sh -c "$SSH_ORIGINAL_COMMAND --connect \'{hv.uri}\'" ;;\n'
            '  *) echo "no libvirt in this guest" >&2; exit 1 ;;\n'
            "esac\n")
        os.chmod(force, 0o755)
        env = " ".join(f"{k}={v}" for k, v in ssh_client.env.items())
        port = sshd_files(d, ssh_client.keyfile + ".pub",
                          "AllowUsers root\nPermitRootLogin prohibit-password\n"
                          f"ForceCommand {force}\n"
                          f"SetEnv PATH={REPO}/.venv/bin:/usr/local/bin:/usr/bin:/bin {env}\n")
        proc = start_sshd(d, port)
        made.append((proc, d))
        return port

    try:
        yield make
    finally:
        for proc, d in made:
            stop(proc)
            shutil.rmtree(d, ignore_errors=True)
