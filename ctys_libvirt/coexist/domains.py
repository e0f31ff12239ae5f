"""The definition verbs on one libvirt connection: define (bulk), undefine, start,
autostart, show, diff, sync.  Returns typed results; never prints.

Bulk define is one process and one connection: the confs are translated in the calling
thread (pure Python: threads would only contend for the GIL) while worker threads do
the libvirt calls, whose RPCs release the GIL and overlap on the daemon."""
from __future__ import annotations

import os
import queue
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import libvirt

from ctys_libvirt.backends import libvirt_domxml as domxml
from ctys_libvirt.backends.libvirt import (LibvirtBackend, conflict_error, definition_options,
                                           label_lock, normal_request)
from ctys_libvirt.coexist import fields as F
from ctys_libvirt.coexist.merge import CONFLICT, MergeResult, assess, merge, read_baseline
from ctys_libvirt.errors import (BackendError, ConflictError, CtysError, NotFoundError,
                                 UsageError)
from ctys_libvirt.model import CreateOptions, DefineResult, VmConfig

DEFINE_THREADS = 4
# Batches from this size translate in forked processes too (a fork costs a few ms; the
# translation of one conf about 1.5 ms of pure Python).  CTYS_DEFINE_PROCS=1 turns it off.
PROCESS_MIN = 48
_DEFINER: "Optional[Definer]" = None     # the batch's Definer, inherited by forked children


def _translate_one(item):
    """In a forked child: (index, translated Job or None, (exit code, reason) or None)."""
    i, address = item
    job = Job(i, address)
    try:
        _DEFINER.translate(job)
    except CtysError as exc:
        return i, None, (exc.exit_code, exc.one_line())
    except OSError as exc:
        return i, None, (4, f"{address}: {exc.strerror or exc} (check the path and its permissions)")
    return i, job, None


@dataclass
class Job:
    """One conf of a batch: where it came from and, once read, its VM and XML."""

    index: int
    address: str
    vm: Optional[VmConfig] = None
    xml: Optional[str] = None
    tree: object = None                 # the tree ``xml`` was serialized from (no re-parse)
    warnings: Tuple[str, ...] = ()
    uuid_generated: bool = False


def row_error(address: str, exc: BaseException, vm: Optional[VmConfig] = None) -> DefineResult:
    code = exc.exit_code if isinstance(exc, CtysError) else 4
    text = exc.one_line() if isinstance(exc, CtysError) else f"{type(exc).__name__}: {exc}"
    status = "conflict" if isinstance(exc, ConflictError) else "error"
    return DefineResult(address=address, status=status, name=vm.label if vm else None,
                        uuid=vm.uuid_dashed if vm else None,
                        conf_path=str(vm.source_path) if vm else None, reason=text, exit_code=code)


def _fields(res: MergeResult) -> List[Dict[str, str]]:
    return [{"name": f.name, "conf": f.conf, "domain": f.domain, "state": f.state,
             "written": "yes" if f.written else "no"} for f in res.fields]


