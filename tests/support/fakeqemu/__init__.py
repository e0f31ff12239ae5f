"""Fake legacy QEMU binaries, generated at test time.

``make_fake(dir, key)`` writes an executable Python script named like a QEMU binary
whose ``-h`` prints ``help/qemu-<key>.txt`` (the banner and option list of that
release) and which, when run for real, records its argv (JSON lines in
``<script>.argv.jsonl``), honours ``-pidfile``/``-daemonize``, writes a boot marker
to ``-serial file:PATH`` and serves an HMP (``-monitor unix:``) and a QMP (``-qmp
unix:``) socket well enough for powerdown/quit/reset/stop/cont/migrate.

``-sandbox on,...,spawn=deny`` / ``elevateprivileges=deny`` act as QEMU's seccomp filter does:
``-daemonize``, an ``exec:`` migration or ``-runas`` under them end in SIGSYS; ``-runas USER``
drops to USER once everything is open; ``getfd`` + ``migrate fd:`` and ``-incoming fd:N``
work on passed descriptors.

``behaviour`` selects a fault: normal (ACPI powerdown exits), ignore-acpi,
ignore-all (ignores powerdown, quit and SIGTERM), no-pidfile (daemonizes but writes no
pidfile, as when something redirected it), die-at-start, hang-start, hang-help,
crash-help, garbage-help."""
from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

HELP_DIR = Path(__file__).resolve().parent / "help"
VERSIONS = sorted(p.stem[len("qemu-"):] for p in HELP_DIR.glob("qemu-*.txt"))

