"""``ctys-qemu``: the ctys command line for the QEMU plugin, mapped onto the library.

    ctys-qemu [-t QEMU] -a ACTION[=SUBOPTS] [options] [--] ['(global opts)'] [targets...]

Actions: CREATE, CANCEL, LIST, ENUMERATE, INFO.  Suboption parsing lives in
``ctys_libvirt.ctys``; this module only maps specs onto backends / inventory calls and
prints.  Targets: ``[user@]host``, ``host'(opts)'``, comma lists, group names (files in
``~/.ctys/groups``); no target = this host.  Per-host failures are reported on stderr (one
line each) and the rest goes on; the exit code is the highest error code seen.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import time
from typing import List, Optional, Sequence

PROG = "ctys-qemu"


def _err(msg: str) -> None:
    print(f"{PROG}: error: {msg}", file=sys.stderr)


_QUIET = False
_warned: set = set()


def _warn(msg: str) -> None:
    """One stderr line per distinct warning in this run; --quiet silences them."""
    if _QUIET or msg in _warned:
        return
    _warned.add(msg)
    print(f"{PROG}: warning: {msg}", file=sys.stderr)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 1 (usage), no usage dump
        _err(f"{message} (see '{PROG} --help')")
        raise SystemExit(1)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="ctys-style front end of ctys-libvirt for QEMU VMs.",
        epilog="""Actions and suboptions (keys case-insensitive; ',,' = literal ',', '::' = literal ':',
'%' separates values, '%%' = literal '%'):
  CREATE=<address>[,CONNECT|REUSE|RECONNECT|RESUME][,CONSOLE:VNC[:<port>]|SDL|CLI|CLI0|XTERM|GTERM|EMACS*|NONE]
         [,BOOTMODE:<mode>[%<path>]][,INSTMODE[:<src>%<srcpath>%<tgt>%<tgtpath>%<stage>]]
         [,KERNEL:<img>[%<initrd>[%<append>]]][,ARGSADD:S%<args>][,USER:<u>][,WAITC:<s>][,WAITS:<s>]
         [,PING:ON|OFF|<n>%<sleep>][,SSHPING:..]
  CANCEL=<address>{,<address>}|ALL[,POWEROFF[:<delay>]|FORCE|RESET|REBOOT|PAUSE|SUSPEND|RESUME][,TIMEOUT:<s>]
  LIST[=MACHINE|MAXKEY|TERSE|TITLE[IDX[ASC]]|<field keys>|SERVER|S|CLIENT[S]|C|BOTH|B
       |TAB_TCP[:<widths>]|TAB_GEN|TAB:<i|key>[_<title>[_<w>[_L|_B]]]%..|SORT[:ALL|EACH][%UNIQUE][%R][%<n>]]
       (no field key: TAB_TCP with the ID column)
  ENUMERATE[=MACHINE|TERSE|TITLE..|<field keys>|B:<dir>%<dir>|MATCHVSTAT:<states>|TAB_GEN:..|SORT..]
  INFO[=MACHINE]