class Definer:
    """define/sync of many confs on one backend connection."""

    def __init__(self, be: LibvirtBackend, options: Optional[CreateOptions] = None, *,
                 prefer: Optional[str] = None, dry_run: bool = False, repoint: bool = False,
                 threads: int = DEFINE_THREADS, allow_argsadd: Sequence[str] = ()):
        from ctys_libvirt.host.caps import libvirt_host_caps
        from ctys_libvirt.host.facts import host_facts

        self.be = be
        self.options = definition_options(options or CreateOptions())
        self.prefer = prefer
        self.dry_run = dry_run
        self.repoint = repoint
        self.threads = max(1, threads)
        self.allow_argsadd = tuple(allow_argsadd)    # --allow-argsadd, for every conf of the batch
        self.caps = libvirt_host_caps(be.conn)
        self.facts = host_facts(self.caps)
        self._names: Dict[str, "libvirt.virDomain"] = {}
        self._uuids: Dict[str, "libvirt.virDomain"] = {}
        for d in be.conn.listAllDomains(0):
            self._names[d.name()] = d
            self._uuids[d.UUIDString().replace("-", "")] = d

    # -- translation (calling thread) ------------------------------------------------

    def translate(self, job: Job) -> None:
        from ctys_libvirt.conf import load_conf
        from ctys_libvirt.translate.xml import build_domain

        if job.vm is None:
            job.vm = load_conf(job.address)
        b = build_domain(job.vm, normal_request(job.vm, self.allow_argsadd), self.facts, self.options)
        self.be._lint(b, self.caps, self.options)
        job.xml, job.tree = b.xml, b.tree
        job.warnings = tuple(b.warnings)
        job.uuid_generated = bool(b.plan.uuid_generated)

    # -- libvirt (worker threads) ----------------------------------------------------

    def apply(self, job: Job) -> DefineResult:
        vm = job.vm
        name = vm.label
        uuid = job.tree.findtext("uuid")
        conf_path = os.path.abspath(str(vm.source_path))
        row = DefineResult(address=job.address, status="", name=name, uuid=uuid, conf_path=conf_path,
                           messages=list(job.warnings))
        with label_lock(name):
            if name not in self._names and uuid.replace("-", "") not in self._uuids:
                existing = None     # absent when the batch began: no lookups needed
            else:
                existing = self._clash(name, uuid, conf_path, job.uuid_generated)
            old = None
            if existing is not None:
                if existing.hasManagedSaveImage(0):
                    row.status, row.reason = "unchanged", "has a managed save image; not redefined"
                    return row
                old = existing.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
            res = merge(old, job.xml, prefer=self.prefer, conf_path=conf_path, known={job.xml: job.tree})
            row.fields = _fields(res)
            row.drift = res.drift
            if res.status == "conflict":
                err = conflict_error(name, res)
                row.status, row.reason, row.exit_code = "conflict", err.one_line(), err.exit_code
                return row
            written = [f.name for f in res.fields if f.written]
            kept = [f.name for f in res.fields if f.state in ("domain edited",) and not f.written]
            if res.status == "defined":
                row.reason = "new definition"
            elif res.status == "updated":
                row.reason = ("conf fields written: " + ", ".join(written)) if written else "metadata refreshed"
            else:
                row.reason = "definition matches the conf"
            if kept:
                row.reason += "; kept the domain's edits of " + ", ".join(kept) + \
                    f" (settle with `ctys-libvirt sync {name} --prefer conf|domain`)"
            if self.dry_run:
                row.status = res.status if res.status == "unchanged" else f"would be {res.status}"
                return row
            row.status = res.status
            if res.xml is not None:
                try:
                    self.be.conn.defineXML(res.xml)
                except libvirt.libvirtError as exc:
                    raise self.be._error(f"defining {name}", exc,
                                         hint="check the XML with `ctys-libvirt xml`") from None
        return row

    @staticmethod
    def _processes(n: int) -> int:
        env = os.environ.get("CTYS_DEFINE_PROCS")
        if env and env.isdigit():
            return max(1, int(env))
        if n < PROCESS_MIN:
            return 1
        # one core stays with the libvirt worker threads (measured on 2 cores: no gain)
        return max(1, min((os.cpu_count() or 1) - 1, 4))

    def _clash(self, name, uuid, conf_path, generated):
        return self.be._check_clash(name, uuid, conf_path=None if self.repoint else conf_path,
                                    uuid_generated=generated)

    # -- the batch -------------------------------------------------------------------

    def run(self, addresses: Sequence[str], vms: Optional[Sequence[Optional[VmConfig]]] = None,
            on_row: Optional[Callable[[DefineResult], None]] = None) -> List[DefineResult]:
        """One row per address, in order; a broken conf is an error row, never the end
        of the batch.  ``on_row`` sees each row as soon as it is known."""
        rows: List[Optional[DefineResult]] = [None] * len(addresses)
        todo: "queue.Queue[Optional[Job]]" = queue.Queue(maxsize=64)
        lock = threading.Lock()

        def done(i: int, row: DefineResult) -> None:
            rows[i] = row
            if on_row is not None:
                with lock:
                    on_row(row)

        def worker() -> None:
            while True:
                job = todo.get()
                if job is None:
                    return
                try:
                    done(job.index, self.apply(job))
                except BaseException as exc:   # one VM's failure is its row
                    done(job.index, row_error(job.address, exc, job.vm))

        pool = None
        procs = self._processes(len(addresses)) if vms is None else 1
        if procs > 1:
            # forked before any worker thread exists; children never touch libvirt
            import multiprocessing

            global _DEFINER
            _DEFINER = self
            pool = multiprocessing.get_context("fork").Pool(procs)
        workers = [threading.Thread(target=worker, daemon=True)
                   for _ in range(min(self.threads, max(1, len(addresses))))]
        for t in workers:
            t.start()
        try:
            if pool is not None:
                for i, job, err in pool.imap_unordered(_translate_one, enumerate(addresses), chunksize=8):
                    if err is None:
                        todo.put(job)
                    else:
                        done(i, DefineResult(address=addresses[i], status="error", reason=err[1],
                                             exit_code=err[0]))
            for i, a in enumerate(addresses if pool is None else ()):
                job = Job(i, a, vm=vms[i] if vms else None)
                try:
                    self.translate(job)
                except CtysError as exc:
                    done(i, row_error(a, exc, job.vm))
                    continue
                except OSError as exc:
                    done(i, row_error(a, BackendError(f"{a}: {exc.strerror or exc}",
                                                       hint="check the path and its permissions"), job.vm))
                    continue
                todo.put(job)
        finally:
            if pool is not None:
                pool.close()
                pool.join()
            for _ in workers:
                todo.put(None)
            for t in workers:
                t.join()
        return [r for r in rows if r is not None]


