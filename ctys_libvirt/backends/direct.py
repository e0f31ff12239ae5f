"""The direct-exec backend: run QEMU (0.9 .. current) without libvirt.

Each VM gets a private runtime dir (``qemu.runtime.RuntimeDirs``) holding the pidfile,
the monitor socket (QMP where the binary has it, else HMP), the serial log or socket,
the recorded argv (JSON), the conf sha256 and ``meta.json``.  A second start of the same
label is refused through an fcntl lock on ``lock`` whose descriptor QEMU inherits, so the
lock lives exactly as long as the QEMU process.  Stale pidfiles/sockets of a dead QEMU are
detected (lock free, pid gone or not a QEMU) and cleaned.

CANCEL POWEROFF escalates: system_powerdown -> wait TIMEOUT -> quit -> SIGTERM -> SIGKILL,
and reports the step that ended the process."""
from __future__ import annotations

import fcntl
import json
import os
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional, Tuple

from ctys_libvirt.errors import AlreadyRunning, BackendError, CtysTimeout, NotRunning, UsageError
from ctys_libvirt.model import (
    VNC_BASEPORT,
    BootRequest,
    CancelMode,
    CancelResult,
    ConsoleType,
    CreateOptions,
    CreateResult,
    DomainInfo,
    VmConfig,
)
from ctys_libvirt.qemu.runtime import RuntimeDirs, RuntimeVm, pid_alive, read_pid, runtime_base

if TYPE_CHECKING:   # imported where used: LIST (every `ctys-libvirt list`) needs neither
    from ctys_libvirt.qemu.probe import QemuProbe

QEMU_NAMES = ("qemu", "qemu-kvm", "kvm")


def _qemu_processes():
    """(pid, argv, user()) of processes whose command line mentions qemu/kvm.  Reads /proc
    directly on Linux: LIST runs this on every call, and a full psutil scan (plus its
    import) costs several times more; psutil elsewhere."""
    if not os.path.isdir("/proc/self"):  # pragma: no cover - non-Linux
        import psutil

        for p in psutil.process_iter(["pid", "cmdline", "username"]):
            cmd = p.info.get("cmdline") or []
            if cmd:
                yield p.info["pid"], cmd, (lambda u=p.info.get("username"): u)
        return
    import pwd

    def owner(pid: int):
        def get():
            try:
                return pwd.getpwuid(os.stat(f"/proc/{pid}").st_uid).pw_name
            except (OSError, KeyError):
                return None
        return get

    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                raw = f.read()
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if b"qemu" not in raw and b"kvm" not in raw:
            continue
        cmd = raw.rstrip(b"\0").decode(errors="replace").split("\0")
        pid = int(entry.name)
        yield pid, cmd, owner(pid)
STEP_WAIT = 3.0          # seconds after quit / SIGTERM before the next step


def wait_gone(pid: int, timeout: float) -> bool:
    """True once ``pid`` has exited (all its threads), False after ``timeout`` s.  A plain
    poll: a process we did not fork has no event to wait on."""
    from ctys_libvirt.util.retry import wait_for

    return bool(wait_for(lambda: not pid_alive(pid), timeout))


def _failing(path: Path) -> str:
    """QEMU's failing stderr line (not its first warning)."""
    from ctys_libvirt.qemu.stderr import failing_line

    try:
        return failing_line(path.read_text(errors="replace"))
    except OSError:
        return ""


def privileges(probe: QemuProbe, run_as: Optional[str] = None, policy: Optional[str] = None):
    """(RunAs or None, how, note or None) for a QEMU started by us.  how: 'sandbox' (we drop
    to the user at exec and QEMU runs under -sandbox without daemonizing: its seccomp filter
    forbids fork and setuid), 'runas' (binaries without -sandbox: -runas, QEMU drops after
    opening its files) or 'root' (not started as root, --run-as root, or a binary with
    neither option)."""
    from ctys_libvirt.security import runas as _runas

    who = _runas.resolve(run_as, policy)
    if who is None:
        return None, "root", "QEMU runs as root (--run-as root)" if os.geteuid() == 0 else None
    if probe.has("-sandbox") and probe.has("-qmp") and probe.version >= (0, 13, 0):
        return who, "sandbox", None
    if probe.has("-runas"):
        return who, "runas", None
    return None, "root", f"QEMU {probe.version_text} lists neither -runas nor -sandbox: it runs as root"