_SCRIPT = r'''#!__PYTHON__ -S
import json, os, shlex, signal, socket, sys, threading, time, select
HELP = __HELP__
BEHAVIOUR = __BEHAVIOUR__
LOG = __file__ + ".argv.jsonl"
argv = sys.argv
if argv[1:2] in (["-h"], ["-help"], ["--help"]):
    if BEHAVIOUR == "hang-help":
        time.sleep(3600)
    if BEHAVIOUR == "crash-help":
        os.kill(os.getpid(), signal.SIGSEGV)
    if BEHAVIOUR == "garbage-help":
        sys.stdout.write("this is not an emulator\nusage: whatever\n")
        sys.exit(0)
    sys.stdout.write(open(HELP).read())
    sys.exit(0)
with open(LOG, "a") as f:
    f.write(json.dumps(argv) + "\n")
if BEHAVIOUR == "hang-start":
    time.sleep(3600)
if BEHAVIOUR == "die-at-start":
    sys.stderr.write("qemu: could not open disk image /nonexistent: No such file or directory\n")
    sys.exit(1)
opts = {}
i = 1
while i < len(argv):
    a = argv[i]
    if a in ("-pidfile", "-monitor", "-qmp", "-serial", "-incoming", "-name", "-runas", "-sandbox"):
        opts.setdefault(a, []).append(argv[i + 1] if i + 1 < len(argv) else "")
        i += 2
        continue
    if a == "-daemonize":
        opts["-daemonize"] = True
    i += 1

def unix_path(spec):
    if spec.startswith("unix:"):
        return spec[5:].split(",")[0]
    return None

def bind(path):
    if os.path.exists(path):
        os.unlink(path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(4)
    return s

state = {"status": "running", "exit": False, "fds": {}}
pidfile = (opts.get("-pidfile") or [None])[0]
# -sandbox as real QEMU's seccomp filter: spawn=deny kills fork/exec, elevateprivileges=deny
# kills setuid (so -daemonize resp. -runas under them end in SIGSYS, "Bad system call")
SANDBOX = (opts.get("-sandbox") or [""])[-1]
SPAWN_DENY = SANDBOX.startswith("on") and "spawn=deny" in SANDBOX
ELEV_DENY = SANDBOX.startswith("on") and "elevateprivileges=deny" in SANDBOX

def sigsys():
    os.kill(os.getpid(), signal.SIGSYS)
    time.sleep(5)
    os._exit(159)

if "-daemonize" in opts and SPAWN_DENY:
    sigsys()
if "-daemonize" in opts:
    r, w = os.pipe()
    if os.fork() > 0:
        os.close(w)
        ok = os.read(r, 1)
        os._exit(0 if ok == b"1" else 1)
    os.close(r)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    fd = os.open(os.devnull, os.O_RDWR)
    for n in (0, 1, 2):
        os.dup2(fd, n)
else:
    w = None
if pidfile and BEHAVIOUR != "no-pidfile":
    with open(pidfile, "w") as f:
        f.write("%d\n" % os.getpid())
servers = []
for spec in opts.get("-monitor", []):
    p = unix_path(spec)
    if p:
        servers.append((bind(p), "hmp"))
for spec in opts.get("-qmp", []):
    p = unix_path(spec)
    if p:
        servers.append((bind(p), "qmp"))
if "-incoming" in opts:
    src = opts["-incoming"][0]
    if src.startswith("fd:"):
        data = os.read(int(src[3:]), 64)
        if not data.startswith(b"FAKE-VMSTATE"):
            sys.stderr.write("qemu: load of migration failed: Invalid argument\n")
            sys.exit(1)
    elif src.startswith("exec:") and SPAWN_DENY:
        sigsys()
    state["status"] = "paused"
for spec in opts.get("-serial", []):
    if spec.startswith("file:"):
        with open(spec[5:], "a") as f:
            f.write("FAKE SeaBIOS\r\nCTYS-GUEST-OK\r\n")
if "-runas" in opts:
    # like QEMU: every file and socket is open, then it becomes the user
    if ELEV_DENY:
        sigsys()
    import pwd
    pw = pwd.getpwnam(opts["-runas"][0])
    os.setgroups([])
    os.setgid(pw.pw_gid)
    os.setuid(pw.pw_uid)
if w is not None:
    os.write(w, b"1")
    os.close(w)

def finish(code=0):
    if pidfile:
        try:
            os.unlink(pidfile)
        except OSError:
            pass
    os._exit(code)

def on_term(signum, frame):
    if BEHAVIOUR == "ignore-all":
        return
    finish(0)

signal.signal(signal.SIGTERM, on_term)
signal.signal(signal.SIGINT, on_term)

def powerdown():
    if BEHAVIOUR == "normal":
        threading.Timer(0.05, finish).start()

def do(cmd, arg=""):
    if cmd == "system_powerdown":
        powerdown()
    elif cmd == "quit":
        if BEHAVIOUR != "ignore-all":
            return "QUIT"
    elif cmd == "stop":
        state["status"] = "paused"
    elif cmd == "cont":
        state["status"] = "running"
    elif cmd == "system_reset":
        for spec in opts.get("-serial", []):
            if spec.startswith("file:"):
                with open(spec[5:], "a") as f:
                    f.write("CTYS-GUEST-OK\r\n")
    elif cmd == "migrate":
        target = arg.strip().strip('"')
        if target.startswith("exec:") and SPAWN_DENY:
            sigsys()
        if target.startswith("fd:"):
            fd = state["fds"].pop(target[3:])
            os.write(fd, b"FAKE-VMSTATE\n")
            os.close(fd)
            state["status"] = "postmigrate"
        elif target.startswith("exec:cat > "):
            # as /bin/sh reads the exec: command line (the monitor shell-quotes the path)
            with open(shlex.split(target[len("exec:cat > "):])[0], "w") as f:
                f.write("FAKE-VMSTATE\n")
            state["status"] = "postmigrate"
    return ""

def lines(conn, fds=None):
    """The monitor client's lines, until it hangs up (descriptors passed along go to ``fds``)."""
    buf = b""
    while True:
        ch, got, _flags, _addr = socket.recv_fds(conn, 4096, 4)
        if fds is not None:
            fds.extend(got)
        if not ch:
            return
        buf += ch
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            yield line

def hmp(conn):
    conn.sendall(b"QEMU 0.9.1 monitor - type 'help' for more information\r\n(qemu) ")
    for line in lines(conn):
        text = line.decode().strip()
        conn.sendall(line + b"\r\n")
        cmd, _, arg = text.partition(" ")
        if cmd == "info" and arg == "status":
            conn.sendall(("VM status: %s\r\n" % state["status"]).encode())
        elif cmd:
            if do(cmd, arg) == "QUIT":
                conn.close()
                finish(0)
        conn.sendall(b"(qemu) ")

def qmp(conn):
    conn.sendall(b'{"QMP": {"version": {"qemu": {"micro": 0, "minor": 12, "major": 0}, "package": ""}, "capabilities": []}}\r\n')
    passed = []
    for line in lines(conn, passed):
        if line.strip():
            req = json.loads(line)
            ex = req.get("execute")
            args = req.get("arguments", {})
            if ex == "query-migrate":
                ret = {"status": "completed"} if state["status"] == "postmigrate" else {}
            elif ex == "query-status":
                ret = {"status": state["status"], "running": state["status"] == "running"}
            elif ex == "human-monitor-command":
                cmd, _, arg = args.get("command-line", "").partition(" ")
                do(cmd, arg)
                ret = ""
            elif ex == "getfd":
                state["fds"][args["fdname"]] = passed.pop(0)
                ret = {}
            elif ex == "migrate":
                do("migrate", args.get("uri", ""))
                ret = {}
            else:
                if do(ex) == "QUIT":
                    conn.sendall(b'{"return": {}}\r\n')
                    conn.close()
                    finish(0)
                ret = {}
            conn.sendall((json.dumps({"return": ret}) + "\r\n").encode())

def serve(srv, kind):
    while True:
        c, _ = srv.accept()
        threading.Thread(target=hmp if kind == "hmp" else qmp, args=(c,), daemon=True).start()

for srv, kind in servers:
    threading.Thread(target=serve, args=(srv, kind), daemon=True).start()
while True:
    time.sleep(3600)
'''