def exit_code(rows: Iterable[DefineResult]) -> int:
    """0 when every row succeeded, else the exit code of the first failed row."""
    for r in rows:
        if r.status in ("error", "conflict"):
            return r.exit_code or 4
    return 0


# -- single-domain verbs ----------------------------------------------------------------

def resolve_domain(be: LibvirtBackend, address: str, load: Callable[[str], VmConfig]):
    """(domain, vm or None): ADDRESS as a domain name/UUID first, else as a conf whose
    LABEL/UUID names a domain.  The conf of one of our domains comes from its metadata."""
    dom = be.domain(address)
    vm = None
    if dom is None:
        vm = load(address)
        dom = be.domain(vm.label) or (be.domain(vm.uuid) if vm.uuid else None)
        if dom is None:
            raise NotFoundError(f"{vm.label} ({vm.source_path}) has no domain",
                                hint=f"define it with `ctys-libvirt define {address}`")
    return dom, vm


def conf_of(dom) -> Optional[str]:
    facts = domxml.parse(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    return domxml.meta_value(facts.meta, "conf_path", "conf") if facts.ours else None


def undefine(be: LibvirtBackend, dom) -> str:
    """Remove the persistent definition; disk images are never deleted (libvirt does not
    touch storage on undefine).  A running domain keeps running, as transient."""
    name = dom.name()
    if not dom.isPersistent():
        raise BackendError(f"{name} is transient; there is no definition to remove",
                           hint="stop it with `ctys-libvirt cancel`")
    flags = libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
    try:
        dom.undefineFlags(flags)
    except libvirt.libvirtError as exc:
        raise be._error(f"undefining {name}", exc) from None
    return "undefined (images kept)" + ("; still running until it stops" if be.is_active(dom) else "")


def start(be: LibvirtBackend, dom, timeout: float = 60.0) -> str:
    """Boot the definition as it is (virsh start)."""
    name = dom.name()
    if be.is_active(dom):
        from ctys_libvirt.errors import AlreadyRunning

        raise AlreadyRunning(f"{name} is already running", hint="cancel it first")
    w = be.watcher
    try:
        dom.create()
    except libvirt.libvirtError as exc:
        raise be._error(f"starting {name}", exc, hint="see the libvirtd log") from None
    if not w.wait_until(dom.UUIDString(), lambda: be.is_active(dom), timeout):
        from ctys_libvirt.errors import CtysTimeout

        raise CtysTimeout(f"{name} did not reach running within {timeout:g}s", hint="raise --timeout")
    return be.state_text(dom)


def autostart(be: LibvirtBackend, dom, on: bool) -> str:
    try:
        dom.setAutostart(1 if on else 0)
    except libvirt.libvirtError as exc:
        raise be._error(f"setting autostart of {dom.name()}", exc) from None
    return "on" if on else "off"


def generated(be: LibvirtBackend, vm: VmConfig):
    """The DomainBuild of ``vm``'s normal boot on ``be``'s host; callers hand assess
    ``{build.xml: build.tree}`` so it copies the tree instead of parsing the text."""
    from ctys_libvirt.host.caps import libvirt_host_caps
    from ctys_libvirt.host.facts import host_facts
    from ctys_libvirt.translate.xml import build_domain

    return build_domain(vm, normal_request(vm), host_facts(libvirt_host_caps(be.conn)), CreateOptions())


def diff(be: LibvirtBackend, dom, vm: VmConfig) -> Dict[str, object]:
    """Per conf-owned field: the conf's value, the definition's, the running domain's
    and the state; plus the admin's own additions (kept on every define)."""
    b = generated(be, vm)
    known = {b.xml: b.tree}
    inactive = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    res = assess(inactive, b.xml, known=known)
    running = {}
    if be.is_active(dom):
        live = F.parse(dom.XMLDesc(0))
        from ctys_libvirt.coexist.merge import context

        ctx = context(F.parse(b.xml, known), read_baseline(F.parse(inactive)))
        running = F.values(live, ctx)
    return {"name": dom.name(), "conf_path": str(vm.source_path), "drift": res.drift,
            "fields": [{"name": f.name, "conf": f.conf, "definition": f.domain,
                        "running": running.get(f.name), "state": f.state} for f in res.fields],
            "kept": res.kept}


def drift_of(be: LibvirtBackend, dom, vm: Optional[VmConfig]) -> str:
    if vm is None:
        return "conf missing"
    b = generated(be, vm)
    return assess(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), b.xml, known={b.xml: b.tree}).drift