def _media_paths(plan, serial_log: Optional[str]) -> List[str]:
    """What QEMU opens by path: disks, kernel, initrd, the user's serial log."""
    paths = [d.path for d in plan.disks]
    if plan.kernel is not None:
        paths.append(str(plan.kernel.kernel))
        if plan.kernel.initrd is not None:
            paths.append(str(plan.kernel.initrd))
    if serial_log:
        paths.append(serial_log)
    return paths


def _find_by_runtime(rt: RuntimeDirs, argv: List[str]) -> Optional[int]:
    """The live process started with exactly ``argv`` (it names our runtime dir)."""
    for pid, cmd, _user in _qemu_processes():
        if cmd[-len(argv):] == argv and str(rt.dir) in " ".join(cmd) and pid_alive(pid):
            return pid
    return None


def _give_back(rt: RuntimeDirs) -> None:
    from ctys_libvirt.security import runas

    try:
        meta = json.loads(rt.meta_file.read_text())
    except (OSError, ValueError):
        return
    if meta.get("lent"):
        runas.give_back(meta["lent"], meta.get("run_as_uid"))


def _share_dir(rt: RuntimeDirs, who) -> None:
    """QEMU's user creates its sockets (and a SUSPEND state) in the runtime dir: group
    write for its group, sticky so it can neither remove nor rename our files there
    (meta.json, argv.json, the lock, our pidfile)."""
    gid = who.gid
    os.chown(rt.dir, 0, gid)
    os.chmod(rt.dir, 0o1770)
    base = os.stat(rt.dir.parent)
    if base.st_uid == os.geteuid() and not base.st_mode & 0o001:
        # our base dir (e.g. a private $CTYS_RUNTIME_DIR): search-only for others, so QEMU's
        # user can reach its own dir (nothing can be listed)
        os.chmod(rt.dir.parent, stat.S_IMODE(base.st_mode) | 0o011)
    for d in rt.dir.parent.parents:
        st = os.stat(d)
        if not (st.st_mode & 0o001 or (st.st_uid == who.uid and st.st_mode & 0o100)
                or (st.st_gid in who.groups and st.st_mode & 0o010)):
            raise BackendError(f"QEMU's user {who.name} cannot reach the runtime dir {rt.dir}: "
                               f"{d} is not searchable for it",
                               hint="use a runtime base under traversable directories "
                                    "($CTYS_RUNTIME_DIR), or --run-as another user")