def fix_host(tmp_path: Path, monkeypatch) -> None:
    """Host facts fixed for probe/argv tests: /dev/kvm usable, /dev/kqemu absent, and a
    private probe cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    kvm = tmp_path / "kvm"
    kvm.write_bytes(b"")
    monkeypatch.setenv("CTYS_KVM_DEVICE", str(kvm))
    monkeypatch.setenv("CTYS_KQEMU_DEVICE", str(tmp_path / "kqemu-absent"))


def make_fake(directory: Path, key: str, *, behaviour: str = "normal", name: str = None,
              python: str = None) -> Path:
    """Write a fake QEMU for release ``key`` (e.g. '0.9.1', '0.12.5-qemu-kvm').  ``python``:
    its interpreter (default ours; the system one for a fake that runs as another user).

    It is run only because it passes the binary rule (security/binaries.py) by ownership:
    the suite runs as root and ``directory`` is below pytest's root-owned 0700 tmp dirs (or a
    root-owned 0755 dir under /var/tmp); the file is never made group/other-writable."""
    help_file = HELP_DIR / f"qemu-{key}.txt"
    if not help_file.exists():
        raise ValueError(f"no fake help for {key}; have {VERSIONS}")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / (name or f"qemu-{key}")
    text = (_SCRIPT.replace("__PYTHON__", python or sys.executable)
            .replace("__HELP__", json.dumps(str(help_file)))
            .replace("__BEHAVIOUR__", json.dumps(behaviour)))
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def recorded_argv(fake: Path) -> list:
    """Every argv the fake was started with (one list per run)."""
    log = Path(str(fake) + ".argv.jsonl")
    if not log.exists():
        return []
    return [json.loads(l) for l in log.read_text().splitlines() if l.strip()]