def show(be: LibvirtBackend, dom, load: Callable[[str], VmConfig]) -> Dict[str, object]:
    """A dominfo for our VMs: conf, domain, state, drift, console, VNC, backend."""
    info = be.lookup(dom.name())
    conf = info.conf_path if info is not None else None
    vm, conf_state = None, "-" if not (info and info.ours) else "missing"
    if conf and os.path.exists(conf):
        try:
            vm = load(conf)
            conf_state = "ok"
        except CtysError as exc:
            conf_state = f"unreadable: {exc.one_line()}"
    drift = "-"
    if info is not None and info.ours:
        drift = drift_of(be, dom, vm) if vm is not None or conf_state == "missing" else "conf unreadable"
    try:
        auto = bool(dom.autostart())
    except libvirt.libvirtError:
        auto = False
    return {
        "name": dom.name(), "uuid": dom.UUIDString(), "state": be.state_text(dom),
        "ours": bool(info and info.ours), "conf": conf, "conf_state": conf_state, "drift": drift,
        "persistent": bool(dom.isPersistent()), "autostart": auto,
        "console": info.console if info else None,
        "vnc": (f"127.0.0.1:{info.vnc_display} (port {info.vnc_port})" if info and info.vnc_port else None),
        "mac": info.mac if info else None, "memory_mib": info.memory_mib if info else None,
        "vcpus": info.vcpus if info else None, "pid": info.pid if info else None,
        "backend": be.name, "uri": be.uri,
    }


