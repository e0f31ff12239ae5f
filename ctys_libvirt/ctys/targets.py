"""Execution targets (ctys-cli.md §1.5): ``[user@]host``, ``host(opts)``, comma lists and
group files ``~/.ctys/groups/<name>`` -> libvirt URIs and ssh command lines.

A target maps to ``qemu+<transport>://[user@]host[:port]/system`` (transport ``ssh`` by
default; ``tcp``, ``tls``, ``libssh``, ``libssh2`` selectable); ``localhost`` (or no target)
means the local default URI.  Per-target context options understood inside ``(...)``:
``-l USER``, ``--transport T``, ``--port N``, ``--keyfile FILE``, ``--no-verify``,
``--connect URI``, ``--remote-cmd CMD``, ``--ssh-command CMD`` (an ssh binary or wrapper, used
for both the libvirt URI's ``command=`` and the ENUMERATE ssh call).

Stack addresses ``host[vm1][vm2]`` are split here (the walk into the VMs is ``stack/``).
"""
from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple
from urllib.parse import quote

from ctys_libvirt.errors import NotFoundError, UsageError
from ctys_libvirt.util.uri import default_uri  # noqa: F401 (API: the grammar's default target)

TRANSPORTS = ("ssh", "tcp", "tls", "libssh", "libssh2")
_HOST = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*|[0-9A-Fa-f]*:[0-9A-Fa-f:.]*")
_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\$?")
LOCAL_NAMES = ("localhost", "127.0.0.1", "::1", "")
MAX_GROUP_DEPTH = 15  # CTYS_MAXRECURSE
SSH_CONNECT_TIMEOUT = 10
# ctys generic options that a context '(...)' (target or group CONTEXT line) may carry but
# that mean nothing for one libvirt connection: accepted and skipped, like on the command line
IGNORED_CTX_ARG = frozenset("-A -b -c -C -d -D -F -g -j -k -L -M -O -p -s -S -T -W -x -z -Z".split())
IGNORED_CTX_FLAG = frozenset("-E -f -P -w -X -y -Y".split())
REMOTE_TIMEOUT = 600


@dataclass(frozen=True)
class Target:
    host: str
    user: Optional[str] = None
    port: Optional[int] = None
    transport: Optional[str] = None     # None: the caller's default
    keyfile: Optional[str] = None
    no_verify: bool = False
    uri: Optional[str] = None           # explicit libvirt URI (--connect)
    remote_cmd: Optional[str] = None    # ctys-libvirt on the far side
    ssh_command: Optional[str] = None   # ssh binary/wrapper (libvirt URI 'command=')
    raw: str = ""
    stack: Tuple[str, ...] = ()         # host[vm1][vm2]: the VMs walked into (ctys_libvirt.stack)

    @property
    def is_local(self) -> bool:
        return self.uri is None and self.host in LOCAL_NAMES and self.port is None and not self.stack

    @property
    def display(self) -> str:
        """Name used in the host column and in per-host error lines."""
        if self.uri and not self.host:
            return self.uri
        return (self.host or "localhost") + "".join(f"[{v}]" for v in self.stack)

    @property
    def base(self) -> "Target":
        """The physical host of a stack target (itself for any other)."""
        return replace(self, stack=()) if self.stack else self


# ---------------------------------------------------------------------------
# parsing
# ---------------------------------------------------------------------------

def _split_context(word: str) -> Tuple[str, Optional[str]]:
    """'host(-l x)' -> ('host', '-l x'); unbalanced parentheses -> UsageError."""
    w = word.strip()
    if "(" not in w and ")" not in w:
        return w, None
    i = w.find("(")
    if i < 0 or not w.endswith(")") or w.count("(") != w.count(")"):
        raise UsageError(f"malformed target {word!r}", hint="write host'(opts)' with balanced parentheses")
    return w[:i].strip(), w[i + 1:-1].strip()


