"""How the hypervisor inside a VM is found: from the VM's ``#@#`` keys (the conf, or the
copy our domain metadata carries) plus site settings from the environment.

* ``#@#STACKURI = "qemu+ssh://user@host:port/session"``: the inner libvirt, written out
  (transports ssh, libssh, libssh2, tcp, tls; path /system or /session; no URI parameters:
  a conf never picks the programs or key files the connection uses).
* else ``#@#IP0 = "<ip>%<netmask>%<relay>%<ifname>%<sshport>%<gateway>"`` (conf-format §2.1):
  ``qemu+ssh://<user>@<ip>[:<sshport>]/<path>``, user from ``#@#STACKUSER`` (default
  ``CTYS_STACK_USER`` or root), path from ``#@#STACKPATH`` (``system`` | ``session``, default
  ``CTYS_STACK_PATH`` or system).

Site (environment of whoever runs ctys-libvirt, never a conf): ``CTYS_STACK_SSH_COMMAND``
(ssh binary or wrapper), ``CTYS_STACK_KEYFILE``, ``CTYS_STACK_NO_VERIFY=1`` (skip host-key
checks), ``CTYS_STACK_CONNECT_TIMEOUT`` (seconds, default 10).  ssh always runs in batch
mode (libvirt's ``no_tty=1``): a guest that wants a password does not answer.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Mapping, Optional, Tuple
from urllib.parse import urlsplit

from ctys_libvirt.errors import UsageError
from ctys_libvirt.ctys.targets import Target, target_uri

TRANSPORTS = ("ssh", "libssh", "libssh2", "tcp", "tls")
PATHS = ("system", "session")
_HOST = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*|[0-9A-Fa-f]*:[0-9A-Fa-f:.]*")
_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\$?")
DEFAULT_CONNECT_TIMEOUT = 10.0


# the reason for a VM whose conf says nothing about a hypervisor inside it: the plain,
# stack-less VM (front ends show the note only when asked to be verbose)
NO_STACK_KEYS = "no #@#IP0 and no #@#STACKURI in its conf"


@dataclass(frozen=True)
class StackSite:
    """Site settings for reaching the inside of VMs (from the environment)."""

    user: str = "root"
    path: str = "system"
    ssh_command: Optional[str] = None
    keyfile: Optional[str] = None
    no_verify: bool = False
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> "StackSite":
        env = os.environ if env is None else env
        user = env.get("CTYS_STACK_USER") or "root"
        path = (env.get("CTYS_STACK_PATH") or "system").strip("/")
        if not _USER.fullmatch(user):
            raise UsageError(f"CTYS_STACK_USER={user!r} is not a user name", hint="unset it or fix it")
        if path not in PATHS:
            raise UsageError(f"CTYS_STACK_PATH={path!r}: use system or session", hint="unset it or fix it")
        raw = env.get("CTYS_STACK_CONNECT_TIMEOUT")
        timeout = DEFAULT_CONNECT_TIMEOUT
        if raw:
            try:
                timeout = float(raw)
            except ValueError:
                timeout = -1
            if not 0 < timeout <= 3600:
                raise UsageError(f"CTYS_STACK_CONNECT_TIMEOUT={raw!r} is not a number of seconds",
                                 hint="use e.g. 10")
        return cls(user=user, path=path, ssh_command=env.get("CTYS_STACK_SSH_COMMAND") or None,
                   keyfile=env.get("CTYS_STACK_KEYFILE") or None,
                   no_verify=(env.get("CTYS_STACK_NO_VERIFY") or "") in ("1", "yes", "true"),
                   connect_timeout=timeout)


@dataclass(frozen=True)
class Inside:
    """The hypervisor inside one VM: ``uri`` (None when not known) and where it came from."""

    label: str
    uri: Optional[str]
    source: str            # STACKURI | IP0 | "" (not known)
    reason: str = ""       # why it is not known
    ip: Optional[str] = None
    port: Optional[int] = None
    user: Optional[str] = None
    transport: str = "ssh"

    def ssh_target(self, site: StackSite) -> Optional[Target]:
        """The ssh login into the VM (for ctys-libvirt run there, e.g. ENUMERATE), or None
        when its inside is not reached over ssh."""
        if self.uri is None or self.transport != "ssh" or not self.ip:
            return None
        return Target(host=self.ip, user=self.user, port=self.port, keyfile=site.keyfile,
                      no_verify=site.no_verify, ssh_command=site.ssh_command, raw=self.label)

    @property
    def display(self) -> str:
        """The URI without its parameters (key files, ssh wrapper): for output."""
        return (self.uri or "").split("?", 1)[0]


def ip0_fields(value: str) -> Tuple[Optional[str], Optional[int]]:
    """``<ip>%<netmask>%<relay>%<ifname>%<sshport>%<gateway>`` (first entry of a list) ->
    (ip, sshport); an empty or non-numeric port is None."""
    entry = (value or "").split(",")[0].strip()
    parts = entry.split("%")
    ip = parts[0].strip() or None
    port = None
    if len(parts) > 4 and parts[4].strip().isdigit():
        port = int(parts[4].strip())
    return ip, port


def build_uri(host: str, *, user: Optional[str], port: Optional[int], path: str,
              transport: str, site: StackSite) -> str:
    ssh = transport in ("ssh", "libssh", "libssh2")
    t = Target(host=host, user=user, port=port, transport=transport,
               keyfile=site.keyfile if ssh else None, no_verify=site.no_verify if ssh else False,
               ssh_command=site.ssh_command if transport == "ssh" else None)
    uri = target_uri(t)
    base, sep, query = uri.partition("?")
    assert base.endswith("/system")
    return base[: -len("system")] + path + sep + query


def inside_of(label: str, keys: Mapping[str, str], site: Optional[StackSite] = None) -> Inside:
    """The inner hypervisor of the VM ``label`` with ``#@#`` keys ``keys``."""
    site = site or StackSite.from_env()
    raw = (keys.get("STACKURI") or "").strip()
    if raw:
        return _from_stackuri(label, raw, site)
    ip, port = ip0_fields(keys.get("IP0") or "")
    if not ip:
        return Inside(label, None, "", NO_STACK_KEYS)
    if keys.get("_NETWORK") == "0":
        return Inside(label, None, "", "no network device, so its #@#IP0 cannot be reached; "
                      "#@#STACKURI names an inside reached another way", ip=ip)
    if not _HOST.fullmatch(ip):
        return Inside(label, None, "", f"#@#IP0 {ip!r} is not an address")
    user = (keys.get("STACKUSER") or "").strip() or site.user
    if not _USER.fullmatch(user):
        return Inside(label, None, "", f"#@#STACKUSER {user!r} is not a user name", ip=ip)
    path = (keys.get("STACKPATH") or "").strip().strip("/") or site.path
    if path not in PATHS:
        return Inside(label, None, "", f"#@#STACKPATH {path!r}: use system or session", ip=ip)
    return Inside(label, build_uri(ip, user=user, port=port, path=path, transport="ssh", site=site),
                  "IP0", ip=ip, port=port, user=user)