def sync(be: LibvirtBackend, address: str, load: Callable[[str], VmConfig], *,
         prefer: Optional[str] = None, dry_run: bool = False,
         allow_argsadd: Sequence[str] = ()) -> DefineResult:
    """Bring conf and definition together again.

    * always: re-point a definition whose conf moved (a conf without #@#UUID gets the
      domain's UUID written into it, so its identity no longer depends on its path);
    * ``prefer='conf'``: the conf's value wins in every differing field;
    * ``prefer='domain'``: the definition's value wins: written back into the conf where
      the field is a simple assignment (MEMSIZE, SMP, CPU, TIMEOPT, MAC0/NIC, VGADRIVER,
      ACCELERATOR), otherwise accepted as the new baseline (the conf keeps its text and
      the row says so);
    * neither: the conf's changes are applied, conflicts reported (like define)."""
    from ctys_libvirt.coexist import confedit
    from ctys_libvirt.coexist.confmap import from_domain, writable_fields

    if prefer not in (None, "conf", "domain"):
        raise UsageError(f"unknown --prefer {prefer!r}", hint="use conf or domain")
    named = be.domain(address)
    if named is not None and conf_of(named):
        address = conf_of(named)      # a domain of ours named by name/UUID: its conf
    vm = load(address)
    path = os.path.abspath(str(vm.source_path))
    dom = be.domain(vm.label)
    notes: List[str] = []
    assignments: Dict[str, str] = {}
    keys: Dict[str, str] = {}
    if dom is not None:
        inactive = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
        facts = domxml.parse(inactive)
        if not facts.ours:
            raise BackendError(f"domain {vm.label} was not defined by ctys-libvirt",
                               hint="it is left untouched; rename the conf's LABEL or remove that domain yourself")
        old_path = domxml.meta_value(facts.meta, "conf_path", "conf")
        if old_path and old_path != path:
            notes.append(f"definition re-pointed from {old_path} to {path}")
        if not vm.uuid:
            keys["UUID"] = facts.uuid.replace("-", "")
            notes.append(f"the conf had no #@#UUID; the domain's {facts.uuid} written into it")
        if prefer == "domain":
            b = generated(be, replace(vm, uuid=facts.uuid.replace("-", "")))
            res = assess(inactive, b.xml, known={b.xml: b.tree})
            vals = from_domain(F.parse(inactive))
            for f in res.fields:
                if f.state == "in sync" or f.conf == f.domain:
                    continue
                if f.name not in writable_fields():
                    notes.append(f"{f.name}: the domain's {f.domain!r} kept as the new baseline "
                                 f"(not a simple conf assignment; the conf still says {f.conf!r})")
                    continue
                for var in vals.by_field.get(f.name, []):
                    if var.startswith("#@#"):
                        keys[var[3:]] = vals.keys[var[3:]]
                    else:
                        assignments[var] = vals.vars[var]
                if f.name == "clock" and "TIMEOPT" not in vals.vars:
                    assignments["TIMEOPT"] = "-localtime"
    if assignments or keys:
        with open(path, encoding="utf-8", errors="surrogateescape", newline="") as fh:
            text = fh.read()
        new, changes, refused = confedit.apply(text, assignments, keys)
        notes += [f"conf {c}" for c in changes] + [f"not written: {r}" for r in refused]
        if not dry_run and new != text:
            confedit.write_atomically(path, new)
            vm = load(path)
        elif dry_run and "UUID" in keys:
            vm = replace(vm, uuid=keys["UUID"])
    definer = Definer(be, prefer=prefer, dry_run=dry_run, repoint=True, allow_argsadd=allow_argsadd)
    row = definer.run([path], [vm])[0]
    row.address = address
    row.messages = notes + row.messages
    return row