def apply_context(t: Target, opts: Optional[str]) -> Target:
    if not opts:
        return t
    try:
        words = shlex.split(opts)
    except ValueError as exc:
        raise UsageError(f"bad context options ({opts}): {exc}", hint="check the quoting") from None
    i = 0
    kw: Dict[str, object] = {}

    def val() -> str:
        nonlocal i
        if i + 1 >= len(words):
            raise UsageError(f"context option {words[i]} needs a value", hint=f"in ({opts})")
        i += 1
        return words[i]

    while i < len(words):
        w = words[i]
        if w == "-l":
            kw["user"] = val()
        elif w == "--transport":
            kw["transport"] = check_transport(val())
        elif w == "--port":
            v = val()
            if not v.isdigit():
                raise UsageError(f"--port {v}: not a number", hint=f"in ({opts})")
            kw["port"] = int(v)
        elif w == "--keyfile":
            kw["keyfile"] = val()
        elif w == "--no-verify":
            kw["no_verify"] = True
        elif w == "--connect":
            kw["uri"] = val()
        elif w == "--remote-cmd":
            kw["remote_cmd"] = val()
        elif w == "--ssh-command":
            kw["ssh_command"] = val()
        elif w in IGNORED_CTX_ARG:      # ctys options without meaning per target (-d 3, -b 1,2 ...)
            val()
        elif w in IGNORED_CTX_FLAG:
            pass
        elif w == "-t":
            v = val()
            if v.upper() not in ("QEMU", "ALL"):
                raise UsageError(f"context option -t {v} in ({opts}): only QEMU is handled here",
                                 hint="drop -t or write -t QEMU")
        elif w == "-a":
            raise UsageError(f"per-target actions (-a in ({opts})) are not supported",
                             hint="give the action once with -a before the targets")
        else:
            raise UsageError(f"unsupported context option {w!r} in ({opts})",
                             hint="use -l USER, --transport T, --port N, --keyfile F, --no-verify, "
                                  "--connect URI, --remote-cmd CMD, --ssh-command CMD (ctys options "
                                  "such as -d, -b, -c, -g, -z are accepted and ignored)")
        i += 1
    return replace(t, **kw)  # type: ignore[arg-type]


def check_transport(t: str) -> str:
    t = t.lower()
    if t not in TRANSPORTS:
        raise UsageError(f"unknown transport {t!r}", hint="use one of " + ", ".join(TRANSPORTS))
    return t


def parse_target(word: str) -> Target:
    hostpart, ctx = _split_context(word)
    hostpart, stack = split_stack(hostpart)
    user = None
    if "@" in hostpart:
        user, hostpart = hostpart.rsplit("@", 1)
        if not user:
            raise UsageError(f"empty user in target {word!r}", hint="write user@host")
    if not hostpart:
        raise UsageError(f"empty host in target {word!r}", hint="write [user@]host")
    port = None
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::([0-9]+))?", hostpart)
    if m:                       # [v6addr] or [v6addr]:port; the URI adds the brackets back
        hostpart, port = m.group(1), int(m.group(2)) if m.group(2) else None
    elif hostpart.count(":") == 1:
        h, p = hostpart.split(":")
        if p.isdigit():
            hostpart, port = h, int(p)
    # the host and user end up in a libvirt URI and on ssh's command line: a leading '-'
    # would be an ssh option, '/', '{', '[' ... a different URI
    if not _HOST.fullmatch(hostpart):
        raise UsageError(f"bad host name {hostpart!r} in target {word!r}",
                         hint="write [user@]host with a DNS name or IP address, or a group name "
                              "(~/.ctys/groups/<name>)")
    if user is not None and not _USER.fullmatch(user):
        raise UsageError(f"bad user name {user!r} in target {word!r}", hint="write user@host")
    return apply_context(Target(host=hostpart, user=user, port=port, raw=word, stack=stack), ctx)


def groups_path() -> List[Path]:
    env = os.environ.get("CTYS_GROUPS_PATH")
    if env:
        return [Path(p).expanduser() for p in env.split(":") if p]
    return [Path(os.path.expanduser("~")) / ".ctys" / "groups"]


def find_group(name: str) -> Optional[Path]:
    if name.startswith("/") or ".." in Path(name).parts:
        return None
    for d in groups_path():
        p = d / name
        if p.is_file():
            return p
    return None


def _group_members(path: Path, depth: int, seen: Tuple[str, ...]) -> List[Target]:
    if depth > MAX_GROUP_DEPTH:
        raise UsageError(f"group nesting deeper than {MAX_GROUP_DEPTH} at {path}",
                         hint="check the #include chain for a loop")
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise NotFoundError(f"cannot read group file {path}: {exc.strerror or exc}",
                            hint="check its permissions") from None
    context: Optional[str] = None
    members: List[Target] = []
    for raw in lines:
        line = raw.strip()
        if line.startswith("#include"):
            inc = line[len("#include"):].strip()
            ip = find_group(inc)
            if ip is None or inc in seen:
                raise NotFoundError(f"{path}: #include {inc}: unknown group" if ip is None
                                    else f"{path}: #include loop through {inc}",
                                    hint="groups are files in " + ":".join(map(str, groups_path())))
            members.extend(_group_members(ip, depth + 1, seen + (inc,)))
            continue
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("CONTEXT"):
            _, ctx = _split_context(line[len("CONTEXT"):].strip().strip("'\"") or "()")
            context = ctx
            continue
        for word in _words(line):
            members.extend(expand_word(word, depth + 1, seen))
    if context:
        members = [apply_context(m, context) for m in members]
    return members