def _write_ours(path: Path, text: str) -> None:
    """A file of ours in a runtime dir QEMU's user may write to: whatever is at the name
    (a planted symlink) is removed, never followed."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _port_free(port: int) -> bool:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


class DirectBackend:
    """Backend protocol implementation over raw QEMU processes."""

    name = "direct"

    def __init__(self, qemu: Optional[str] = None, *, base: Optional[Path] = None,
                 network: str = "user", start_timeout: float = 30.0, run_as: Optional[str] = None):
        """``run_as``: the site policy's QEMU user (security.runas; --run-as wins)."""
        self.qemu = qemu
        self.run_as = run_as
        self.base = Path(base) if base else runtime_base()
        self.network = network
        self.start_timeout = start_timeout

    # -- helpers ----------------------------------------------------------------

    def runtime(self, label: str) -> RuntimeDirs:
        return RuntimeDirs.for_label(label, self.base)

    def _dirs(self) -> List[RuntimeDirs]:
        try:
            entries = sorted(os.scandir(self.base), key=lambda e: e.name)
        except OSError:
            return []
        return [RuntimeDirs(Path(e.path)) for e in entries if e.is_dir(follow_symlinks=False)]

    def _find(self, target: str) -> Optional[RuntimeVm]:
        t = target.strip()
        if t and "/" not in t and (self.base / t).is_dir():
            return RuntimeVm(self.runtime(t))
        want = t.replace("-", "").lower()
        for rt in self._dirs():
            v = RuntimeVm(rt)
            if str(v.meta.get("uuid", "")).replace("-", "").lower() == want and want:
                return v
            if v.meta.get("conf_path") == t:
                return v
        return None

    def _clean(self, rt: RuntimeDirs, keep_state: bool = False) -> None:
        """Remove what a dead QEMU left behind (the whole dir unless a SUSPEND image stays);
        media lent to QEMU's user go back to their owners first."""
        _give_back(rt)
        if keep_state and rt.vmstate.exists():
            for p in (rt.pidfile, rt.monitor, rt.qmp, rt.serial_sock, rt.stderr_log):
                try:
                    p.unlink()
                except OSError:
                    pass
            return
        shutil.rmtree(rt.dir, ignore_errors=True)

    def pick_display(self) -> int:
        used = set()
        for rt in self._dirs():
            v = RuntimeVm(rt)
            if v.meta.get("vnc_display") is not None and v.alive():
                used.add(int(v.meta["vnc_display"]))
        for n in range(1, 100):
            if n not in used and _port_free(VNC_BASEPORT + n):
                return n
        raise BackendError("no free VNC display in 5901..5999", hint="give CONSOLE:VNC:<N>")

    # -- CREATE -----------------------------------------------------------------

    def probe_for(self, vm: VmConfig, options: Optional[CreateOptions] = None) -> QemuProbe:
        explicit = (options.qemu if options and options.qemu else None) or self.qemu
        assume = options.qemu_version if options else None
        if assume and not explicit:
            raise UsageError("--qemu-version needs --qemu PATH (the binary whose banner it states)",
                             hint="add --qemu /path/to/qemu")
        from ctys_libvirt.qemu.discovery import find_qemu

        return find_qemu(explicit=explicit, startercall=None if explicit else vm.startercall,
                         arch=vm.arch, assume_version=assume, vm_dir=str(vm.conf_dir))

    def create(self, vm: VmConfig, request: BootRequest, options: Optional[CreateOptions] = None,
               *, incoming: Optional[str] = None) -> CreateResult:
        from ctys_libvirt.host import images  # qemu-img work: not on list/cancel paths
        from ctys_libvirt.translate.argv import build_argv_result, sandbox_value
        from ctys_libvirt.host.facts import host_facts
        from ctys_libvirt.translate.plan import resolve_plan

        options = options or CreateOptions()
        plan = resolve_plan(vm, request, host_facts())
        self._refuse_shared_disks(plan)
        probe = self.probe_for(vm, options)
        from ctys_libvirt.security.argsadd import enforce

        enforce(vm, request, probe, allow=request.allow_argsadd)   # before anything is touched
        rt = self.runtime(plan.name)
        rt.create()
        lock_fd = os.open(rt.lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        acquired = False
        created = None
        serial_log, log_created = None, False
        try:
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                acquired = True
            except OSError:
                v = RuntimeVm(rt)
                raise AlreadyRunning(f"{plan.name} is already running (direct backend"
                                     + (f", pid {v.pid}" if v.pid else "") + ")",
                                     hint=f"ctys-libvirt cancel {plan.name} first") from None
            old = RuntimeVm(rt)
            if old.alive():
                raise AlreadyRunning(f"{plan.name} is already running (direct backend, pid {old.pid})",
                                     hint=f"ctys-libvirt cancel {plan.name} first")
            stale = [p.name for p in (rt.pidfile, rt.monitor, rt.qmp, rt.serial_sock) if p.exists()]
            messages: List[str] = []
            if stale:
                messages.append(f"cleaned stale {', '.join(stale)} of a dead QEMU in {rt.dir}")
            for p in (rt.pidfile, rt.monitor, rt.qmp, rt.serial_sock, rt.serial_log, rt.stderr_log):
                try:
                    p.unlink()
                except OSError:
                    pass
            if plan.create_target is not None and plan.install_phase:
                tc = plan.create_target
                if images.ensure_install_target(Path(tc.path), tc.format, tc.size,
                                                preallocate=tc.mode == "HDDDOS", owner=tc.owner):
                    created = tc.path
            display = None
            if plan.console is ConsoleType.VNC:
                display = plan.vnc_display if plan.vnc_display is not None else self.pick_display()
            elif plan.console.is_serial and plan.console is not ConsoleType.CLI0:
                try:                                # VNC prepared for later attachment:
                    display = self.pick_display()  # nice to have, never a reason to fail
                except BackendError:
                    display = None
            serial_log = getattr(options, "serial_log", None)
            if serial_log and not plan.console.is_serial:
                from ctys_libvirt.security import seriallog

                serial_log, log_created = seriallog.claim(serial_log, plan.conf_path)
            who, how = self._privileges(probe, options, messages)
            supervised = how == "sandbox"
            res = build_argv_result(plan, probe, runtime=rt, daemonize=True, strict=options.strict,
                                    network=self.network, vnc_display=display, incoming=incoming,
                                    serial_log=serial_log, supervised=supervised,
                                    run_as=who.name if how == "runas" else None,
                                    sandbox=sandbox_value(probe) if supervised else None)
            warns = list(res.warnings)
            if serial_log and plan.console.is_serial:
                warns.append(f"--serial-log {serial_log} not used: CONSOLE {plan.console.value} "
                                f"puts the serial line on {res.serial}")
            # CLI0: QEMU's serial socket drops output while no client is connected, so start
            # paused (-S) and let the console continue it once attached (RESUME).
            hold = plan.console is ConsoleType.CLI0 and incoming is None
            if hold:
                res.argv.append("-S")
            meta = {
                "label": plan.name, "uuid": plan.uuid_dashed, "conf_path": plan.conf_path,
                "conf_sha256": plan.conf_sha256, "mac": plan.nic.mac if plan.nic else None,
                "ip": dict(plan.keys).get("IP0"), "memory_mib": plan.memory_mib, "vcpus": plan.smp,
                "arch": plan.arch, "console": plan.console.value, "vnc_display": res.vnc_display,
                "monitor_kind": res.monitor_kind, "monitor_path": res.monitor_path,
                "serial": res.serial, "qemu": probe.path, "qemu_version": probe.version_text,
                "hyperrel": probe.hyperrel, "magic": probe.magic,
                "accelerator": "KVM" if ("-accel" in res.argv and "kvm" in res.argv) or
                (probe.is_kvm_fork and "-no-kvm" not in res.argv) or "-enable-kvm" in res.argv
                else ("KQEMU" if "-kernel-kqemu" in res.argv or "-enable-kqemu" in res.argv else "QEMU"),
                "started": time.time(),
                "paused": hold,
                "run_as": who.name if who else None, "run_as_uid": who.uid if who else None,
                "sandbox": supervised, "lent": [],
                "disks": [[d.path, d.readonly] for d in plan.disks],
            }
            _write_ours(rt.argv_file, json.dumps(res.argv, indent=1))
            _write_ours(rt.sha_file, plan.conf_sha256 + "\n")
            _write_ours(rt.meta_file, json.dumps(meta, indent=1, sort_keys=True))
            if who is not None:
                _share_dir(rt, who)
            if supervised:
                # QEMU opens its media as that user: lend them for the run (like libvirt's
                # dynamic_ownership), recorded first so every way out gives them back
                from ctys_libvirt.security import runas

                meta["lent"] = runas.lend(_media_paths(plan, serial_log if not plan.console.is_serial
                                                       else None), who)
                _write_ours(rt.meta_file, json.dumps(meta, indent=1, sort_keys=True))
                pid = self._launch_supervised(rt, res.argv, lock_fd, plan.name, probe, who)
            else:
                pid = self._launch(rt, res.argv, lock_fd, plan.name, probe)
        except BaseException:
            # nothing of a failed start stays behind (unless another QEMU owns the dir)
            if acquired and not RuntimeVm(rt).alive() and not rt.vmstate.exists():
                self._clean(rt)
            images.remove_created_target(created)   # ... not even the INIT target it made
            if log_created:
                from ctys_libvirt.security import seriallog

                seriallog.release_unused(serial_log, log_created)
            os.close(lock_fd)
            raise
        os.close(lock_fd)  # QEMU holds the inherited lock from here on
        result = CreateResult(name=plan.name, uuid=plan.uuid_dashed, backend=self.name,
                              state="paused" if hold else "running", console=plan.console.value,
                              vnc_display=res.vnc_display,
                              vnc_port=VNC_BASEPORT + res.vnc_display if res.vnc_display is not None else None,
                              serial=res.serial, pid=pid, install=plan.install_phase,
                              created_target=created, messages=messages, warnings=warns)
        if res.vnc_display is not None:
            result.messages.append(f"VNC: 127.0.0.1:{res.vnc_display} (port {VNC_BASEPORT + res.vnc_display})")
        result.messages.append(f"QEMU {probe.version_text} {probe.path}; runtime dir {rt.dir}"
                               + (f"; runs as {who.name}" if who else "")
                               + ("; sandboxed" if supervised else ""))
        return result

    def _refuse_shared_disks(self, plan) -> None:
        """No disk a running domain holds (ours or libvirt's), unless both only read it."""
        from ctys_libvirt.security import inuse
        from ctys_libvirt.security.media import conflicts

        skip = (plan.name, plan.uuid_dashed)
        msg = conflicts(plan.disks, inuse.merge(inuse.direct_disks(self.base, skip),
                                                inuse.local_libvirt_disks(skip)))
        if msg:
            raise BackendError(f"{plan.name}: {msg}",
                               hint="stop the other domain first, or give this VM its own image")

    def _privileges(self, probe: QemuProbe, options: CreateOptions, messages: List[str]):
        who, how, note = privileges(probe, getattr(options, "run_as", None), self.run_as)
        if note:
            messages.append(note)
        return who, how

    def _launch_supervised(self, rt: RuntimeDirs, argv: List[str], lock_fd: int, label: str,
                           probe: QemuProbe, who, extra_fds: Tuple[int, ...] = ()) -> int:
        """Start QEMU detached as ``who`` (no -daemonize); it is up once its QMP greets us
        (QEMU greets only from its main loop, after every device opened).  We know the pid
        ourselves and write the pidfile (root's, in the sticky dir QEMU cannot rename)."""
        os.set_inheritable(lock_fd, True)
        # SDL asks D-Bus to autolaunch a session bus, which forks: the sandbox (spawn=deny)
        # kills QEMU for that (SIGSYS).  No session bus is needed for the window.
        env = dict(os.environ, LC_ALL="C", DBUS_SESSION_BUS_ADDRESS="disabled:")
        with open(rt.stderr_log, "wb") as err:
            try:
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=err, pass_fds=(lock_fd,) + tuple(extra_fds),
                                        start_new_session=True, env=env, cwd=str(rt.dir),
                                        user=who.uid, group=who.gid, extra_groups=list(who.groups))
            except OSError as exc:
                raise BackendError(f"cannot run QEMU {argv[0]} for {label} as {who.name}: {exc.strerror}",
                                   hint="the binary must be executable by that user (--run-as)") from None
        deadline = time.monotonic() + self.start_timeout
        try:
            while True:
                rc = proc.poll()
                if rc is not None:
                    tail = _failing(rt.stderr_log)
                    raise BackendError(f"QEMU {probe.version_text} failed to start {label} (exit {rc})"
                                       + (f": {tail}" if tail else ""),
                                       hint="fix the conf/ARGSADD; `ctys-libvirt argv` shows the command")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CtysTimeout(f"QEMU for {label} did not come up within {self.start_timeout:g}s",
                                      hint=f"see {rt.stderr_log}")
                if rt.qmp.exists():
                    try:
                        from ctys_libvirt.qemu.monitor import open_monitor

                        open_monitor(str(rt.qmp), "qmp", min(left, 5.0)).close()
                        break
                    except BackendError:
                        pass
                time.sleep(0.01)
        except BaseException:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            raise
        _write_ours(rt.pidfile, f"{proc.pid}\n")
        return proc.pid

    def _launch(self, rt: RuntimeDirs, argv: List[str], lock_fd: int, label: str,
                probe: QemuProbe) -> int:
        os.set_inheritable(lock_fd, True)
        env = dict(os.environ, LC_ALL="C")
        with open(rt.stderr_log, "wb") as err:
            try:
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=err, pass_fds=(lock_fd,), start_new_session=True,
                                        env=env, cwd=str(rt.dir))
            except OSError as exc:
                raise BackendError(f"cannot run QEMU {argv[0]} for {label}: {exc.strerror}",
                                   hint="check the binary with `ctys-libvirt doctor`") from None
            # Popen.wait(timeout) sleep-polls (up to 50 ms steps): block in waitpid and
            # let a timer kill a QEMU that never daemonizes
            expired = threading.Event()

            def _expire() -> None:
                expired.set()
                proc.kill()

            timer = threading.Timer(self.start_timeout, _expire)
            timer.daemon = True
            timer.start()
            try:
                rc = proc.wait()
            finally:
                timer.cancel()
            if expired.is_set():
                raise CtysTimeout(f"QEMU for {label} did not daemonize within {self.start_timeout:g}s",
                                  hint=f"see {rt.stderr_log}")
        if rc != 0:
            tail = _failing(rt.stderr_log)
            raise BackendError(f"QEMU {probe.version_text} failed to start {label} (exit {rc})"
                               + (f": {tail}" if tail else ""),
                               hint="fix the conf/ARGSADD; `ctys-libvirt argv` shows the command")
        from ctys_libvirt.util.retry import wait_for

        pid = wait_for(lambda: read_pid(rt.pidfile), 5.0)
        if pid is None:
            # no pidfile (something made QEMU write it elsewhere): a QEMU is never lost;
            # it is ours when its argv names our runtime dir's monitor socket
            pid = _find_by_runtime(rt, argv)
            if pid is not None:
                _write_ours(rt.pidfile, f"{pid}\n")
        if pid is None or not pid_alive(pid):
            tail = _failing(rt.stderr_log)
            raise BackendError(f"QEMU {probe.version_text} for {label} exited right after start"
                               + (f": {tail}" if tail else " (no pidfile)"),
                               hint=f"see {rt.stderr_log}")
        return pid

    # -- CANCEL -----------------------------------------------------------------

    def _require(self, target: str) -> RuntimeVm:
        v = self._find(target)
        if v is None:
            raise NotRunning(f"{target} is not running under the direct backend",
                             hint="`ctys-libvirt list --backend direct` shows what runs")
        return v

    def cancel(self, target: str, mode: CancelMode = CancelMode.POWEROFF,
               timeout: float = 20.0) -> CancelResult:
        mode = CancelMode(mode)
        v = self._require(target)
        name = v.rt.label
        t0 = time.monotonic()

        def done(action: str, state: str, *msgs: str) -> CancelResult:
            return CancelResult(name=name, mode=mode, action=action, state=state,
                                seconds=round(time.monotonic() - t0, 3), messages=list(msgs))

        if mode is CancelMode.RESUME:
            return self._resume(v, done, timeout)
        if not v.alive():
            had_state = v.rt.vmstate.exists()
            self._clean(v.rt, keep_state=had_state)
            raise NotRunning(f"{name} is not running (stale runtime dir cleaned)" if not had_state
                             else f"{name} is suspended, not running",
                             hint=f"start it with `ctys-libvirt create {name}`" if not had_state
                             else "RESUME it")
        if mode in (CancelMode.POWEROFF, CancelMode.FORCE):
            action, msgs = self._stop(v, timeout, soft=mode is CancelMode.POWEROFF)
            self._clean(v.rt)
            return done(action, "shutoff", *msgs)
        try:
            mon = v.monitor()
        except BackendError as exc:
            raise BackendError(f"{name}: {exc.message}", hint="CANCEL FORCE still works (signals)") from None
        try:
            if mode in (CancelMode.RESET, CancelMode.REBOOT):
                mon.reset()
                return done("reset", "running")
            if mode is CancelMode.PAUSE:
                mon.stop()
                self._set_meta(v, paused=True)  # HMP of old builds has no 'info status'
                return done("paused", mon.status() if mon.kind == "qmp" else "paused")
            if mode is CancelMode.SUSPEND:
                ver = tuple(int(x) for x in str(v.meta.get("qemu_version") or "0.0.0").split("."))
                if ver < (0, 10, 0):
                    raise BackendError(f"{name}: SUSPEND needs QEMU 0.10 or newer (migrate to a file "
                                       f"and -incoming); this is QEMU {v.meta.get('qemu_version')}",
                                       hint="use PAUSE, or POWEROFF")
                if v.meta.get("sandbox"):
                    # no exec: under the sandbox, and QEMU's user cannot open our file: pass it
                    try:
                        os.unlink(v.rt.vmstate)
                    except FileNotFoundError:
                        pass
                    fd = os.open(v.rt.vmstate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                                 | os.O_CLOEXEC, 0o600)
                    try:
                        mon.stop()
                        mon.migrate_to_fd(fd, str(v.rt.vmstate), timeout)
                    finally:
                        os.close(fd)
                else:
                    mon.file_uri(str(v.rt.vmstate))     # a path it cannot name: fail while running
                    mon.stop()
                    mon.migrate_to_file(str(v.rt.vmstate), timeout)
                mon.quit()
                wait_gone(v.pid, STEP_WAIT) or self._signal(v.pid, signal.SIGKILL)
                self._clean(v.rt, keep_state=True)
                return done("saved", "shutoff", f"state saved to {v.rt.vmstate}; RESUME restores it")
        finally:
            mon.close()
        raise BackendError(f"unknown cancel mode {mode}")  # pragma: no cover

    @staticmethod
    def _set_meta(v: RuntimeVm, **kw) -> None:
        v.meta.update(kw)
        tmp = v.rt.meta_file.with_suffix(".tmp")
        _write_ours(tmp, json.dumps(v.meta, indent=1, sort_keys=True))
        os.replace(tmp, v.rt.meta_file)

    @staticmethod
    def _signal(pid: int, sig: int) -> bool:
        try:
            os.kill(pid, sig)
        except OSError:
            pass
        return True

    def _stop(self, v: RuntimeVm, timeout: float, soft: bool) -> Tuple[str, List[str]]:
        """powerdown -> wait -> quit -> SIGTERM -> SIGKILL; returns the step that worked."""
        pid = v.pid
        msgs: List[str] = []
        mon = None
        try:
            mon = v.monitor(timeout=2.0)
        except BackendError as exc:
            msgs.append(f"monitor unusable ({exc.message}); using signals")
        try:
            if soft and mon is not None:
                try:
                    mon.powerdown()
                    if wait_gone(pid, timeout):
                        return "shutdown", msgs + ["guest powered off after ACPI request"]
                    msgs.append(f"no ACPI shutdown within {timeout:g}s")
                except BackendError as exc:
                    msgs.append(f"system_powerdown failed: {exc.message}")
            if mon is not None:
                try:
                    mon.quit()
                    if wait_gone(pid, STEP_WAIT):
                        return "quit", msgs + ["QEMU ended by monitor quit"]
                    msgs.append("monitor quit ignored")
                except BackendError as exc:
                    msgs.append(f"quit failed: {exc.message}")
        finally:
            if mon is not None:
                mon.close()
        self._signal(pid, signal.SIGTERM)
        if wait_gone(pid, STEP_WAIT):
            return "sigterm", msgs + ["QEMU ended by SIGTERM"]
        msgs.append("SIGTERM ignored")
        self._signal(pid, signal.SIGKILL)
        if wait_gone(pid, 10.0):
            return "sigkill", msgs + ["QEMU killed with SIGKILL"]
        raise BackendError(f"{v.rt.label}: QEMU pid {pid} survives SIGKILL",
                           hint="process stuck in the kernel (D state); check the host")

    def _resume(self, v: RuntimeVm, done, timeout: float) -> CancelResult:
        name = v.rt.label
        if v.alive():
            mon = v.monitor()
            try:
                st = mon.status() if mon.kind == "qmp" else ("paused" if v.meta.get("paused") else "running")
                if st not in ("paused", "prelaunch"):   # prelaunch: started held at -S
                    raise BackendError(f"{name} is {st}, not paused or saved",
                                       hint="RESUME continues a PAUSEd or SUSPENDed VM")
                mon.cont()
                self._set_meta(v, paused=False)
                return done("resumed", "running")
            finally:
                mon.close()
        if not v.rt.vmstate.exists():
            self._clean(v.rt)
            raise NotRunning(f"{name} is not paused and has no saved state",
                             hint=f"start it with `ctys-libvirt create {name}`")
        argv = v.argv
        if not argv:
            raise BackendError(f"{name}: saved state but no recorded argv in {v.rt.dir}",
                               hint="start it afresh with create")
        state_file = v.rt.dir / "vmstate.resume"
        os.replace(v.rt.vmstate, state_file)
        sandboxed = bool(v.meta.get("sandbox"))
        who = None
        state_fd = None
        if sandboxed:
            # the sandbox forbids exec:; QEMU reads the state from a descriptor we pass
            from ctys_libvirt.security import runas

            who = runas.resolve(str(v.meta.get("run_as") or ""))
            if who is None:
                raise BackendError(f"{name}: saved by a sandboxed QEMU run as {v.meta.get('run_as')}, "
                                   "which cannot be resumed as root", hint="start it afresh with create")
            state_fd = os.open(state_file, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            argv = argv + ["-incoming", f"fd:{state_fd}"]
        else:
            # exec: runs through /bin/sh: quote the runtime dir (its base may hold anything)
            argv = argv + ["-incoming", f"exec:cat {shlex.quote(str(state_file))}"]
        lock_fd = os.open(v.rt.lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            from ctys_libvirt.qemu.probe import probe as do_probe

            pr = do_probe(argv[0])
            if sandboxed:
                from ctys_libvirt.security import runas

                _share_dir(v.rt, who)
                # lend the media again (SUSPEND gave them back with the rest)
                self._set_meta(v, lent=runas.lend([l[0] for l in v.meta.get("lent") or []], who),
                               run_as_uid=who.uid)
                pid = self._launch_supervised(v.rt, argv, lock_fd, name, pr, who, (state_fd,))
            else:
                pid = self._launch(v.rt, argv, lock_fd, name, pr)
        except BaseException:
            if sandboxed:
                _give_back(v.rt)
            os.replace(state_file, v.rt.vmstate)
            raise
        finally:
            os.close(lock_fd)
            if state_fd is not None:
                os.close(state_fd)
        _write_ours(v.rt.argv_file, json.dumps(argv[:-2], indent=1))
        v = RuntimeVm(v.rt)
        # wait for the incoming migration to finish, then make sure it runs
        deadline = time.monotonic() + timeout
        try:
            mon = v.monitor()
            try:
                while time.monotonic() < deadline:
                    st = mon.status()
                    if st == "running":
                        break
                    if st in ("paused", "postmigrate", "prelaunch"):
                        mon.cont()
                    time.sleep(0.05)
            finally:
                mon.close()
        finally:
            try:
                state_file.unlink()
            except OSError:
                pass
        return done("restored", "running", f"restored from saved state (pid {pid})")

    # -- LIST -------------------------------------------------------------------

    def _info(self, v: RuntimeVm, host: str) -> DomainInfo:
        m = v.meta
        alive = v.alive()
        state = "running" if alive else ("saved" if v.rt.vmstate.exists() else "shutoff")
        if alive and m.get("paused"):
            state = "paused"
        if alive and m.get("monitor_kind") == "qmp":
            try:
                mon = v.monitor(timeout=1.0)
                try:
                    st = mon.status()
                    state = "paused" if st in ("paused", "postmigrate", "suspended") else "running"
                finally:
                    mon.close()
            except BackendError:
                pass
        info = DomainInfo(name=v.rt.label, uuid=str(m.get("uuid") or ""), state=state,
                          backend=self.name, host=host, ours=True, label=str(m.get("label") or v.rt.label),
                          mac=m.get("mac"), ip=m.get("ip"), console=m.get("console"),
                          conf_path=m.get("conf_path"), conf_sha256=m.get("conf_sha256"),
                          persistent=False, autostart=False, hypervisor="QEMU",
                          accelerator=m.get("accelerator"),
                          arch=m.get("arch"), memory_mib=m.get("memory_mib"), vcpus=m.get("vcpus"))
        if alive:
            info.pid = v.pid
            d = m.get("vnc_display")
            if d is not None:
                info.vnc_display = int(d)
                info.vnc_port = VNC_BASEPORT + int(d)
            info.extra["sport"] = str(m.get("monitor_path") or "")
            try:
                s = os.stat(f"/proc/{v.pid}")
                import grp
                import pwd

                info.user = pwd.getpwuid(s.st_uid).pw_name
                info.extra["group"] = grp.getgrgid(s.st_gid).gr_name
            except (OSError, KeyError):
                pass
        if m.get("qemu"):
            info.extra["emulator"] = str(m["qemu"])
        if m.get("hyperrel"):
            info.extra["hyperrelrun"] = str(m["hyperrel"])
        info.extra["runtime_dir"] = str(v.rt.dir)
        if m.get("serial"):
            info.extra["serial"] = str(m["serial"])   # socket, or the log it writes to
        return info

    def list(self, include_inactive: bool = True) -> List[DomainInfo]:
        host = socket.gethostname()
        out: List[DomainInfo] = []
        our_pids = set()
        for rt in self._dirs():
            v = RuntimeVm(rt)
            if not v.meta:
                continue
            if not v.alive():
                if not rt.vmstate.exists():
                    if not v.locked():
                        self._clean(rt)  # stale: QEMU died without CANCEL
                    continue
                if not include_inactive:
                    continue
            else:
                our_pids.add(v.pid)
            out.append(self._info(v, host))
        out += self._foreign(host, our_pids)
        out.sort(key=lambda i: (i.state not in ("running", "paused"), i.name))
        return out

    def _foreign(self, host: str, skip: set) -> List[DomainInfo]:
        """QEMU processes nobody manages: not ours, not libvirt's."""
        out = []
        for pid, cmd, user in _qemu_processes():
            if pid in skip:
                continue
            # the binary, or a script run through an interpreter (python -S qemu ...)
            exe = next((c for c in cmd[:3] if os.path.basename(c).startswith("qemu-system-")
                        or os.path.basename(c) in QEMU_NAMES), None)
            if exe is None:
                continue
            cmd = cmd[cmd.index(exe):]
            joined = " ".join(cmd)
            if "guest=" in joined or "/var/lib/libvirt/" in joined or "/run/libvirt/" in joined \
                    or str(self.base) in joined:
                continue  # libvirt's, or one of ours being started/stopped
            name = ""
            if "-name" in cmd and cmd.index("-name") + 1 < len(cmd):
                name = cmd[cmd.index("-name") + 1].split(",")[0]
            uuid = ""
            if "-uuid" in cmd and cmd.index("-uuid") + 1 < len(cmd):
                uuid = cmd[cmd.index("-uuid") + 1]
            info = DomainInfo(name=name or f"qemu-{pid}", uuid=uuid, state="running",
                              backend=self.name, host=host, ours=False, pid=pid,
                              user=user(), hypervisor="QEMU", persistent=False, autostart=False)
            info.extra["emulator"] = cmd[0]
            out.append(info)
        return out

    def lookup(self, target: str) -> Optional[DomainInfo]:
        v = self._find(target)
        if v is None or not v.meta:
            return None
        return self._info(v, socket.gethostname())

    def close(self) -> None:
        pass    # no connection: each call opens and closes what it needs

    def __enter__(self) -> "DirectBackend":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
