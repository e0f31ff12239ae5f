"""The libvirt backend: CREATE / CANCEL / LIST / INFO through libvirt-python.

* The connection is opened after libvirt's default event loop is registered and
  running (libvirt_events), so every wait blocks on domain lifecycle events.
* libvirt's habit of printing every error to stderr is switched off; libvirt errors
  become our typed errors (errors.py) naming the domain and the fix.
* A domain is "ours" when its XML carries the translator's metadata element; LIST
  maps it back to its conf through that metadata."""
from __future__ import annotations

import gc
import grp
import os
import pwd
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import libvirt

from ctys_libvirt.util.uri import default_uri  # noqa: F401  (re-exported)
from ctys_libvirt.backends import libvirt_domxml as domxml
from ctys_libvirt.backends.libvirt_events import LifecycleWatcher, ensure_event_loop
from ctys_libvirt.errors import (
    AlreadyRunning,
    BackendError,
    ConflictError,
    CtysTimeout,
    LibvirtUnavailable,
    NotFoundError,
    NotRunning,
)
from ctys_libvirt.model import (
    VNC_BASEPORT,
    BootRequest,
    CancelMode,
    CancelResult,
    CreateOptions,
    CreateResult,
    DomainInfo,
    VmConfig,
)


STATE_NAMES = {
    libvirt.VIR_DOMAIN_NOSTATE: "nostate",
    libvirt.VIR_DOMAIN_RUNNING: "running",
    libvirt.VIR_DOMAIN_BLOCKED: "blocked",
    libvirt.VIR_DOMAIN_PAUSED: "paused",
    libvirt.VIR_DOMAIN_SHUTDOWN: "shutdown",
    libvirt.VIR_DOMAIN_SHUTOFF: "shutoff",
    libvirt.VIR_DOMAIN_CRASHED: "crashed",
    libvirt.VIR_DOMAIN_PMSUSPENDED: "pmsuspended",
}
SHUTOFF_REASONS = {
    libvirt.VIR_DOMAIN_SHUTOFF_UNKNOWN: "unknown",
    libvirt.VIR_DOMAIN_SHUTOFF_SHUTDOWN: "shutdown",
    libvirt.VIR_DOMAIN_SHUTOFF_DESTROYED: "destroyed",
    libvirt.VIR_DOMAIN_SHUTOFF_CRASHED: "crashed",
    libvirt.VIR_DOMAIN_SHUTOFF_SAVED: "saved",
    libvirt.VIR_DOMAIN_SHUTOFF_FAILED: "failed",
    libvirt.VIR_DOMAIN_SHUTOFF_FROM_SNAPSHOT: "from snapshot",
}
_ACTIVE_STATES = (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_BLOCKED,
                  libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_SHUTDOWN,
                  libvirt.VIR_DOMAIN_PMSUSPENDED, libvirt.VIR_DOMAIN_CRASHED)

UNAVAILABLE_HINT = ("start it: sh scripts/setup.sh (or `setsid tini -s -- libvirtd &`), "
                    "or use --backend direct")


def unavailable_hint(uri: str, detail: str = "") -> str:
    """The fix for an unopenable URI: a typo'd URI, a remote host, or the local daemon."""
    from urllib.parse import urlsplit

    if "no connection driver" in detail or "URI" in detail or "://" not in uri:
        return "check the URI, e.g. qemu:///system or qemu+ssh://user@host/system"
    try:
        parts = urlsplit(uri)
        host = parts.hostname
    except ValueError:
        return "check the URI, e.g. qemu:///system or qemu+ssh://user@host/system"
    transport = parts.scheme.partition("+")[2]
    if host and (transport not in ("", "unix") or host not in ("localhost", "127.0.0.1", "::1")):
        return (f"check that {host} is reachable and runs libvirtd "
                "(for qemu+ssh: key-based ssh login as that user)")
    return UNAVAILABLE_HINT


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__


def open_connection(uri: Optional[str] = None, *, readonly: bool = False) -> "libvirt.virConnect":
    """A libvirt connection with libvirt's own stderr printing silenced; failure is one
    LibvirtUnavailable naming the URI and how to get a daemon (or to do without one)."""
    uri = default_uri(uri)
    libvirt.registerErrorHandler(lambda *_: None, None)
    try:
        return libvirt.openReadOnly(uri) if readonly else libvirt.open(uri)
    except libvirt.libvirtError as exc:
        detail = _first_line(exc)
        raise LibvirtUnavailable(f"cannot connect to libvirt at {uri}: {detail}",
                                 hint=unavailable_hint(uri, detail)) from None


def _code(exc: "libvirt.libvirtError") -> int:
    try:
        return exc.get_error_code() or 0
    except Exception:  # pragma: no cover - defensive: odd libvirtError subclasses
        return 0


def lock_dir() -> Path:
    """Per-user runtime directory for label locks (root: /run/ctys-libvirt/locks)."""
    if os.geteuid() == 0:
        base = Path("/run/ctys-libvirt")
    elif os.environ.get("XDG_RUNTIME_DIR"):
        base = Path(os.environ["XDG_RUNTIME_DIR"]) / "ctys-libvirt"
    else:
        base = Path(f"/tmp/ctys-libvirt-{os.getuid()}")
    d = base / "locks"
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    return d


@contextmanager
def label_lock(label: str) -> Iterator[None]:
    """Serialise CREATEs of one label across processes (fcntl lock, released on exit
    even when the process dies).  The lock file goes when its holder is done: it is
    unlinked while still locked, and a waiter that then gets the lock on the unlinked
    inode sees the name no longer points at it and locks the current file instead."""
    import fcntl

    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in label) or "_"
    path = lock_dir() / f"{safe}.lock"
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            lock_dir()      # another holder removed the empty directory meanwhile
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            st = os.fstat(fd)
            try:
                cur = os.stat(path, follow_symlinks=False)
                same = (cur.st_dev, cur.st_ino) == (st.st_dev, st.st_ino)
            except FileNotFoundError:
                same = False
        except BaseException:
            os.close(fd)
            raise
        if same:
            break
        os.close(fd)
    try:
        yield
    finally:
        try:
            os.unlink(path)
            os.rmdir(path.parent)       # only when no other lock is in it
        except OSError:
            pass
        os.close(fd)