def _attach_contexts(parts: Sequence[str]) -> List[str]:
    """ctys allows blanks between a host and its options (``host02 '(-d 1)'``): a part that
    is only ``(...)`` belongs to the part before it."""
    out: List[str] = []
    for p in parts:
        if p.startswith("(") and out and not out[-1].endswith(")"):
            out[-1] += p
        else:
            out.append(p)
    return out


def _words(line: str) -> List[str]:
    """Split a target list on blanks/commas, keeping '(...)' groups (quotes removed)."""
    return _attach_contexts(_split_words(line))


def _split_words(line: str) -> List[str]:
    out, cur, depth = [], [], 0
    for ch in line:
        if ch in "'\"":
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if depth == 0 and (ch.isspace() or ch == ","):
            if cur:
                out.append("".join(cur))
                cur = []
            continue
        cur.append(ch)
    if cur:
        out.append("".join(cur))
    return out


def expand_word(word: str, depth: int = 0, seen: Tuple[str, ...] = ()) -> List[Target]:
    hostpart, ctx = _split_context(word)
    if "@" not in hostpart:
        gp = find_group(hostpart)
        if gp is not None:
            if hostpart in seen:
                raise UsageError(f"group {hostpart} includes itself", hint="check the group files")
            members = _group_members(gp, depth, seen + (hostpart,))
            return [apply_context(m, ctx) for m in members]
    return [parse_target(word)]


def expand_group(name: str) -> List[Target]:
    """An explicitly named group -> its members; unknown group -> NotFoundError."""
    gp = find_group(name)
    if gp is None:
        raise NotFoundError(f"unknown group {name!r} (searched: {':'.join(map(str, groups_path()))})",
                            hint="create ~/.ctys/groups/<name> or set CTYS_GROUPS_PATH")
    return _group_members(gp, 0, (name,))


def target_from_uri(uri: str) -> Optional[Target]:
    """A libvirt URI as an ENUMERATE target: ``qemu+ssh://[user@]host[:port]/...`` -> that
    host over ssh; a local URI (no host part, e.g. ``qemu:///system``) -> None (this host).
    Other remote transports cannot run the scan: ENUMERATE reads files over ssh."""
    from urllib.parse import urlsplit

    try:
        u = urlsplit(uri)
        port = u.port
    except ValueError:
        raise UsageError(f"malformed URI {uri!r}", hint="use e.g. qemu+ssh://user@host/system") from None
    if not u.scheme or not u.hostname:
        if u.scheme and u.scheme.split("+")[0] in ("qemu", "test"):
            return None
        raise UsageError(f"malformed URI {uri!r}", hint="use e.g. qemu+ssh://user@host/system")
    transport = u.scheme.split("+", 1)[1] if "+" in u.scheme else "tls"
    if transport not in ("ssh", "libssh", "libssh2"):
        raise UsageError(f"enumerate cannot scan over {u.scheme}:// ({uri})",
                         hint="ENUMERATE reads the conf files over ssh: use qemu+ssh://[user@]host/system")
    host = u.hostname
    if host.startswith("-"):
        raise UsageError(f"bad host name {host!r} in {uri!r}", hint="use a DNS name or an IP address")
    return Target(host=host, user=u.username or None, port=port, raw=uri)


def parse_targets(words: Sequence[str], groups: Sequence[str] = ()) -> List[Target]:
    """Target words (``user@host``, ``host(opts)``, ``a,b``, group names) and explicit groups
    -> targets, first global ``(opts)`` applied to all, duplicates removed (order kept)."""
    words = list(words)
    global_ctx = None
    if words and words[0].startswith("(") and words[0].endswith(")"):
        global_ctx = words.pop(0)[1:-1]
    out: List[Target] = []
    # superposition, last wins: <member opts> <global opts> <opts given at the word>
    for g in groups:
        out.extend(apply_context(t, global_ctx) for t in expand_group(g))
    for part in _attach_contexts([p for w in words for p in _split_words(w)]):
        hostpart, ctx = _split_context(part)
        for t in expand_word(hostpart):
            out.append(apply_context(apply_context(t, global_ctx), ctx))
    seen, uniq = set(), []
    for t in out:
        key = (t.host, t.user, t.port, t.transport, t.uri, t.stack)
        if key not in seen:
            seen.add(key)
            uniq.append(t)
    return uniq