def _from_stackuri(label: str, raw: str, site: StackSite) -> Inside:
    def bad(why: str) -> Inside:
        return Inside(label, None, "", f"#@#STACKURI {raw!r} refused: {why}")

    try:
        u = urlsplit(raw)
        port = u.port
    except ValueError as exc:
        return bad(str(exc))
    scheme = u.scheme.lower()
    if not scheme.startswith("qemu+") or scheme[5:] not in TRANSPORTS:
        return bad("use qemu+ssh:// (or qemu+libssh, qemu+libssh2, qemu+tcp, qemu+tls)")
    if u.query or u.fragment:
        return bad("no URI parameters in a conf (ssh command, key file: CTYS_STACK_* settings)")
    host = u.hostname or ""
    if not _HOST.fullmatch(host):
        return bad("no host, or not a DNS name or IP address")
    if u.username is not None and not _USER.fullmatch(u.username):
        return bad("bad user name")
    path = (u.path or "/system").strip("/")
    if path not in PATHS:
        return bad("the path must be /system or /session")
    ssh = scheme[5:] in ("ssh", "libssh", "libssh2")
    user = u.username or (site.user if ssh else None)
    return Inside(label, build_uri(host, user=user, port=port, path=path,
                                   transport=scheme[5:], site=site), "STACKURI", ip=host,
                  port=port, user=user, transport=scheme[5:])