class LibvirtBackend:
    """Backend (base.py) on one libvirt connection."""

    name = "libvirt"

    def __init__(self, uri: Optional[str] = None, *, events: bool = True):
        """``events=False`` (LIST, INFO): do not start libvirt's event loop for this
        connection.  With the loop running, every reply on the socket also wakes the
        loop thread, which halves LIST's throughput of concurrent XMLDesc calls.  A
        wait on such a backend still works: the watcher gets its own connection,
        opened after the loop is started."""
        self.uri = default_uri(uri)
        libvirt.registerErrorHandler(lambda *_: None, None)
        self._events = events
        if events:
            ensure_event_loop()
        self.conn = self._open()
        from ctys_libvirt.util import log

        log.info("libvirt: connected to %s", self.uri)
        self._event_conn: Optional["libvirt.virConnect"] = None
        self._watcher: Optional[LifecycleWatcher] = None
        self._hostname: Optional[str] = None

    def _open(self) -> "libvirt.virConnect":
        return open_connection(self.uri)

    # -- plumbing -------------------------------------------------------------------

    @property
    def watcher(self) -> LifecycleWatcher:
        if self._watcher is None:
            conn = self.conn
            if not self._events:
                ensure_event_loop()
                conn = self._event_conn = self._open()
            self._watcher = LifecycleWatcher(conn)
        return self._watcher

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.close()
            self._watcher = None
        for conn in (self._event_conn, self.conn):
            if conn is None:
                continue
            try:
                conn.close()
            except libvirt.libvirtError:
                pass
        self._event_conn = None

    def __enter__(self) -> "LibvirtBackend":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _error(self, what: str, exc: "libvirt.libvirtError", hint: Optional[str] = None,
               failing: bool = False) -> BackendError:
        """``failing``: the error quotes QEMU's stderr; show its failing line, not a warning."""
        code = _code(exc)
        if code in (libvirt.VIR_ERR_NO_CONNECT, libvirt.VIR_ERR_SYSTEM_ERROR) and not self._alive():
            return LibvirtUnavailable(f"lost the libvirt connection to {self.uri} while {what}",
                                      hint=UNAVAILABLE_HINT)
        if failing:
            from ctys_libvirt.qemu.stderr import failing_line

            return BackendError(f"{what}: {failing_line(str(exc)) or _first_line(exc)}",
                                hint=hint or "see the libvirtd log")
        return BackendError(f"{what}: {_first_line(exc)}", hint=hint or "see the libvirtd log")

    def _local(self) -> bool:
        """The connection's hypervisor runs on this host (no host name in the URI)."""
        from urllib.parse import urlparse

        return not urlparse(self.uri).hostname

    def _alive(self) -> bool:
        try:
            return bool(self.conn.isAlive())
        except libvirt.libvirtError:
            return False

    def domain(self, target: str) -> Optional["libvirt.virDomain"]:
        """The domain named ``target`` or with UUID ``target`` (dashed or 32 hex), or None."""
        try:
            return self.conn.lookupByName(target)
        except libvirt.libvirtError as exc:
            if _code(exc) != libvirt.VIR_ERR_NO_DOMAIN:
                raise self._error(f"looking up domain {target}", exc) from None
        hexed = target.replace("-", "").lower()
        if len(hexed) == 32 and all(c in "0123456789abcdef" for c in hexed):
            try:
                return self.conn.lookupByUUIDString(
                    f"{hexed[:8]}-{hexed[8:12]}-{hexed[12:16]}-{hexed[16:20]}-{hexed[20:]}")
            except libvirt.libvirtError as exc:
                if _code(exc) != libvirt.VIR_ERR_NO_DOMAIN:
                    raise self._error(f"looking up domain {target}", exc) from None
        return None

    def require(self, target: str) -> "libvirt.virDomain":
        """The domain by name/UUID; NotFoundError naming it otherwise."""
        dom = self.domain(target)
        if dom is None:
            raise NotFoundError(f"no domain {target!r} at {self.uri}",
                                hint="see `ctys-libvirt list --all` for the defined domains")
        return dom

    @staticmethod
    def _state(dom) -> tuple:
        """(state, reason); (SHUTOFF, -1) when a transient domain has vanished."""
        try:
            return tuple(dom.state())
        except libvirt.libvirtError as exc:
            if _code(exc) == libvirt.VIR_ERR_NO_DOMAIN:
                return (libvirt.VIR_DOMAIN_SHUTOFF, -1)
            raise

    def is_active(self, dom) -> bool:
        """Running, paused, ... (anything but shut off or gone)."""
        return self._state(dom)[0] in _ACTIVE_STATES

    def state_text(self, dom) -> str:
        st, reason = self._state(dom)
        if reason == -1:
            return "gone"
        name = STATE_NAMES.get(st, str(st))
        if st == libvirt.VIR_DOMAIN_SHUTOFF:
            return f"shutoff ({SHUTOFF_REASONS.get(reason, reason)})"
        return name

    def _wait(self, dom, predicate, timeout: float) -> bool:
        return self.watcher.wait_until(dom.UUIDString(), predicate, timeout)

    # -- facts ----------------------------------------------------------------------

    def _pid(self, name: str) -> Optional[int]:
        """QEMU's pid from libvirt's pidfile (system or session driver)."""
        candidates = [Path("/run/libvirt/qemu") / f"{name}.pid"]
        if "session" in self.uri:
            rt = os.environ.get("XDG_RUNTIME_DIR")
            if rt:
                candidates.insert(0, Path(rt) / "libvirt" / "qemu" / "run" / f"{name}.pid")
        for p in candidates:
            try:
                return int(p.read_text().strip())
            except (OSError, ValueError):
                continue
        return self._pid_psutil(name)

    @staticmethod
    def _pid_psutil(name: str) -> Optional[int]:
        """Fallback when the pidfile is not readable: QEMU's argv has ``-name guest=NAME``."""
        try:
            import psutil
        except ImportError:  # pragma: no cover - dependency is fixed
            return None
        want = f"guest={name},"
        for p in psutil.process_iter(["cmdline"]):
            cmd = p.info.get("cmdline") or []
            if "-name" in cmd:
                i = cmd.index("-name")
                if i + 1 < len(cmd) and (cmd[i + 1] + ",").startswith(want):
                    return p.pid
        return None

    def hostname(self) -> str:
        if self._hostname is None:
            try:
                self._hostname = self.conn.getHostname()
            except libvirt.libvirtError:
                import socket

                self._hostname = socket.gethostname()
        return self._hostname

    def hypervisor_release(self) -> str:
        try:
            v = self.conn.getVersion()
        except libvirt.libvirtError:
            return ""
        return f"qemu-{v // 1000000}.{(v // 1000) % 1000}.{v % 1000}"

    # -- CREATE ---------------------------------------------------------------------

    def _check_clash(self, name: str, uuid: str, *, conf_path: Optional[str] = None,
                     uuid_generated: bool = False) -> Optional["libvirt.virDomain"]:
        """The existing domain that is this VM, or None; never lets us touch a foreign one.
        A conf that moved (the definition names another conf path) is refused with what
        moved and how `sync` re-points the definition."""
        dom = self.domain(name)
        if dom is not None:
            facts = domxml.parse(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
            old_path = domxml.meta_value(facts.meta, "conf_path", "conf") if facts.ours else None
            # the same file reached through a symlink is no move
            moved = bool(conf_path and old_path and old_path != conf_path
                         and os.path.realpath(old_path) != os.path.realpath(conf_path))
            if facts.uuid.replace("-", "").lower() != uuid.replace("-", "").lower():
                if moved and uuid_generated:
                    raise ConflictError(
                        f"{name}: the conf moved from {old_path} to {conf_path}; it has no "
                        f"#@#UUID, so the UUID derived from its path changed ({uuid} instead of "
                        f"the domain's {facts.uuid})",
                        hint=f"`ctys-libvirt sync {conf_path}` re-points the definition "
                             f"(it writes #@#UUID = \"{facts.uuid.replace('-', '')}\" into the conf)")
                if uuid_generated:
                    raise BackendError(
                        f"a domain named {name} already exists with UUID {facts.uuid}, and the "
                        f"conf has no #@#UUID (its path gives {uuid})",
                        hint=f"add #@#UUID = \"{facts.uuid.replace('-', '')}\" to the conf if it "
                             f"is that VM, else rename or undefine that domain")
                raise BackendError(
                    f"a domain named {name} already exists with UUID {facts.uuid} "
                    f"(the conf says {uuid})",
                    hint=f"rename or undefine that domain (virsh undefine {name}), or fix the conf's UUID")
            if not facts.ours:
                raise BackendError(
                    f"domain {name} (UUID {facts.uuid}) exists but was not defined by ctys-libvirt",
                    hint="it is left untouched; rename the conf's LABEL or remove that domain yourself")
            if moved and os.path.exists(old_path):
                raise ConflictError(
                    f"{name}: the definition belongs to {old_path}, which still exists; "
                    f"{conf_path} has the same LABEL and UUID",
                    hint=f"remove one of the two confs, or `ctys-libvirt sync {conf_path}` to "
                         "re-point the definition to it")
            if moved:
                raise ConflictError(
                    f"{name}: the conf moved from {old_path} to {conf_path}",
                    hint=f"`ctys-libvirt sync {conf_path}` re-points the definition to the new path")
            return dom
        other = self.domain(uuid)
        if other is not None:
            raise BackendError(
                f"UUID {uuid} of {name} is already used by domain {other.name()}",
                hint="give the conf a unique UUID or remove the other domain")
        return None

    @staticmethod
    def _check_sources(xml: str, plan=None) -> None:
        """Every file a disk/kernel points at must exist before anything is defined.
        ``plan``: the MachinePlan ``xml`` was built from (its disks and kernel are the
        XML's sources), read instead of parsing our own XML again."""
        if plan is not None:
            sources = [(d.device, d.path) for d in plan.disks]
            kernel = plan.kernel
            files = [("kernel", kernel and str(kernel.kernel)),
                     ("initrd", kernel and kernel.initrd and str(kernel.initrd))]
            name = plan.name
        else:       # XML from elsewhere (create_from_build's callers)
            from lxml import etree

            root = etree.fromstring(xml.encode())
            name = root.findtext("name")
            sources = []
            for disk in root.iterfind("devices/disk"):
                src = disk.find("source")
                sources.append((disk.get("device", "disk"),
                                None if src is None else (src.get("file") or src.get("dev"))))
            files = [(tag, root.findtext(f"os/{tag}")) for tag in ("kernel", "initrd")]
        for kind, path in sources:
            if path and not os.path.exists(path):
                raise NotFoundError(f"{name}: {kind} image {path} does not exist",
                                    hint="fix the path in the conf or the BOOTMODE/INSTMODE argument")
        for tag, path in files:
            if path and not os.path.exists(path):
                raise NotFoundError(f"{name}: {tag} {path} does not exist",
                                    hint="fix the KERNEL argument or KERNELIMAGE/INITRDIMAGE in the conf")

    def host_facts(self):
        """HostFacts of this connection's host (translate/ never asks libvirt itself)."""
        from ctys_libvirt.host.caps import libvirt_host_caps
        from ctys_libvirt.host.facts import host_facts

        return host_facts(libvirt_host_caps(self.conn))

    def build(self, vm: VmConfig, request: BootRequest, options: CreateOptions, facts=None):
        """The translator's DomainBuild for this host (``facts``: gathered once by the
        caller for all builds of one create; default: asked here)."""
        from ctys_libvirt.translate.xml import build_domain

        facts = facts or self.host_facts()
        self._enforce(vm, request, facts.caps)
        b = build_domain(vm, request, facts, options)
        self._lint(b, facts.caps, options)
        return b

    def _enforce(self, vm: VmConfig, request: BootRequest, caps) -> None:
        """ARGSADD policy (security/argsadd.py) before anything is defined, classified by
        the option table of the emulator libvirt runs (or the daemon's QEMU version)."""
        from ctys_libvirt.security.argwords import sources

        srcs = sources(vm, request)
        if not srcs:
            return
        from ctys_libvirt.security.argsadd import enforce
        from urllib.parse import urlparse

        from ctys_libvirt.errors import QemuProbeError
        from ctys_libvirt.qemu.probe import probe, synthetic_probe

        pr = None
        if not urlparse(self.uri).hostname and caps.emulator and os.path.exists(caps.emulator):
            try:
                pr = probe(caps.emulator)
            except QemuProbeError:
                pr = None
        if pr is None:
            try:
                v = self.conn.getVersion()
                pr = synthetic_probe(f"{v // 1000000}.{v // 1000 % 1000}.{v % 1000}")
            except Exception:       # no version: classify by our tables alone
                pr = None
        enforce(vm, request, pr, allow=request.allow_argsadd, other_disks=self._disks_of_others(vm.label),
                srcs=srcs)

    def _disks_of_others(self, name: str) -> Dict[str, str]:
        """Real path -> domain for the disks of every other domain here, defined or running."""
        from ctys_libvirt.security import inuse

        held = inuse.libvirt_disks(self.conn, (name,), active_only=False)
        return {path: users[0][0] for path, users in held.items()}

    def _refuse_shared_disks(self, b) -> None:
        """No disk another running domain holds (libvirt's, or the direct backend's on this
        host), unless both only read it: libvirt would hand it to a second QEMU."""
        from urllib.parse import urlparse

        from ctys_libvirt.qemu.runtime import runtime_base
        from ctys_libvirt.security import inuse
        from ctys_libvirt.security.media import conflicts

        plan = getattr(b, "plan", None)
        if plan is None:
            return
        skip = (b.name, b.uuid)
        held = inuse.libvirt_disks(self.conn, skip)
        if not urlparse(self.uri).hostname:
            held = inuse.merge(held, inuse.direct_disks(runtime_base(), skip))
        msg = conflicts(plan.disks, held)
        if msg:
            raise BackendError(f"{b.name}: {msg}",
                               hint="stop the other domain first, or give this VM its own image")

    def _lint(self, b, caps, options: CreateOptions) -> None:
        """ARGSADD against the emulator libvirt will run: its `-h` when it is on this host,
        else the QEMU version the (remote) daemon reports.  --strict turns findings into
        a UsageError before anything is defined."""
        plan = b.plan
        if not (plan.argsadd or plan.timeopt_args):
            return
        from urllib.parse import urlparse

        from ctys_libvirt.qemu.lint import lint_passthrough

        local = not urlparse(self.uri).hostname
        version = None
        if not local:
            v = self.conn.getVersion()          # e.g. 7002022 -> 7.2.22
            version = f"{v // 1000000}.{v // 1000 % 1000}.{v % 1000}"
        b.lint = lint_passthrough(plan, emulator=caps.emulator if local else None,
                                  version=version, strict=options.strict)
        b.warnings.extend(b.lint)

    def create(self, vm: VmConfig, request: BootRequest, options: CreateOptions) -> CreateResult:
        """Define (persistent unless ``options.transient``), start and wait until running.

        The persistent definition is the conf's normal boot (merged into the existing
        one, coexist/merge.py); the request's one-off choices go into this run's live
        configuration only."""
        with label_lock(vm.label):
            log, log_created = None, False
            # the log is a file on the hypervisor's host: claimed here only when that is us
            if getattr(options, "serial_log", None) and self._local():
                from dataclasses import replace as _replace

                from ctys_libvirt.security import seriallog

                log, log_created = seriallog.claim(options.serial_log, str(vm.source_path))
                options = _replace(options, serial_log=log)
            try:
                return self._create_locked(vm, request, options)
            except BaseException:
                if log_created:
                    from ctys_libvirt.security import seriallog

                    seriallog.release_unused(log, log_created)
                raise

    def _create_locked(self, vm: VmConfig, request: BootRequest, options: CreateOptions) -> CreateResult:
        facts = self.host_facts()       # once: the run's and the definition's build share them
        b = self.build(vm, request, options, facts)
        self._refuse_shared_disks(b)
        plan = getattr(b, "plan", None)
        definition, note, dplan, dtree = b.xml, None, plan, b.tree
        if not options.transient:
            definition, note, dplan, dtree = self._definition_xml(vm, request, options, b, facts)
        try:
            res = self.create_from_build(
                name=b.name, uuid=b.uuid,
                xml=definition,
                final_xml=None,
                definition_plan=dplan,
                run_xml=b.xml,
                warnings=list(getattr(b, "warnings", []) or []), options=options,
                console=request.console.value,
                create_target=getattr(plan, "create_target", None),
                is_install=request.instmode is not None,
                conf_path=getattr(plan, "conf_path", None),
                uuid_generated=bool(getattr(plan, "uuid_generated", False)),
                trees={b.xml: b.tree, definition: dtree})
            if note:
                res.messages.append(note)
            return res
        except BackendError as exc:
            # A QEMU that refuses to start usually refuses what the lint flagged: say so.
            lint = b.lint
            if lint:
                exc.hint = lint[0] + (f"; {exc.hint}" if exc.hint else "")
            raise

    def _definition_xml(self, vm: VmConfig, request: BootRequest, options: CreateOptions,
                        run, facts):
        """(XML of the persistent definition, note, its plan, its tree).  The conf's normal boot when
        it can be built; when it cannot yet (its HDDBOOTIMAGE is the target an install is
        about to create, a kernel-only conf without a disk), the definition boots as this
        run does (an install run: its final, normal boot order), as before the split: the
        run's build ``run`` rendered again with the definition's options, its plans kept."""
        from ctys_libvirt.errors import ConfError, UsageError
        from ctys_libvirt.translate.xml import render_build

        dopts = definition_options(options)
        try:
            d = self.build(vm, normal_request(vm, request.allow_argsadd, request.allow_devices),
                           dopts, facts)
            return d.xml, None, d.plan, d.tree
        except (NotFoundError, UsageError, ConfError) as exc:
            b = run if dopts is options else render_build(vm, run, facts, dopts)
            final = b.final_xml is not None
            return (b.final_xml if final else b.xml,
                    f"the conf's normal boot cannot be defined ({exc.message}); the persistent "
                    "definition boots as this run does",
                    b.final_plan if final else b.plan,
                    b.final_tree if final else b.tree)

    def create_from_build(self, *, name: str, uuid: str, xml: str, final_xml: Optional[str],
                          warnings: List[str], options: CreateOptions, console: str,
                          create_target=None, is_install: bool = False,
                          run_xml: Optional[str] = None, conf_path: Optional[str] = None,
                          uuid_generated: bool = False, definition_plan=None,
                          trees: Optional[Dict[str, object]] = None) -> CreateResult:
        """The CREATE sequence for already generated XML (the caller holds the label lock).

        ``xml`` (or ``final_xml`` of an install run) is merged into the persistent
        definition; ``run_xml``, when it differs from it, becomes the live configuration
        of this run only (createXML with the same name and UUID starts the persistent
        domain with it and leaves the definition as it is).  ``definition_plan``: the plan
        ``xml`` was built from, when the caller built it (its sources are checked from it).
        ``trees``: the lxml trees of the XML the caller built, by their text
        (``DomainBuild.tree``): merge, overlay and drift copy these instead of parsing our
        own XML again."""
        from ctys_libvirt.host import images  # qemu-img work: not on list/cancel paths

        label = name
        existing = self._check_clash(name, uuid, conf_path=conf_path, uuid_generated=uuid_generated)
        if existing is not None and self.is_active(existing):
            if options.reuse:
                res = self._result(existing, console, defined=False)
                res.messages = [f"{label} is already running; reusing it"]
                res.warnings = list(warnings)
                drift = self._drift_of(existing, final_xml or xml, trees)
                if drift not in ("in sync", None):
                    res.messages.append(f"{label}: {drift} since the last define; the running VM "
                                        f"does not have it (`ctys-libvirt diff {label}`)")
                return res
            raise AlreadyRunning(f"{label} is already running (UUID {existing.UUIDString()})",
                                 hint="use --reuse to attach its console, or cancel it first")
        created_target = None
        if is_install:
            created_target = self._prepare_install_target(create_target)
        try:
            self._check_sources(xml, definition_plan)
        except BaseException:
            images.remove_created_target(created_target)
            raise
        messages: List[str] = []
        defined = False
        dom = None
        previous = None    # the definition an install run's define replaced, restored if it fails
        try:
            if options.transient:
                dom = self.conn.createXML(run_xml or xml, 0)
            elif is_install and run_xml is None:
                # old callers: xml is the install run, final_xml the definition
                if existing is not None:
                    previous = existing.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
                dom, defined = self._define_if_changed(existing, final_xml or xml, conf_path, known=trees)
                dom = self.conn.createXML(xml, 0)
            else:
                definition = final_xml or xml
                if is_install and existing is not None:
                    # a failed install run must not leave a rewritten definition behind
                    previous = existing.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
                dom, defined = self._define_if_changed(existing, definition, conf_path, known=trees)
                live = None
                if run_xml is not None and run_xml != definition:
                    from ctys_libvirt.coexist.merge import overlay

                    live = overlay(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), definition, run_xml,
                                   known=trees)
                if dom.hasManagedSaveImage(0):
                    messages.append(f"{label}: resuming from its managed save image"
                                    + ("; this run's one-off choices are not applied" if live else ""))
                    dom.create()
                elif live is not None:
                    dom = self.conn.createXML(live, 0)
                    messages.append("one-off choices apply to this run only; the persistent "
                                    "definition keeps the conf's normal boot")
                else:
                    dom.create()
            if is_install:
                messages.append(f"install domain {name} started (on_reboot=destroy); "
                                f"the persistent definition keeps the normal boot order")
        except libvirt.libvirtError as exc:
            if existing is None and defined:
                self._undefine_quietly(name)  # a failed create leaves nothing behind
            elif previous is not None and defined:
                self._redefine_quietly(previous)   # ... nor a rewritten definition
            images.remove_created_target(created_target)   # ... not even the INIT target it just made
            if _code(exc) == libvirt.VIR_ERR_OPERATION_INVALID and "already" in str(exc):
                raise AlreadyRunning(f"{label} is already running (UUID {uuid})",
                                     hint="use --reuse to attach its console, or cancel it first") from None
            raise self._error(f"starting {label}", exc, failing=True,
                              hint="check the domain XML with `ctys-libvirt xml` and the libvirtd log") from None
        if not self._wait(dom, lambda: self._state(dom)[0] in _ACTIVE_STATES, options.timeout):
            raise CtysTimeout(f"{label} did not reach running within {options.timeout:g}s",
                              hint="see the libvirtd log; raise --timeout")
        res = self._result(dom, console, defined=defined)
        res.install = is_install
        res.created_target = created_target
        res.messages = messages + res.messages
        res.warnings = list(warnings)
        return res

    @staticmethod
    def _drift_of(dom, xml: str, known=None) -> Optional[str]:
        """The definition's drift against the conf's XML (None: cannot tell)."""
        from ctys_libvirt.coexist.merge import assess

        try:
            return assess(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), xml, known=known).drift
        except Exception:       # a report only: never fail the reuse over it
            return None

    def _redefine_quietly(self, xml: str) -> None:
        try:
            self.conn.defineXML(xml)
        except libvirt.libvirtError:
            pass

    def _undefine_quietly(self, name: str) -> None:
        try:
            dom = self.conn.lookupByName(name)
            if not dom.isActive():
                dom.undefine()
        except libvirt.libvirtError:
            pass

    @staticmethod
    def _prepare_install_target(target) -> Optional[str]:
        """STAGE INIT: create a missing install target with qemu-img (never touching one).
        ``target`` is the plan's TargetCreation (path, format, size, mode)."""
        from ctys_libvirt.host import images

        if target is None:
            return None
        created = images.ensure_install_target(
            Path(target.path), target.format, target.size,
            preallocate=(getattr(target, "mode", "") or "").upper() == "HDDDOS",
            owner=getattr(target, "owner", None))
        return str(target.path) if created else None

    def _define_if_changed(self, existing, xml: str, conf_path: Optional[str] = None,
                           prefer: Optional[str] = None, known=None):
        """Persistent define of ``xml`` merged into the existing definition (the admin's
        devices, descriptions, tuning and edits kept; coexist/merge.py); returns
        (domain, defined?).  A field changed on both sides raises ConflictError."""
        from ctys_libvirt.coexist.merge import merge

        old = None
        if existing is not None:
            if existing.hasManagedSaveImage(0):
                # Changing the config under a saved memory image would corrupt the restore.
                return existing, False
            old = existing.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
        res = merge(old, xml, prefer=prefer, conf_path=conf_path, known=known)
        if res.status == "conflict":
            raise conflict_error(existing.name(), res)
        if res.xml is None:
            return existing, False
        try:
            return self.conn.defineXML(res.xml), True
        except libvirt.libvirtError as exc:
            raise self._error("defining the domain", exc,
                              hint="check the XML with `ctys-libvirt xml`") from None

    def _result(self, dom, console: str, *, defined: bool) -> CreateResult:
        facts = domxml.parse(dom.XMLDesc(0))
        st = self.state_text(dom)
        display = facts.vnc_port - VNC_BASEPORT if facts.vnc_port else None
        res = CreateResult(name=dom.name(), uuid=dom.UUIDString(), backend=self.name,
                           state=st, console=console, vnc_display=display,
                           vnc_port=facts.vnc_port, serial=facts.serial_pty,
                           pid=self._pid(dom.name()) if st in ("running", "paused") else None,
                           defined=defined)
        if facts.vnc_port:
            res.messages.append(f"VNC: {facts.vnc_listen or '127.0.0.1'}:{display} "
                                f"(port {facts.vnc_port})")
        if facts.serial_pty:
            res.messages.append(f"serial console: ctys-libvirt console {dom.name()}")
        return res

    def wait_inactive(self, target: str, timeout: float) -> bool:
        """Block until the domain is shut off or gone (e.g. the end of an install run).
        A connection lost meanwhile is the same LibvirtUnavailable a plain create reports."""
        dom = self.require(target)
        try:
            return self._wait(dom, lambda: not self.is_active(dom), timeout)
        except libvirt.libvirtError as exc:
            raise self._error(f"waiting for {target}", exc) from None

    # -- CANCEL ---------------------------------------------------------------------

    def cancel(self, target: str, mode: CancelMode = CancelMode.POWEROFF,
               timeout: float = 20.0) -> CancelResult:
        return self.cancel_domain(self.require(target), CancelMode(mode), timeout)

    def cancel_domain(self, dom, mode: CancelMode, timeout: float = 20.0) -> CancelResult:
        name = dom.name()
        t0 = time.monotonic()
        st, _reason = self._state(dom)
        w = self.watcher  # registered before acting, so no event is missed
        active = st in _ACTIVE_STATES

        def done(action: str, *msgs: str) -> CancelResult:
            return CancelResult(name=name, mode=mode, action=action, state=self.state_text(dom),
                                seconds=round(time.monotonic() - t0, 3), messages=list(msgs))

        try:
            if mode is CancelMode.RESUME:
                if st == libvirt.VIR_DOMAIN_PAUSED:
                    dom.resume()
                    self._wait(dom, lambda: self._state(dom)[0] == libvirt.VIR_DOMAIN_RUNNING, timeout)
                    return done("resumed")
                if not active and dom.isPersistent() and dom.hasManagedSaveImage(0):
                    dom.create()
                    self._wait(dom, lambda: self.is_active(dom), timeout)
                    return done("restored")
                if active:
                    raise BackendError(f"{name} is {self.state_text(dom)}, not paused or saved",
                                       hint="RESUME continues a PAUSEd or SUSPENDed VM")
                raise NotRunning(f"{name} is not paused and has no saved state ({self.state_text(dom)})",
                                 hint=f"start it with `ctys-libvirt create {name}`")
            if not active:
                raise NotRunning(f"{name} is not running ({self.state_text(dom)})",
                                 hint=f"start it with `ctys-libvirt create {name}`")
            if mode is CancelMode.POWEROFF:
                dom.shutdown()
                if w.wait_until(dom.UUIDString(), lambda: not self.is_active(dom), timeout):
                    return done("shutdown", f"{name} shut down by ACPI request")
                dom.destroy()
                self._wait(dom, lambda: not self.is_active(dom), 30)
                return done("destroyed", f"{name} did not shut down within {timeout:g}s; destroyed")
            if mode is CancelMode.FORCE:
                dom.destroy()
                self._wait(dom, lambda: not self.is_active(dom), 30)
                return done("destroyed")
            if mode is CancelMode.RESET:
                dom.reset(0)
                return done("reset")
            if mode is CancelMode.REBOOT:
                dom.reboot(0)
                return done("reboot requested", "the guest decides whether it reboots (ACPI)")
            if mode is CancelMode.PAUSE:
                if st == libvirt.VIR_DOMAIN_PAUSED:
                    return done("paused", f"{name} was already paused")
                dom.suspend()
                self._wait(dom, lambda: self._state(dom)[0] == libvirt.VIR_DOMAIN_PAUSED, timeout)
                return done("paused")
            if mode is CancelMode.SUSPEND:
                if not dom.isPersistent():
                    raise BackendError(f"{name} is transient; SUSPEND needs a persistent domain",
                                       hint="use PAUSE, or create it without --transient")
                dom.managedSave(0)
                self._wait(dom, lambda: not self.is_active(dom), timeout)
                return done("saved", "resume with `cancel --mode RESUME` or `create`")
        except libvirt.libvirtError as exc:
            if _code(exc) == libvirt.VIR_ERR_OPERATION_INVALID and not self.is_active(dom):
                raise NotRunning(f"{name} is not running ({self.state_text(dom)})",
                                 hint=f"start it with `ctys-libvirt create {name}`") from None
            raise self._error(f"{mode.value} of {name}", exc) from None
        raise BackendError(f"unknown cancel mode {mode}")  # pragma: no cover

    # -- LIST -----------------------------------------------------------------------

    # Extra threads for LIST's per-domain XMLDesc calls: each RPC releases the GIL, so
    # a few in flight hide the round trip.  With the calling thread that makes 5, what
    # libvirtd serves of one connection at once (max_client_requests default).
    LIST_THREADS = 4

    def list(self, include_inactive: bool = True, drift: bool = False) -> List[DomainInfo]:
        """Every domain (ours mapped to its conf through metadata, foreign ones too):
        one getAllDomainStats call for the states; the facts of each domain's XML come
        from the list cache (libvirt_listcache: one stat per domain) and only domains
        whose definition changed since the last LIST cost an XMLDesc.

        The XMLs are all fetched first and parsed afterwards: parsing in the fetching
        threads holds the GIL that every returning RPC needs, which costs more than it
        overlaps."""
        from ctys_libvirt.backends.libvirt_listcache import ListCache, to_json

        flags = 0 if include_inactive else libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE
        try:
            stats = self.conn.getAllDomainStats(libvirt.VIR_DOMAIN_STATS_STATE, flags)
        except libvirt.libvirtError as exc:
            raise self._error("listing domains", exc) from None
        host = self.hostname()
        hrx = self.hypervisor_release()
        ns = domxml.METADATA_NS
        users: Dict[int, str] = {}
        groups: Dict[int, str] = {}
        cache = ListCache.open(self.uri)
        # Tens of thousands of short-lived acyclic objects: without this, the cyclic
        # collector runs full passes over the whole heap in the middle of the list.
        gc_was_on = gc.isenabled()
        gc.disable()
        try:
            n = len(stats)
            uuids = [dom.UUIDString() for dom, _ in stats]
            facts: List[Optional[domxml.DomXml]] = [None] * n
            stamps: List[Optional[str]] = [None] * n
            if cache is not None:
                # stat before XMLDesc: a file changing in between leaves an old stamp on
                # new facts (a miss next time), never new stamp on old facts
                for i, (dom, st) in enumerate(stats):
                    active = st.get("state.state", 0) in _ACTIVE_STATES
                    stamps[i] = cache.stamp(dom.name(), active, dom.ID() if active else -1)
                facts = cache.facts_many(uuids, stamps)
            miss = [i for i in range(n) if facts[i] is None]
            for i, xml in zip(miss, self._xml_descs([stats[i][0] for i in miss])):
                if xml is not None:
                    facts[i] = f = domxml.parse(xml, ns)
                    if cache is not None:
                        cache.keep(uuids[i], stamps[i], to_json(f))
            if cache is not None:
                for i in set(range(n)).difference(miss):
                    cache.keep(uuids[i], stamps[i])
            keep = [i for i in range(n) if facts[i] is not None]
            out = [self._info(stats[i][0], stats[i][1], facts[i], host, hrx, users, groups)
                   for i in keep]
            transient, autostart = self._flag_sets()
            for i in out:
                key = i.uuid.replace("-", "").lower()
                i.persistent, i.autostart = key not in transient, key in autostart
            if drift:
                self._drift(out, [stats[i][0] for i in keep], [uuids[i] for i in keep], cache)
        finally:
            if gc_was_on:
                gc.enable()
        if cache is not None:
            cache.save()
        out.sort(key=lambda i: (i.state not in ("running", "paused"), i.name))
        return out

    def _drift(self, infos, doms, uuids, cache) -> None:
        """Fill ``info.drift`` of our domains (coexist/drift.py) from the definition's
        XML; a drift the list cache holds for the same definition and conf stamps is
        taken as it is."""
        ours = [i for i, info in enumerate(infos) if info.ours]
        keys = {}
        if cache is not None:
            for i in ours:
                keys[i] = k = cache.drift_key(infos[i].name, bool(infos[i].persistent),
                                              infos[i].conf_path, self.uri)
                d = cache.drift(uuids[i], k)
                if d is not None:
                    infos[i].drift = d
        todo = [i for i in ours if infos[i].drift is None]
        if not todo:
            return
        from ctys_libvirt.coexist import fields as F       # lxml: only when something changed
        from ctys_libvirt.coexist.drift import DriftChecker

        inactive = dict(zip(todo, self._xml_descs([doms[i] for i in todo],
                                                  libvirt.VIR_DOMAIN_XML_INACTIVE)))
        caps_box = []

        def conf_digests(path: str):
            from ctys_libvirt.coexist.merge import context
            from ctys_libvirt.conf import load_conf
            from ctys_libvirt.host.caps import libvirt_host_caps
            from ctys_libvirt.host.facts import host_facts
            from ctys_libvirt.translate.xml import build_domain

            if not caps_box:
                caps_box.append(host_facts(libvirt_host_caps(self.conn)))
            vm = load_conf(path)
            from ctys_libvirt.coexist.merge import complete

            gen = complete(build_domain(vm, normal_request(vm), caps_box[0], CreateOptions()).tree)
            return {n: F.digest(v) for n, v in F.values(gen, context(gen, None)).items()}

        checker = DriftChecker(conf_digests, caps_key=self.uri)
        try:
            for i in todo:
                xml = inactive.get(i)
                if xml is None:
                    continue
                infos[i].drift = d = checker.drift(xml, infos[i].conf_path, infos[i].conf_sha256)
                if cache is not None:
                    cache.set_drift(uuids[i], keys.get(i), d)
        finally:
            checker.close()

    def _flag_sets(self):
        """UUIDs (32 hex) of the transient and of the autostarted domains: two calls
        for the whole list instead of two per domain (both sets are usually small)."""
        def uuids(flag):
            try:
                return {d.UUIDString().replace("-", "").lower() for d in self.conn.listAllDomains(flag)}
            except libvirt.libvirtError as exc:
                raise self._error("listing domains", exc) from None

        return (uuids(libvirt.VIR_CONNECT_LIST_DOMAINS_TRANSIENT),
                uuids(libvirt.VIR_CONNECT_LIST_DOMAINS_AUTOSTART))

    def _xml_descs(self, doms, flags: int = 0) -> List[Optional[str]]:
        """XMLDesc(0) of each domain (None: it vanished since it was listed, e.g. a
        transient domain that ended), fetched by LIST_THREADS + 1 threads."""
        xmls: List[Optional[str]] = [None] * len(doms)
        errors: List[BaseException] = []
        todo = iter(range(len(doms)))  # next() on a range iterator is atomic under the GIL

        def fetch() -> None:
            for i in todo:
                try:
                    xmls[i] = doms[i].XMLDesc(flags)
                except libvirt.libvirtError:
                    pass

        def worker() -> None:
            try:
                fetch()
            except BaseException as exc:  # re-raised in the caller's thread
                errors.append(exc)

        threads = [threading.Thread(target=worker, daemon=True)
                   for _ in range(min(self.LIST_THREADS, len(doms) // 16))]
        for t in threads:
            t.start()
        fetch()  # an exception here (Ctrl-C) propagates at once; the daemons die with us
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        return xmls

    def lookup(self, target: str) -> Optional[DomainInfo]:
        dom = self.domain(target)
        if dom is None:
            return None
        st, reason = self._state(dom)
        info = self._info(dom, {"state.state": st, "state.reason": reason},
                          domxml.parse(dom.XMLDesc(0), domxml.METADATA_NS), self.hostname(),
                          self.hypervisor_release(), {}, {})
        try:
            info.persistent, info.autostart = bool(dom.isPersistent()), bool(dom.autostart())
        except libvirt.libvirtError:
            pass                # it just went away: the facts stay unknown (None)
        return info

    def _info(self, dom, st, f: "domxml.DomXml", host, hrx, users, groups) -> DomainInfo:
        state = st.get("state.state", libvirt.VIR_DOMAIN_NOSTATE)
        active = state in _ACTIVE_STATES
        name = f.name or dom.name()
        info = DomainInfo(name=name, uuid=f.uuid, state=STATE_NAMES.get(state, str(state)),
                          backend=self.name, host=host, ours=f.ours, label=name, mac=f.mac,
                          hypervisor="QEMU", accelerator="KVM" if f.dom_type == "kvm" else "QEMU",
                          arch=f.arch or None,
                          memory_mib=(f.memory_kib // 1024) if f.memory_kib else None,
                          vcpus=f.vcpus)
        if active:
            info.domain_id = dom.ID()
            info.vnc_port = f.vnc_port
            info.vnc_display = f.vnc_port - VNC_BASEPORT if f.vnc_port else None
            info.pid = self._pid(name)
            if f.serial_pty:
                info.extra["sport"] = f.serial_pty
            if f.ifname:
                info.extra["ifname"] = f.ifname
            if info.pid:
                try:
                    s = os.stat(f"/proc/{info.pid}")
                    info.user = users.get(s.st_uid) or users.setdefault(s.st_uid, _uname(s.st_uid))
                    info.extra["group"] = groups.get(s.st_gid) or groups.setdefault(s.st_gid, _gname(s.st_gid))
                except OSError:
                    pass
        info.console = _console_kind(f)
        if f.emulator:
            info.extra["emulator"] = f.emulator
        if hrx:
            info.extra["hyperrelrun"] = hrx
        if f.ours:
            meta = f.meta
            info.conf_path = domxml.meta_value(meta, "conf_path", "conf")
            info.conf_sha256 = domxml.meta_value(meta, "conf_sha256", "sha256")
            info.label = domxml.meta_value(meta, "label") or info.label
            keys = meta.get("keys")
            if isinstance(keys, dict):
                info.ip = keys.get("IP0") or None
            if isinstance(meta.get("console"), str) and meta["console"]:
                info.console = meta["console"]
            if meta.get("phase"):
                info.extra["phase"] = str(meta["phase"])
        return info

    # -- INFO -----------------------------------------------------------------------

    def info(self) -> Dict[str, object]:
        """Host and hypervisor facts for `ctys-libvirt info`."""
        from lxml import etree

        def ver(v: int) -> str:
            return f"{v // 1000000}.{(v // 1000) % 1000}.{v % 1000}"

        conn = self.conn
        caps = etree.fromstring(conn.getCapabilities().encode())
        guests = []
        domain_types = set()
        for g in caps.iterfind("guest"):
            arch = g.find("arch")
            if arch is None:
                continue
            types = sorted({d.get("type") for d in arch.iterfind("domain")})
            domain_types.update(types)
            guests.append({"os_type": g.findtext("os_type"), "arch": arch.get("name"),
                           "emulator": arch.findtext("emulator"), "domain_types": types,
                           "machines": sorted({m.text for m in arch.iterfind("machine") if m.text})[:8]})
        doms = conn.listAllDomains(0)
        # one call, not isActive() per domain: a transient domain ending meanwhile is no error
        active = len(conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE))
        ours = 0
        for d in doms:
            try:
                d.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, domxml.METADATA_NS, 0)
                ours += 1
            except libvirt.libvirtError:
                pass
        kvm_dev = os.path.exists("/dev/kvm")
        return {
            "uri": conn.getURI(),
            "hostname": self.hostname(),
            "libvirt_version": ver(conn.getLibVersion()),
            "hypervisor": conn.getType(),
            "hypervisor_version": ver(conn.getVersion()),
            "host_arch": caps.findtext("host/cpu/arch"),
            "kvm_device": kvm_dev,
            "kvm_usable": "kvm" in domain_types,
            "domain_types": sorted(domain_types),
            "guests": guests,
            "domains": {"total": len(doms), "active": active, "inactive": len(doms) - active,
                        "ours": ours},
        }


def normal_request(vm: VmConfig, allow_argsadd=(), allow_devices=()) -> BootRequest:
    """The conf's normal boot: its DEFAULTBOOTMODE and DEFAULTCONSOLE, nothing one-off.
    ``allow_argsadd``/``allow_devices``: what the user allowed for this conf (they concern
    the conf's own ARGSADD and media, so the definition keeps them)."""
    from ctys_libvirt.translate.request import make_request

    allow = dict(allow_argsadd=tuple(allow_argsadd), allow_devices=tuple(allow_devices))
    try:
        return make_request(console=vm.default_console or None, **allow)
    except Exception:       # a DEFAULTCONSOLE the request parser refuses: VNC, as without one
        return make_request(**allow)


def definition_options(options: CreateOptions) -> CreateOptions:
    """What of a create's options goes into the persistent definition: not the serial
    log file (a run's choice)."""
    from dataclasses import replace

    return replace(options, serial_log=None) if getattr(options, "serial_log", None) else options


def conflict_error(name: str, res) -> ConflictError:
    parts = [f"{f.name}: conf {f.conf!r} vs domain {f.domain!r}" for f in res.conflicts]
    return ConflictError(
        f"{name}: the conf and the libvirt definition both changed since the last define: "
        + "; ".join(parts),
        hint=f"`ctys-libvirt diff {name}` shows them; `ctys-libvirt sync {name} --prefer conf` "
             "or `--prefer domain` settles it",
        fields=res.conflicts)


def _console_kind(f: "domxml.DomXml") -> Optional[str]:
    if f.graphics == "vnc":
        return "VNC"
    if f.graphics == "sdl":
        return "SDL"
    if "pty" in f.serial_types:
        return "CLI"
    return "NONE"


def _uname(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _gname(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)