Addresses: L|LABEL, U|UUID, M|MAC, F|FILENAME, B|BASEPATH, I|ID|P|PNAME, T|TCP, DR|DBRECORD.
Exit codes: 0 ok, 1 usage, 2 not found/ambiguous, 3 conf error, 4 backend/host error, 5 timeout.
Accepted and ignored (ctys options without meaning here): -A -b -C -d -D -E -f -F -j -k -L -O -s
-S -w -W -x -y -Y -z -Z.""",
    )
    p.add_argument("-a", dest="action", action="append", metavar="ACTION[=SUBOPTS]",
                   help="CREATE, CANCEL, LIST, ENUMERATE, INFO (given twice: the last one is used)")
    p.add_argument("-t", dest="type", metavar="TYPE", help="session type (only QEMU)")
    p.add_argument("-T", dest="types", metavar="TYPES", help="plugin preload list (must include QEMU or ALL)")
    p.add_argument("-X", dest="terse", action="store_true", help="terse machine output")
    p.add_argument("-c", dest="cache", metavar="MODE", help="inventory use: ON[,BOTH|LOCAL|REMOTE][,ONLY] | OFF")
    p.add_argument("-p", dest="dbdir", metavar="DBDIR", help="inventory DB directory (holds inventory.sqlite)")
    p.add_argument("-l", dest="user", metavar="USER", help="remote login user for targets without user@")
    p.add_argument("-b", dest="bflag", metavar="MODE", help="(accepted for ctys compatibility; ignored)")
    p.add_argument("-z", dest="zflag", metavar="PTY", help="(accepted for ctys compatibility; ignored)")
    p.add_argument("-d", dest="debug", metavar="LEVEL", help="(accepted for ctys compatibility; ignored)")
    p.add_argument("-H", dest="help_topic", nargs="?", const="", metavar="TOPIC",
                   help="ctys help: prints this help (man|html|pdf|list... all give the same text)")
    p.add_argument("-V", "-v", "--version", dest="version", action="store_true",
                   help="print the version (with -X only the number)")
    # ctys-libvirt's global options, same names and meaning (-v stays ctys's version flag)
    p.add_argument("--print-completion", metavar="SHELL", choices=("bash", "zsh", "fish"),
                   help="print the completion script for bash, zsh or fish (e.g. "
                        "`ctys-qemu --print-completion bash > /etc/bash_completion.d/ctys-qemu`)")
    p.add_argument("--verbose", action="count", default=0, help="log what is done to stderr")
    p.add_argument("-q", "--quiet", action="store_true", help="no warnings on stderr (errors still are)")
    p.add_argument("--debug", action="store_true",
                   help="debug logging; failures show the traceback (same as CTYS_DEBUG=1)")
    p.add_argument("-n", dest="dryrun", action="store_true",
                   help="dry run: check the call (suboptions, targets, address) and act on nothing")
    p.add_argument("-M", dest="message", metavar="TEXT", help="print TEXT before the output")
    p.add_argument("-P", dest="default_db", action="store_true", help="use the default inventory DB")
    p.add_argument("--allow-argsadd", dest="allow_argsadd", action="append", default=[], metavar="OPT",
                   help="allow this host-reaching ARGSADD option (e.g. -chardev, exec:) for a trusted "
                        "conf and ARGSADD:S%%... (repeatable; see docs/security.md)")
    p.add_argument("-r", dest="resolution", metavar="XxY", help="not supported for QEMU (rejected)")
    # ctys generic options that have no meaning here: accepted (so ctys command lines and group
    # files work unchanged) and ignored.
    p.add_argument("-g", dest="geometry", metavar="WxH+X+Y",
                   help="CREATE: the client window's geometry (pixels for VNC, characters for terminals)")
    for opt, meta in (("-A", "0|1"), ("-C", "MODE"), ("-D", "DISPLAY"), ("-F", "VERSION"),
                      ("-j", "JOBID"), ("-k", "REUSE"), ("-L", "LOCATION"),
                      ("-O", "OPTS"), ("-s", "SCOPE"), ("-S", "SIGNALS"), ("-W", "WORKSPACE"),
                      ("-x", "MODE"), ("-Z", "MODE")):
        p.add_argument(opt, dest="ignored_" + opt[1], metavar=meta, help=argparse.SUPPRESS)
    for opt in ("-E", "-f", "-w", "-y", "-Y"):
        p.add_argument(opt, dest="ignored_" + opt[1], action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--group", dest="groups", action="append", default=[], metavar="NAME",
                   help="add the members of group NAME (file in ~/.ctys/groups or $CTYS_GROUPS_PATH)")
    p.add_argument("--connect", metavar="URI", help="libvirt URI to use instead of targets")
    p.add_argument("--transport", default="ssh", metavar="T",
                   help="libvirt transport for remote targets: ssh (default), tcp, tls, libssh, libssh2")
    p.add_argument("--base", dest="bases", action="append", default=[], metavar="DIR",
                   help="base path for address resolution and ENUMERATE (repeatable; default $HOME)")
    p.add_argument("--db", metavar="FILE", help="inventory DB file")
    p.add_argument("--backend", default="auto", help="auto | libvirt | direct (local target only)")
    p.add_argument("--remote-cmd", metavar="CMD", help="ctys-libvirt command on remote hosts (ENUMERATE)")
    p.add_argument("--timeout", type=float, default=60.0, help="CREATE: seconds to wait for running")
    p.add_argument("targets", nargs="*", help="[user@]host, host'(opts)', group names")
    return p


@dataclasses.dataclass
class Ctx:
    args: argparse.Namespace
    targets: list
    db: Optional[str]
    use_db: bool
    scan_fs: bool
    terse: bool


# ---------------------------------------------------------------------------
# backends per target
# ---------------------------------------------------------------------------

def _backend(ctx: Ctx, t, vm=None):
    from ctys_libvirt.ctys.targets import target_uri

    a = ctx.args
    if t.stack:     # host[vm1][vm2]: the hypervisor inside the last VM, walked level by level
        from ctys_libvirt.backends.libvirt import LibvirtBackend
        from ctys_libvirt.stack.address import stack_uri

        local = a.connect if t.base.is_local else None
        return LibvirtBackend(stack_uri(t, transport=a.transport, local_uri=local).uri)
    if t.is_local and not t.uri:
        from ctys_libvirt.backends.select import _conf_needs_direct, fallback_refusal, open_backend
        from ctys_libvirt.errors import LibvirtUnavailable

        kind = (a.backend or "auto").lower()
        if kind == "auto" and not _conf_needs_direct(vm):
            # say so when libvirtd is down and the VMs of the direct backend are used instead
            from ctys_libvirt.backends.libvirt import LibvirtBackend

            try:
                be = LibvirtBackend(a.connect)
            except LibvirtUnavailable as exc:
                if fallback_refusal(a.connect):
                    raise
                _warn(f"{exc.message}; using the direct backend (--backend libvirt to insist)")
                kind = "direct"
            else:
                from ctys_libvirt.backends.select import libvirt_emulator, startercall_missing, startercall_note

                if startercall_missing(vm):
                    _warn(startercall_note(vm, libvirt_emulator(be.conn, vm)))
                return be
        return open_backend(kind, uri=a.connect, vm=vm)
    from ctys_libvirt.backends.libvirt import LibvirtBackend

    return LibvirtBackend(target_uri(t, transport=a.transport))


def _apply_user(ctx: Ctx, user: Optional[str]) -> None:
    """USER:<user> is the account on the target: remote targets without user@ log in as it."""
    if user:
        ctx.targets = [dataclasses.replace(t, user=user) if not t.is_local and not t.user and not t.uri
                       else t for t in ctx.targets]


def _active(info) -> bool:
    return info is not None and info.state not in ("shutoff", "nostate", "gone")


# ---------------------------------------------------------------------------
# CREATE
# ---------------------------------------------------------------------------

def _poll(what: str, label: str, spec, probe) -> None:
    from ctys_libvirt.errors import CtysTimeout

    for _ in range(spec.count):
        if probe():
            return
        time.sleep(spec.sleep)
    raise CtysTimeout(f"{what} of VM {label} did not succeed after {spec.count} tries",
                      hint=f"check the guest network, or drop {what}")


def _ping(ip: str) -> bool:
    try:
        return subprocess.run(["ping", "-c", "1", "-W", "1", ip], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode == 0
    except FileNotFoundError:
        import socket

        try:  # no ping binary: a TCP connect attempt (refused also proves the host is up)
            socket.create_connection((ip, 22), timeout=1).close()
            return True
        except ConnectionRefusedError:
            return True
        except OSError:
            return False


def _sshping(ip: str, user: Optional[str]) -> bool:
    dest = f"{user}@{ip}" if user else ip
    return subprocess.run(["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=3", dest, "true"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          stdin=subprocess.DEVNULL).returncode == 0


def _connect_info(info) -> str:
    parts = [f"{info.label or info.name}: {info.state}"]
    if info.vnc_display is not None:
        parts.append(f"VNC :{info.vnc_display} (port {info.vnc_port})")
    if info.extra.get("sport"):
        parts.append(f"serial {info.extra['sport']}")
    return ", ".join(parts)


def do_create(ctx: Ctx, sub: str) -> int:
    from ctys_libvirt.conf import load_conf
    from ctys_libvirt.errors import AlreadyRunning, NotRunning, UsageError
    from ctys_libvirt.inventory.address import resolve_address
    from ctys_libvirt.model import CancelMode, ConsoleType, CreateOptions
    from ctys_libvirt.ctys.actions import parse_create
    from ctys_libvirt.translate.request import make_request

    spec = parse_create(sub)
    for w in spec.warnings:
        _warn(w)
    if ctx.args.geometry is not None:
        from ctys_libvirt.backends.console_client import parse_geometry

        parse_geometry(ctx.args.geometry)      # a usage error before any conf is looked for
    # bad suboption values are usage errors before any conf is looked for
    req = make_request(bootmode=spec.bootmode, instmode=spec.instmode, kernel=spec.kernel,
                       console=spec.console, argsadd=spec.argsadd,
                       allow_argsadd=ctx.args.allow_argsadd or ())
    found: List[str] = []
    try:
        conf = resolve_address(spec.address, ctx.args.bases, db=ctx.db, use_db=ctx.use_db,
                               scan_fs=ctx.scan_fs, warnings=found)
    finally:
        for w in found:
            _warn(w)
    vm = load_conf(conf)
    if spec.address.label and vm.label != spec.address.label:
        raise UsageError(f'Different LABELs detected:"{spec.address.label}" == "{vm.label}"',
                         hint=f"{conf} has LABEL {vm.label}")
    _apply_user(ctx, spec.user)
    opts = CreateOptions(timeout=ctx.args.timeout)
    if req.console is ConsoleType.SDL and os.environ.get("DISPLAY"):
        opts.sdl_display, opts.sdl_xauth = os.environ["DISPLAY"], os.environ.get("XAUTHORITY") or None

    def one(t):
        be = _backend(ctx, t, vm)
        try:
            info = be.lookup(vm.label)
            host = t.display
            if _active(info):
                if spec.attach in ("CONNECT", "REUSE", "RECONNECT"):
                    if spec.waitc:
                        time.sleep(spec.waitc)
                    lines = [f"{spec.attach} {host}: {_connect_info(info)}"]
                    sys.stdout.flush()
                    _client(ctx, t, be, info.name, req.console, info.vnc_port,
                            reconnect=spec.attach == "RECONNECT", attach=True, lines=lines)
                    return lines
                if spec.attach == "RESUME" and info.state == "paused":
                    r = be.cancel(vm.label, CancelMode.RESUME, ctx.args.timeout)
                    return [f"RESUME {host}: {r.name}: {r.action}; now {r.state}"]
                raise AlreadyRunning(f"Session already exists ID={conf} - LABEL={vm.label}",
                                     hint='Choose "REUSE" if you want connect-only when existing')
            if spec.attach in ("CONNECT", "RECONNECT"):
                raise NotRunning(f"CONNECT and RECONNECT require a running server: {vm.label} "
                                 f"is {info.state if info else 'not defined'} on {host}",
                                 hint="use REUSE to start it if needed")
            if spec.attach == "RESUME" and info is not None and getattr(be, "name", "") == "libvirt":
                try:
                    r = be.cancel(vm.label, CancelMode.RESUME, ctx.args.timeout)
                    return [f"RESUME {host}: {r.name}: {r.action}; now {r.state}"]
                except NotRunning:
                    pass  # nothing saved: start normally
            if t.is_local and not t.uri:
                from ctys_libvirt.cli.clients import preflight

                preflight(vm.label, req.console)     # a missing client program: before any start
            res = be.create(vm, req, opts)
            lines = [f"CREATE {host}: {res.name}: {res.state} (UUID {res.uuid}, backend {res.backend}"
                     + (f", pid {res.pid}" if res.pid else "") + ")"]
            lines += [f"  {m}" for m in res.messages]
            from ctys_libvirt.translate.plan import is_uuid_note

            for w in res.warnings:      # the generated-UUID fact: only when the definition is written
                if not (is_uuid_note(w) and res.backend == "libvirt" and not res.defined):
                    _warn(w)
            if spec.waits:
                time.sleep(spec.waits)
            if spec.ping.enabled or spec.sshping.enabled:
                if not vm.ip:
                    raise UsageError(f"Missing the TCP/IP address of VM:{vm.label}",
                                     hint="set #@#IP0 in the conf to use PING/SSHPING")
                if spec.ping.enabled:
                    _poll("PING", vm.label, spec.ping, lambda: _ping(vm.ip))
                if spec.sshping.enabled:
                    _poll("SSHPING", vm.label, spec.sshping, lambda: _sshping(vm.ip, spec.user))
            if req.console is ConsoleType.CLI0 and getattr(be, "name", "") == "libvirt":
                for line in lines:
                    print(line)
                lines = []
                sys.stdout.flush()
                _cli0(be, res.name)
            _client(ctx, t, be, res.name, req.console, res.vnc_port, lines=lines)
            return lines
        finally:
            be.close()

    return _per_target(ctx, one)


def _client(ctx: Ctx, t, be, name: str, console, vnc_port, *, reconnect: bool = False,
            attach: bool = False, lines: List[str]) -> None:
    """The console's client window (VNC viewer, xterm, ...) for a VM on this host; remote
    targets only get the access details (their 127.0.0.1 ports are not ours)."""
    from ctys_libvirt.cli.clients import launch

    if not t.is_local or t.uri:
        return
    for line in lines:          # the CREATE/CONNECT line before the client's own line
        print(line)
    lines.clear()
    sys.stdout.flush()
    # CREATE: the VM runs even if its client dies at once (a warning); CONNECT & co: an error
    launch(be, name, console, vnc_port, ctx.args.geometry, reconnect=reconnect,
           strict=attach, warn_with=_warn)


def _cli0(be, name: str) -> None:
    """CLI0: serial console in the foreground; the VM is destroyed when it ends."""
    from ctys_libvirt.backends import console_stream as console
    from ctys_libvirt.model import CancelMode

    try:
        dom = be.require(name)
        print(f"Connected to {name} (escape character is ^])", file=sys.stderr)
        reason = console.attach(be.conn, dom, 0 if sys.stdin else None, 1)
        print(f"\r\n[{name}: console {reason}]", file=sys.stderr)
    finally:
        if be.domain(name) is not None and be.is_active(be.require(name)):
            be.cancel(name, CancelMode.FORCE)
            print(f"{name}: destroyed (CLI0 console ended)", file=sys.stderr)


# ---------------------------------------------------------------------------
# CANCEL
# ---------------------------------------------------------------------------

def do_cancel(ctx: Ctx, sub: str) -> int:
    from ctys_libvirt.errors import AmbiguousAddressError, NotFoundError, NotRunning, UsageError
    from ctys_libvirt.inventory.address import match_domains, resolve_address
    from ctys_libvirt.inventory.scan import read_header
    from ctys_libvirt.model import CancelMode
    from ctys_libvirt.ctys.actions import parse_cancel

    spec = parse_cancel(sub)
    for w in spec.warnings:
        _warn(w)
    _apply_user(ctx, spec.user)
    wait = spec.wait_seconds
    if spec.method == "POWEROFF":
        mode = CancelMode.FORCE if (spec.delay == 0 or spec.timeout == 0) else CancelMode.POWEROFF
    else:
        mode = CancelMode(spec.method)
    bases = list(spec.basepaths) or ctx.args.bases
    from ctys_libvirt.stack.cancel import StackOptions, cancel_stack
    from ctys_libvirt.stack.inside import StackSite

    # STACK (the default) propagates into the VMs inside first; FORCE skips that
    stack = StackOptions(propagate=not spec.force, site=StackSite.from_env())
    if spec.include_self:
        for t in ctx.targets:
            if not t.stack:
                raise UsageError(f"SELF on {t.display}: halting a physical host is not supported",
                                 hint="SELF acts on a VM: give a stack target host[vm1]; shut "
                                      "hosts down with their own tools")

    def cancel_self(t) -> List[str]:
        """SELF: the VM of a stack target itself, on the hypervisor one level down."""
        below = dataclasses.replace(t, stack=t.stack[:-1])
        be = _backend(ctx, below)
        try:
            from ctys_libvirt.stack.address import find_vm

            info = find_vm(be, t.stack[-1])
            if info is None or not _active(info):
                raise NotRunning(f"SELF: VM:{t.stack[-1]} is not running on {below.display}",
                                 hint="nothing to cancel")
            r = cancel_stack(be, info.name, mode, float(wait), stack)
            return _cancel_lines(spec.method, below.display, r)
        finally:
            be.close()

    # conf paths for P:/I:/DR: parts (and labels of VMs given only by F:/U: etc. if no domain matches)
    def conf_of(addr) -> Optional[str]:
        if addr.pname or addr.id or addr.dbrecord is not None:
            found: List[str] = []
            try:
                return str(resolve_address(addr, bases, db=ctx.db, use_db=ctx.use_db,
                                           scan_fs=ctx.scan_fs, warnings=found))
            finally:
                for w in found:
                    _warn(w)
        return None

    def one(t):
        be = _backend(ctx, t)
        try:
            infos = be.list(include_inactive=True)
            chosen = []
            if spec.all:
                chosen = [i for i in infos if _active(i) and i.ours]
            for addr in spec.addresses:
                path = conf_of(addr)
                hits = match_domains(infos, addr, path)
                if not hits and path is None and t.is_local:
                    # an address only the conf knows (e.g. M: of a VM whose domain has no MAC)
                    try:
                        p = resolve_address(addr, bases, db=ctx.db, use_db=ctx.use_db,
                                            scan_fs=ctx.scan_fs)
                        hdr = read_header(p)
                        lbl = hdr.label if hdr else None
                        hits = [i for i in infos if (i.label or i.name) == lbl]
                    except NotFoundError:
                        hits = []
                if not hits:
                    raise NotFoundError(f"no VM matches {addr.describe()} on {t.display}",
                                        hint="see '-a LIST' for the running VMs")
                if len(hits) > 1:
                    names = sorted(i.name for i in hits)
                    raise AmbiguousAddressError(
                        f"{addr.describe()} is ambiguous on {t.display}: {', '.join(names)}",
                        names, hint="add U: or P: to pick one")
                chosen.append(hits[0])
            lines = []
            done = set()
            for info in chosen:
                if info.name in done:
                    continue
                done.add(info.name)
                if spec.scope in ("CLIENT", "BOTH"):
                    from ctys_libvirt.backends.console_client import end_clients

                    ended = end_clients(info.label or info.name) if t.is_local and not t.uri else []
                    lines.append(f"CANCEL-CLIENT {t.display}: {info.name}: "
                                 + (f"ended client(s), pid {', '.join(map(str, ended))}" if ended
                                    else "no client of ours"))
                    if spec.scope == "CLIENT":
                        continue
                if not _active(info) and mode is not CancelMode.RESUME:
                    raise NotRunning(f"{info.name} is not running on {t.display} ({info.state})",
                                     hint="nothing to cancel")
                r = cancel_stack(be, info.name, mode, float(wait), stack)
                lines += _cancel_lines(spec.method, t.display, r)
            if spec.all and not chosen:
                lines.append(f"CANCEL {t.display}: no running VM of ours")
            if spec.include_self:
                lines += cancel_self(t)
            return lines
        finally:
            be.close()

    return _per_target(ctx, one)


def _cancel_lines(method: str, where: str, r, depth: int = 0) -> List[str]:
    """``<METHOD>-SERVER <host>: <vm>: ...`` for a VM, after those for the VMs inside it
    (deepest first, indented, ``<host>`` then being the hypervisor inside)."""
    out: List[str] = []
    for child in r.inner:
        out += _cancel_lines(method, child.uri or "?", child, depth + 1)
    pad = "    " * depth
    out.append(f"{pad}{method}-SERVER {where}: {r.name}: {r.action}; now {r.state} ({r.seconds:.2f}s)")
    out += [f"{pad}  {m}" for m in r.messages]
    return out


# ---------------------------------------------------------------------------
# LIST / ENUMERATE / INFO
# ---------------------------------------------------------------------------

def _render(records, spec, names, default_cols, terse: bool) -> str:
    from ctys_libvirt.inventory import output

    if terse and not (spec.terse or spec.machine or spec.table):
        spec.terse = True
    return output.render_ctys(records, spec, names, default_cols)


def do_list(ctx: Ctx, sub: str) -> int:
    from ctys_libvirt.ctys import records as listrec
    from ctys_libvirt.ctys.columns import TabColumn, parse_collector, tab_tcp_columns

    spec = parse_collector(sub, "LIST")
    if spec.pkgs and "QEMU" not in spec.pkgs and "ALL" not in spec.pkgs:
        return 0
    recs: List[List[str]] = []

    def one(t):
        be = _backend(ctx, t)
        try:
            out = []
            for info in be.list(include_inactive=False):
                if not _active(info):
                    continue
                r = listrec.list_record(info).values()
                if t.stack:
                    r[0] = t.stack[-1]      # as ctys: the machine that contains the VM
                elif t.host and not t.is_local:
                    r[0] = t.display
                out.append(r)
            return out
        finally:
            be.close()

    code = _per_target(ctx, one, collect=recs)
    if spec.site == "CLIENT" or spec.site == "TUNNEL":
        recs = []
    default = [TabColumn(1, "host", 0), TabColumn(3, "label", 0), TabColumn(4, "id", 0),
               TabColumn(8, "disp", 0), TabColumn(9, "cport", 0), TabColumn(11, "pid", 0),
               TabColumn(21, "accel", 0)]
    if not (spec.fields or spec.table or spec.machine or spec.terse or ctx.terse):
        spec.table = tab_tcp_columns(with_id=True)   # ctys: no field key -> ID + TAB_TCP
    text = _render(recs, spec, listrec.TITLES, default, ctx.terse)
    if text:
        print(text)
    return code


def do_enumerate(ctx: Ctx, sub: str) -> int:
    from ctys_libvirt.inventory.remote import enumerate_hosts
    from ctys_libvirt.ctys.enum_record import FIELD_NAMES
    from ctys_libvirt.ctys.columns import TabColumn, parse_collector

    spec = parse_collector(sub, "ENUMERATE")
    if spec.pkgs and "QEMU" not in spec.pkgs and "ALL" not in spec.pkgs:
        return 0
    bases = list(spec.basepaths) or ctx.args.bases
    targets = ctx.targets
    from ctys_libvirt.inventory.collect import default_cache_dir, require_bases

    if all(t.is_local for t in targets):     # as `ctys-libvirt enumerate`
        require_bases(bases, hint="give existing directories (or .ctys files) with B:<dir>")
    if ctx.args.remote_cmd:
        targets = [dataclasses.replace(t, remote_cmd=t.remote_cmd or ctx.args.remote_cmd) for t in targets]

    res = enumerate_hosts(targets, bases=bases, matchvstat=spec.matchvstat,
                          cache_dir=default_cache_dir())
    for w in res.warnings:
        _warn(w)
    for host, msg in res.failures:
        _err(f"{host}: {msg}")
    default = [TabColumn(1, "host", 0), TabColumn(3, "label", 0), TabColumn(2, "type", 0),
               TabColumn(4, "id", 0)]
    text = _render(res.records, spec, FIELD_NAMES, default, ctx.terse)
    if text:
        print(text)
    return res.exit_code


def do_info(ctx: Ctx, sub: str) -> int:
    from ctys_libvirt.errors import UsageError

    from ctys_libvirt.ctys.grammar import split_subopts

    terse = ctx.terse
    for so in split_subopts(sub):
        if so.key in ("MACHINE", "TERSE") and so.is_flag:   # qemu-plugin-runtime.md §6.1
            terse = True
        else:
            raise UsageError(f"Unknown sub-opts for INFO:{so.raw}",
                             hint="write -a INFO, or -a INFO=MACHINE for the ';' record")

    def one(t):
        from ctys_libvirt.backends.libvirt import LibvirtBackend
        from ctys_libvirt.ctys.targets import target_uri

        uri = ctx.args.connect if (t.is_local and ctx.args.connect) else target_uri(t, transport=ctx.args.transport)
        be = LibvirtBackend(uri)
        try:
            f = be.info()
        finally:
            be.close()
        accel = "KVM" if f.get("kvm_usable") else "QEMU"
        if terse:
            # <account>;QEMU;<accelerator>;<plugin version>;<MAGIC>;<state>;<prerequisites>
            from ctys_libvirt import __version__
            from ctys_libvirt.qemu.probe import magic_for

            try:
                ver = tuple(int(x) for x in str(f.get("hypervisor_version", "")).split(".")[:3])
                magic = magic_for((ver + (0, 0, 0))[:3]) if ver else "QEMU_GENERIC"
            except ValueError:
                magic = "QEMU_GENERIC"
            account = f"{t.user}@{t.display}" if t.user else t.display
            return [";".join([account, "QEMU", accel, __version__, magic, "ENABLED", f.get("uri", "")])]
        d = f.get("domains", {})
        return [f"QEMU on {t.display} ({f.get('hostname', '')}):",
                f"  URI:               {f.get('uri', '')}",
                f"  libvirt version:   {f.get('libvirt_version', '')}",
                f"  QEMU version:      {f.get('hypervisor_version', '')}",
                f"  Accelerator:       {accel}",
                f"  Operational State: ENABLED",
                f"  Domains:           {d.get('total', 0)} ({d.get('active', 0)} active, {d.get('ours', 0)} ours)"]

    return _per_target(ctx, one)


# ---------------------------------------------------------------------------
# per-target loop
# ---------------------------------------------------------------------------

def _per_target(ctx: Ctx, fn, collect: Optional[list] = None) -> int:
    """Run ``fn`` per target (concurrently for several); print lines or collect records;
    one stderr line per failed host; return the highest exit code."""
    from ctys_libvirt.util.fanout import fan_out

    code = 0
    many = len(ctx.targets) > 1
    for t, out, err in fan_out(ctx.targets, fn):
        if err is not None:
            _err(f"{t.display}: {err.one_line()}" if many or not t.is_local else err.one_line())
            code = max(code, err.exit_code)
            continue
        if collect is not None:
            collect.extend(out or [])
        else:
            for line in out or []:
                print(line)
    return code


def _make_ctx(args) -> Ctx:
    from ctys_libvirt.errors import UsageError
    from ctys_libvirt.ctys.targets import Target, check_transport, parse_targets

    check_transport(args.transport)
    targets = parse_targets(args.targets, args.groups)
    if args.user:
        targets = [t if t.user or t.is_local else dataclasses.replace(t, user=args.user) for t in targets]
    if args.connect:
        if targets:
            raise UsageError("--connect and targets exclude each other",
                             hint="give either --connect URI or [user@]host targets")
        targets = [Target(host="", uri=args.connect, raw=args.connect)]
    if not targets:
        targets = [Target(host="localhost", raw="localhost")]
    use_db, scan_fs = True, True
    if args.cache:
        words = {w.strip().upper() for w in args.cache.split(",") if w.strip()}
        bad = words - {"ON", "OFF", "BOTH", "LOCAL", "REMOTE", "ONLY", "0", "1", "2", "3"}
        if bad:
            raise UsageError(f"-c {args.cache}: unknown cache mode {', '.join(sorted(bad))}",
                             hint="-c ON[,BOTH|LOCAL|REMOTE][,ONLY] | OFF")
        if "OFF" in words or "0" in words:
            use_db = False
        if "ONLY" in words:
            scan_fs = False
    db = args.db
    if args.dbdir and not db:
        db = os.path.join(os.path.expanduser(args.dbdir), "inventory.sqlite")
    return Ctx(args=args, targets=targets, db=db, use_db=use_db, scan_fs=scan_fs, terse=args.terse)


def _dry_run(ctx: Ctx, action: str, sub: str) -> int:
    """-n: validate the suboptions (and, for CREATE, resolve the conf) and say what would run."""
    from ctys_libvirt.ctys.actions import parse_cancel, parse_create
    from ctys_libvirt.ctys.columns import parse_collector

    what = action
    if action == "CREATE":
        from ctys_libvirt.inventory.address import resolve_address
        from ctys_libvirt.translate.request import make_request

        spec = parse_create(sub)
        make_request(bootmode=spec.bootmode, instmode=spec.instmode, kernel=spec.kernel,
                     console=spec.console, argsadd=spec.argsadd)
        conf = resolve_address(spec.address, ctx.args.bases, db=ctx.db, use_db=ctx.use_db,
                               scan_fs=ctx.scan_fs)
        what = f"CREATE {conf}"
    elif action == "CANCEL":
        spec = parse_cancel(sub)
        what = "CANCEL " + (" ".join(a.describe() for a in spec.addresses) or "ALL") + f" ({spec.method})"
    elif action in ("LIST", "ENUMERATE"):
        parse_collector(sub, action)
    print(f"dry run (-n): {what} on {', '.join(t.display for t in ctx.targets)}: nothing done")
    return 0


def do_isactive(ctx: Ctx, sub: str) -> int:
    """ISACTIVE=<id>: ``ISACTIVE(QEMU,<id>)=0`` when the VM runs, ``=1`` when not (ctys
    prints 0 for running).  <id> may carry a ``KEY:`` prefix; the part after the first
    ':' names the domain (name, UUID) or its conf path."""
    from ctys_libvirt.errors import UsageError

    if not sub:
        raise UsageError("ISACTIVE needs an id", hint="write -a ISACTIVE=<label|uuid|conf path>")
    ident = sub.split(":", 1)[1] if ":" in sub else sub
    for t in ctx.targets:
        be = _backend(ctx, t)
        try:
            info = be.lookup(ident)
            if info is None and ident.endswith(".ctys"):
                from ctys_libvirt.inventory.scan import read_header

                try:
                    hdr = read_header(ident)
                except OSError:
                    hdr = None
                label = getattr(hdr, "label", None) if hdr is not None else None
                info = be.lookup(label) if label else None
            active = info is not None and info.state in ("running", "paused", "blocked", "shutdown")
        finally:
            be.close()
        print(f"ISACTIVE(QEMU,{sub})={0 if active else 1}")
    return 0


ACTIONS = {"CREATE": do_create, "CANCEL": do_cancel, "LIST": do_list, "ENUMERATE": do_enumerate,
           "INFO": do_info, "ISACTIVE": do_isactive}


def _glue_allow(argv: List[str]) -> List[str]:
    """``--allow-argsadd -chardev``: its value is an option name, which argparse would take
    for an option of ours; glue it on as ``--allow-argsadd=-chardev``."""
    out: List[str] = []
    i = 0
    while i < len(argv):
        if argv[i] == "--":
            return out + argv[i:]
        if argv[i] == "--allow-argsadd" and i + 1 < len(argv):
            out.append(f"--allow-argsadd={argv[i + 1]}")
            i += 2
            continue
        out.append(argv[i])
        i += 1
    return out


def run(argv: Optional[Sequence[str]] = None) -> int:
    from ctys_libvirt.errors import CtysError, UsageError
    from ctys_libvirt.ctys.grammar import split_action

    global _QUIET
    parser = build_parser()
    args = parser.parse_args(_glue_allow(sys.argv[1:] if argv is None else list(argv)))
    _QUIET = args.quiet
    debug = args.debug or bool(os.environ.get("CTYS_DEBUG"))
    if args.verbose or debug:
        import logging

        logging.basicConfig(stream=sys.stderr, format=f"{PROG}: %(levelname)s: %(message)s",
                            level=logging.DEBUG if debug or args.verbose > 1 else logging.INFO)
    if args.help_topic is not None:
        parser.print_help()
        return 0
    if args.print_completion:
        from ctys_libvirt.cli.qemu_complete import script

        print(script(args.print_completion), end="")
        return 0
    if args.version:
        from ctys_libvirt import __version__

        print(__version__ if args.terse else f"{PROG} {__version__} (ctys 01.11 QEMU plugin syntax)")
        return 0
    if args.action and len(args.action) > 1 and len(set(args.action)) > 1:
        _warn(f"-a given {len(args.action)} times; using the last: -a {args.action[-1]}")
    args.action = args.action[-1] if args.action else None
    if args.message is not None:
        print(args.message)
    try:
        if args.resolution is not None:
            raise UsageError(f"-r {args.resolution}: the server resolution is not supported by QEMU",
                             hint="drop -r; the VNC viewer sets its own size")
        if args.type and args.type.upper() not in ("QEMU", "ALL"):
            raise UsageError(f"-t {args.type}: ctys-qemu handles only the QEMU plugin",
                             hint="use -t QEMU (or omit -t)")
        if args.types and not args.type:     # -t QEMU loads the plugin whatever -T preloads
            tl = {x.strip().upper() for x in args.types.split(",") if x.strip()}
            if not tl & {"QEMU", "ALL"}:
                raise UsageError(f"-T {args.types}: QEMU is not in the plugin list",
                                 hint="use -T QEMU or -T ALL")
        if not args.action:
            raise UsageError("missing action", hint="give -a CREATE=..., CANCEL=..., LIST, ENUMERATE or INFO")
        action, sub = split_action(args.action)
        if action not in ACTIONS:
            if action in ("SHOW", "GETCLIENTPORT"):
                raise UsageError(f"action {action} is not supported by ctys-qemu",
                                 hint="use LIST for running VMs and their ports")
            raise UsageError(f"unknown action {action!r}",
                             hint="use CREATE, CANCEL, LIST, ENUMERATE or INFO")
        ctx = _make_ctx(args)
        if args.dryrun:
            return _dry_run(ctx, action, sub)
        return ACTIONS[action](ctx, sub)
    except CtysError as exc:
        if debug:
            import traceback

            traceback.print_exc(file=sys.stderr)
        _err(exc.one_line())
        return exc.exit_code
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except BrokenPipeError:
        from ctys_libvirt.cli.common import quiet_stdout

        quiet_stdout()
        return 0
    except Exception as exc:    # a bug or an unforeseen OS condition: still one line
        if debug:
            raise
        from ctys_libvirt.cli.common import unexpected_line

        _err(unexpected_line(exc))
        return 4


def main() -> None:
    mode = os.environ.get("_CTYS_QEMU_COMPLETE")
    if mode:                        # the shell asks for completions (cli/qemu_complete.py)
        from ctys_libvirt.cli.qemu_complete import respond

        sys.exit(respond(mode))
    from ctys_libvirt.cli.common import handle_sigterm

    handle_sigterm()
    sys.exit(run())


if __name__ == "__main__":  # pragma: no cover
    main()