# ---------------------------------------------------------------------------
# URIs and ssh
# ---------------------------------------------------------------------------

def target_uri(t: Target, *, transport: str = "ssh", local_uri: Optional[str] = None) -> str:
    """The libvirt URI for ``t`` (``local_uri`` for a local target)."""
    if t.uri:
        return t.uri
    if t.is_local:
        return default_uri(local_uri)
    tr = check_transport(t.transport or transport)
    auth = f"{quote(t.user)}@" if t.user else ""
    host = f"[{t.host}]" if ":" in t.host else t.host
    port = f":{t.port}" if t.port else ""
    params = []
    if tr in ("ssh", "libssh", "libssh2"):
        if t.keyfile:
            params.append("keyfile=" + quote(t.keyfile, safe="/"))
        if t.no_verify:
            params.append("no_verify=1")
        if tr == "ssh":
            if t.ssh_command:
                params.append("command=" + quote(t.ssh_command, safe="/"))
            params.append("no_tty=1")  # never prompt for a password (BatchMode-like)
    q = ("?" + "&".join(params)) if params else ""
    return f"qemu+{tr}://{auth}{host}{port}/system{q}"


def ssh_target_of(t: Target) -> Optional[Target]:
    """The ssh destination that reaches ``t``'s filesystem, or None when it is this host
    (a local target, or a ``--connect`` URI without a host part)."""
    if t.uri:
        from urllib.parse import parse_qs, urlsplit

        u = urlsplit(t.uri)
        if not u.hostname or u.hostname in LOCAL_NAMES:
            return None
        q = parse_qs(u.query)
        ssh_port = u.port if "ssh" in u.scheme else None
        return Target(host=u.hostname, user=u.username, port=ssh_port,
                      keyfile=(q.get("keyfile") or [t.keyfile])[0],
                      no_verify=t.no_verify or (q.get("no_verify") or ["0"])[0] == "1",
                      ssh_command=(q.get("command") or [t.ssh_command])[0],
                      remote_cmd=t.remote_cmd, raw=t.raw)
    return None if t.is_local else t


def ssh_argv(t: Target, command: Sequence[str]) -> List[str]:
    """ssh call running ``command`` on ``t``: BatchMode (never a password prompt)."""
    argv = [t.ssh_command or "ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={SSH_CONNECT_TIMEOUT}",
            "-o", "LogLevel=ERROR"]
    if t.no_verify:
        argv += ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
    if t.keyfile:
        argv += ["-i", t.keyfile, "-o", "IdentitiesOnly=yes"]
    if t.port:
        argv += ["-p", str(t.port)]
    argv.append("--")       # the host is never an option, whatever a group file says
    argv.append(f"{t.user}@{t.host}" if t.user else t.host)
    argv.append(" ".join(shlex.quote(c) for c in command))
    return argv


# ---------------------------------------------------------------------------
# stack addresses and the local default URI
# ---------------------------------------------------------------------------

_LEVEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+:-]*")
MAX_LEVELS = 8

def split_stack(word: str) -> Tuple[str, Tuple[str, ...]]:
    """``host[vm1][vm2]`` -> ("host", ("vm1", "vm2")); a word without ``[`` -> (word, ()).
    An IPv6 host in brackets (``[::1]:22``) is no stack: it has no name before the ``[``."""
    if "[" not in word or word.startswith("["):
        return word, ()
    i = word.index("[")
    host, rest = word[:i], word[i:]
    levels = re.findall(r"\[([^\[\]]*)\]", rest)
    if "".join(f"[{lv}]" for lv in levels) != rest or not levels:
        raise UsageError(f"malformed stack address {word!r}",
                         hint="write host[vm1][vm2]... (one VM label or UUID per bracket)")
    for lv in levels:
        if not _LEVEL.fullmatch(lv) or len(lv) > 64:
            raise UsageError(f"bad VM {lv!r} in stack address {word!r}",
                             hint="each level is a VM label, domain name or UUID")
    if len(levels) > MAX_LEVELS:
        raise UsageError(f"stack address {word!r} is deeper than {MAX_LEVELS} levels",
                         hint="check the address")
    return host, tuple(levels)
