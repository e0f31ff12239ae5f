"""ENUMERATE as one library call: scan base paths, build the 47-field records, filter by
VMSTATE, optionally refresh the inventory DB (atomic replace per base path).

Speed (design.md §8: not noticeably slower than ``find | xargs grep``): a cold scan of a big
tree is split over forked children; with a scan cache (``cache_dir``; the CLIs use
``~/.cache/ctys-libvirt``) unchanged directories are not listed again and unchanged confs
are not read again - stat keys decide, and entries changed within ``RACY_NS`` of the caching
scan are never trusted (timestamp granularity)."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple, Union

from ctys_libvirt.ctys.enum_record import fields_of, join_record, vmstate_of
from ctys_libvirt.inventory.record import conf_lines, host_facts, record_lines
from ctys_libvirt.inventory.scan import (
    ScanResult, _base_files, _read_ahead, _scan_files, iter_ctys_files, normalize_base,
    read_ahead_threads, read_bytes, conf_order, key_file_of, split_units,
    with_layout_0107,
)

PathLike = Union[str, Path]

DEFAULT_VSTATES = ("ACTIVE", "DISABLED", "EMPTY")


class EnumerateResult:
    """What ENUMERATE found: ``records`` (47 fields each) and the same as ``lines`` (record
    lines as ``join_record`` writes them).  Scans fill the lines, the records are split from
    them on first use: the records format prints 10,000 lines without splitting them."""

    def __init__(self, records: Optional[List[List[str]]] = None) -> None:
        self._records = records
        self._lines: Optional[List[str]] = [] if records is None else None
        self.warnings: List[str] = []
        self.vms = 0
        self.files_seen = 0
        self.db_path: Optional[Path] = None

    @property
    def records(self) -> List[List[str]]:
        if self._records is None:
            self._records = [fields_of(line) for line in self._lines or ()]
        return self._records

    @records.setter
    def records(self, value: List[List[str]]) -> None:
        self._records, self._lines = value, None

    @property
    def lines(self) -> List[str]:
        if self._lines is None:
            self._lines = [join_record(r) for r in self._records or ()]
        return self._lines


def vmstate_filter(matchvstat: Sequence[str]):
    """MATCHVSTAT list -> predicate on field 19 (default ACTIVE|DISABLED|empty).  ALL only
    lifts the hypervisor-availability filter (ctys-cli.md), which we never apply, so on its
    own it keeps the default states; PRESENT is every state."""
    words = [w.upper() for w in matchvstat or ()]
    if "PRESENT" in words:
        return lambda v: True
    if not [w for w in words if w not in ("ALL", "CUSTOM")]:
        words = list(DEFAULT_VSTATES)
    allowed = set()
    for w in words:
        if w == "EMPTY":
            allowed.add("")
        elif w == "ENABLED":
            allowed.add("ACTIVE")   # the hypervisor is usable wherever we run
        elif w not in ("ALL", "CUSTOM"):
            allowed.add(w)
    return lambda v: v.upper() in allowed


def require_bases(bases: Sequence[PathLike], hint: str) -> None:
    """Each local base path must exist: a typo'd one is 'not found' (exit 2), not an empty
    scan (the scan itself only warns per base, so one bad base never aborts the others)."""
    from ctys_libvirt.errors import NotFoundError

    for b in bases:
        if not os.path.exists(os.path.expanduser(str(b))):
            raise NotFoundError(f"base path {b} does not exist", hint=hint)


def default_jobs() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        n = os.cpu_count() or 1
    return max(1, min(n, 4))


def _worker_init() -> None:
    """A forked worker dies of SIGTERM (not the CLI's handler that turns it into an
    interrupt) and leaves Ctrl-C to the parent."""
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # Ctrl-C is the parent's to handle


def _scan_forked(chunks: list) -> list:
    """``_scan_unit`` of every chunk, the first in this process and each other one in a
    forked child that sends its result back through a pipe (one fork per extra core, no
    pool: its threads and queues cost more than a 10,000-conf scan's second half takes).
    A child that fails has its chunk scanned here instead.  The result (lists, tuples and
    strings) travels as ``marshal`` data: 3x faster to write than a pickle, and no
    ``import pickle`` (~2 ms) on the way."""
    import marshal

    kids = []
    for args in chunks[1:]:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:                                 # child: scan, send, never return
            code = 1
            try:
                os.close(r)
                _worker_init()
                data = marshal.dumps(_scan_unit(args))
                with os.fdopen(w, "wb") as fh:
                    fh.write(data)
                code = 0
            finally:
                os._exit(code)
        os.close(w)
        kids.append((pid, r, args))
    try:
        parts = [_scan_unit(chunks[0])]
        for pid, r, args in kids:
            with os.fdopen(r, "rb") as fh:
                data = fh.read()
            _, status = os.waitpid(pid, 0)
            # our own child's data through a private pipe (never a file others could write)
            parts.append(marshal.loads(data) if status == 0 and data else _scan_unit(args))
        kids = []
        return parts
    finally:        # interrupted: a child writing to a closed pipe ends; reap it
        for pid, r, _ in kids:
            try:
                os.close(r)
            except OSError:
                pass
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass


def _scan_unit(args):
    """Worker: scan some subtrees (and loose files) -> [(conf path, record lines, VMSTATE)]
    (all states); one text per VM crosses the process boundary ~5x faster than 47 strings."""
    dirs, files, include_ignored, full, context, host, read_threads = args
    if not (full or include_ignored):
        warnings: List[str] = []
        per_vm: list = []
        seen_set: set = set()
        n = _scan_lines(files, per_vm, warnings, seen_set, host, read_threads) if files else 0
        for d in dirs:
            n += _scan_lines(iter_ctys_files(d, warnings), per_vm, warnings, seen_set, host,
                             read_threads)
        return per_vm, warnings, n
    res = ScanResult()
    seen: set = set()
    opts = dict(include_ignored=include_ignored, full=full, context=context, record_keys=True,
                read_threads=read_threads)
    if files:
        _scan_files(files, res, seen, **opts)
    for d in dirs:
        _scan_files(iter_ctys_files(d, res.warnings), res, seen, **opts)
    return _with_states(res.headers, host), res.warnings, res.files_seen


def _scan_lines(files: Iterable[str], out: list, warnings: List[str], seen: set,
                host: Optional[str], read_threads: int = 0) -> int:
    """``_scan_files`` + ``record_lines`` for the records (not ``full``, no ignored confs),
    straight from each file's bytes to its record lines (``conf_lines``): appends
    (path, lines, VMSTATE) to ``out`` and returns the number of files looked at.  ``files`` are
    absolute, normalized paths (the walk's), so no ``abspath`` per file."""
    n = 0
    last_ds: Tuple[str, str] = ("", "")
    last_path = ""
    reads = _read_ahead(files, read_threads) if read_threads > 1 else ((p, None) for p in files)
    for path, data in reads:
        n += 1
        if path in seen:  # overlapping bases
            continue
        seen.add(path)
        try:
            if data is None:
                data = read_bytes(path)
            elif isinstance(data, OSError):
                raise data
        except OSError as exc:
            warnings.append(f"cannot read {path}: {exc.strerror or exc}")
            continue
        got = conf_lines(path, data, host=host)
        if got is None:
            continue
        ds = _stem_of(path)
        if _redundant(path, ds, last_ds, last_path, warnings):
            continue
        last_ds = ds
        last_path = path
        out.append((path, *got))
    return n


def _stem_of(path: str) -> Tuple[str, str]:
    head, _, name = path.rpartition("/")
    return head, name.split(".", 1)[0]


def _redundant(path: str, ds: Tuple[str, str], last_ds: Tuple[str, str], last_path: str,
               warnings: List[str]) -> bool:
    """A conf with the same directory and stem as the previous one is skipped (ctys's
    Configuration-Redundancy), silently when it is that conf's key file."""
    if ds != last_ds:
        return False
    if not key_file_of(path, last_path):
        warnings.append(f"Configuration-Redundancy: {path} has the same stem as the previous "
                        f"conf in {os.path.dirname(path)}; skipped")
    return True


def _with_states(headers, host: Optional[str]) -> list:
    """[(path, record lines, VMSTATE)] of headers (the form every scan returns)."""
    out = []
    for h in headers:
        lines = record_lines(h, host=host)
        out.append((h.path, lines, _state_of(lines)))
    return out


def _state_of(lines: str) -> str:
    """The VMSTATE of a VM's record lines: the same in every record of one VM (one per
    interface), so the first line's."""
    nl = lines.find("\n")
    return vmstate_of(lines if nl < 0 else lines[:nl])


# ---------------------------------------------------------------------------
# scan cache: finished record lines per conf, keyed by (mtime_ns, size, inode, ctime_ns)
# ---------------------------------------------------------------------------

CACHE_VERSION = 3          # 3: SQLite (was a pickle: never unpickle a file others may write)
RACY_NS = 2_000_000_000   # entries changed this close before the caching scan are re-read
_DIRS_KEY = "\0dirs"   # entry of the cache dict holding the directory listings


def default_cache_dir() -> Path:
    env = os.environ.get("CTYS_SCAN_CACHE_DIR")
    if env:
        return Path(env)
    from ctys_libvirt.util.paths import user_cache_dir

    return user_cache_dir()


def _cache_file(cache_dir: PathLike, base: str, host: Optional[str]) -> Path:
    ident = "\0".join((base, host or "", *host_facts())).encode("utf-8", "surrogateescape")
    try:    # CPython's own SHA-1, the same digest: hashlib loads OpenSSL first (~3 ms)
        from _sha1 import sha1
    except ImportError:  # pragma: no cover - another interpreter
        from hashlib import sha1

    return Path(cache_dir) / f"scan-{sha1(ident).hexdigest()[:16]}.sqlite"


# One SQLite file per (base, host): data only, nothing in it is ever executed.  Rewritten
# whole into a temp file and renamed, so concurrent scans never see half a cache.
_SCHEMA = """
CREATE TABLE meta (v INTEGER, base TEXT, time INTEGER);
CREATE TABLE confs (path TEXT, key TEXT, lines TEXT);
CREATE TABLE dirs (path TEXT, key TEXT, subdirs TEXT, confs TEXT);
"""
# Stat keys are kept as text ("mtime size ino ctime") and the names of a directory as one
# '/'-joined string (a file name never holds '/'): three columns load as fast as the pickle did.


def _load_cache(path: Path, base: str):
    """(entries, time_ns of the scan that wrote them)."""
    import sqlite3
    from urllib.parse import quote

    try:
        con = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)
    except sqlite3.Error:
        return {}, 0
    try:
        meta = con.execute("SELECT v, base, time FROM meta").fetchone()
        if not meta or meta[0] != CACHE_VERSION or meta[1] != base:
            return {}, 0
        entries: dict = {p: (k, lines) for p, k, lines in con.execute("SELECT * FROM confs")}
        entries[_DIRS_KEY] = {p: (k, sd, cf) for p, k, sd, cf in con.execute("SELECT * FROM dirs")}
        return entries, int(meta[2])
    except (sqlite3.Error, TypeError, ValueError):  # a damaged cache is just a cold cache
        return {}, 0
    finally:
        con.close()


def _save_cache(path: Path, base: str, entries: dict, stamp: int) -> None:
    home = os.path.expanduser("~")
    if not os.path.isdir(home) and str(path).startswith(home.rstrip("/") + "/"):
        return  # HOME=/nonexistent (daemons, nobody): never create a home to cache in
    from ctys_libvirt.util.scratchdb import write_replacing

    def fill(con) -> None:
        for stmt in filter(None, (q.strip() for q in _SCHEMA.split(";"))):
            con.execute(stmt)
        con.execute("INSERT INTO meta VALUES (?, ?, ?)", (CACHE_VERSION, base, stamp))
        dirs = entries.get(_DIRS_KEY, {})
        con.executemany("INSERT INTO confs VALUES (?, ?, ?)",
                        [(p, e[0], e[1]) for p, e in entries.items() if p != _DIRS_KEY])
        con.executemany("INSERT INTO dirs VALUES (?, ?, ?, ?)",
                        [(p, *e) for p, e in dirs.items()])

    write_replacing(path, fill)


def _cached_items(paths, old: dict, racy: int, host: Optional[str], warnings: List[str]):
    """[(path, stat key, record lines or None)] for conf paths; cache hits are not read."""
    items = []
    misses = 0
    stat = os.stat
    for path in paths:
        try:
            st = stat(path)
        except OSError as exc:
            warnings.append(f"cannot read {path}: {exc.strerror or exc}")
            continue
        key = f"{st.st_mtime_ns} {st.st_size} {st.st_ino} {st.st_ctime_ns}"
        hit = old.get(path)
        if hit is not None and hit[0] == key and st.st_mtime_ns < racy and st.st_ctime_ns < racy:
            lines = hit[1]
        else:
            misses += 1
            try:
                data = read_bytes(path)
            except OSError as exc:
                warnings.append(f"cannot read {path}: {exc.strerror or exc}")
                continue
            got = conf_lines(path, data, host=host)
            lines = None if got is None else got[0]
        items.append((path, key, lines))
    return items, misses


def _walk_cached(base: str, olddirs: dict, racy: int, newdirs: dict, warnings: List[str]):
    """``*.ctys`` paths below ``base`` like ``iter_ctys_entries``, but a directory whose stat
    key (mtime/inode/ctime: any entry added, removed or renamed changes it) is unchanged
    since the last scan is not listed again: its subdirectories and conf names come from the
    cache (git's untracked-cache idea).  Costs one stat instead of a directory read."""
    stack = [base]
    pop, push, stat = stack.pop, stack.append, os.stat
    while stack:
        d = pop()
        try:
            st = stat(d)
        except OSError as exc:
            warnings.append(f"cannot read directory {d}: {exc.strerror or exc}")
            continue
        dkey = f"{st.st_mtime_ns} {st.st_ino} {st.st_ctime_ns}"
        hit = olddirs.get(d)
        if hit is not None and hit[0] == dkey and st.st_mtime_ns < racy and st.st_ctime_ns < racy:
            subdirs, confs = hit[1], hit[2]
            newdirs[d] = hit
            subdirs = subdirs.split("/") if subdirs else ()
            confs = confs.split("/") if confs else ()
        else:
            subdirs, confs, legacy = [], [], []
            try:
                with os.scandir(d) as it:
                    for e in it:
                        try:
                            if e.is_dir(follow_symlinks=False):
                                subdirs.append(e.name)
                            elif e.name.endswith(".ctys") and e.is_file():
                                confs.append(e.name)
                            elif e.name.endswith(".conf") and e.is_file():
                                legacy.append(e.name)
                        except OSError as exc:
                            warnings.append(f"cannot stat {e.path}: {exc.strerror or exc}")
            except OSError as exc:
                warnings.append(f"cannot read directory {d}: {exc.strerror or exc}")
                continue
            confs = with_layout_0107(confs, legacy, name=str)
            confs.sort(key=conf_order)
            newdirs[d] = (dkey, "/".join(subdirs), "/".join(confs))
        prefix = d if d.endswith("/") else d + "/"
        for name in subdirs:
            push(prefix + name)
        for name in confs:
            yield prefix + name


def _scan_base_cached(base: str, cache_dir: PathLike, host: Optional[str]):
    """Like the plain scan, but a conf whose stat key is unchanged since the last scan is
    not read again: its finished record lines come from the cache."""
    warnings: List[str] = []
    if os.path.isfile(base) and base.endswith((".ctys", ".conf")):
        res = ScanResult()
        _scan_files([base], res, set(), include_ignored=False, full=False, context=None,
                    record_keys=True)
        return _with_states(res.headers, host), res.warnings, res.files_seen
    if not os.path.isdir(base):
        return [], [f"base path {base} does not exist or is not a directory"], 0
    cfile = _cache_file(cache_dir, base, host)
    old, stamp = _load_cache(cfile, base)
    # "racy" entries: a file changed within 2 s before the scan that cached it may change again
    # inside one timestamp tick without a visible stat difference -> never trust those
    racy = stamp - RACY_NS
    now = time.time_ns()
    # (one process: a forked walk was measured slower here - pool start-up and pickling
    # the results cost more than the walk it splits)
    olddirs = old.pop(_DIRS_KEY, {})
    newdirs: dict = {}
    items, misses = _cached_items(_walk_cached(base, olddirs, racy, newdirs, warnings),
                                  old, racy, host, warnings)
    if newdirs != olddirs:
        misses += 1
    new: dict = {}
    per_vm = []
    last = ("", "")
    last_path = ""
    for path, key, lines in items:
        new[path] = (key, lines)
        if lines is None:
            continue
        ds = _stem_of(path)
        if _redundant(path, ds, last, last_path, warnings):
            continue
        last = ds
        last_path = path
        per_vm.append((path, lines, _state_of(lines)))
    if misses or len(new) != len(old):
        new[_DIRS_KEY] = newdirs
        _save_cache(cfile, base, new, now)
    per_vm.sort()
    return per_vm, warnings, len(items)


def _scan_base(base: str, *, jobs: int, include_ignored: bool, full: bool, context, host,
               cache_dir: Optional[PathLike] = None):
    """([(conf path, record lines, VMSTATE)] sorted by path, warnings, files seen) for one base path.
    With ``cache_dir`` unchanged confs are not re-read; otherwise big trees are cut into
    subtrees scanned by ``jobs`` forked workers (walk, reads, regexes and records in parallel)."""
    if cache_dir is not None and not full and not include_ignored:
        return _scan_base_cached(base, cache_dir, host)
    read_threads = read_ahead_threads(base)
    if jobs > 1 and os.path.isdir(base) and threading.active_count() == 1:
        dirs, files = split_units(base, want=jobs * 8)
        if len(dirs) >= jobs * 4:
            chunks = [(dirs[i::jobs], files if i == 0 else [], include_ignored, full, context, host,
                       read_threads) for i in range(jobs)]
            parts = _scan_forked(chunks)
            per_vm, warnings, seen = [], [], 0
            for vms, warns, n in parts:
                per_vm.extend(vms)
                warnings.extend(warns)
                seen += n
            per_vm.sort()
            return per_vm, warnings, seen
    return _scan_serial(base, include_ignored, full, context, host, read_threads)


def _scan_serial(base: str, include_ignored: bool, full: bool, context, host, read_threads: int = 0):
    if not (full or include_ignored):
        res = ScanResult()
        files = _base_files(base, res)
        per_vm: list = []
        n = 0
        if files is not None:
            n = _scan_lines(files, per_vm, res.warnings, set(), host, read_threads)
        per_vm.sort()
        return per_vm, res.warnings, n
    res = ScanResult()
    files = _base_files(base, res)
    if files is not None:
        _scan_files(files, res, set(), include_ignored=include_ignored, full=full, context=context,
                    record_keys=True, read_threads=read_threads)
    res.headers.sort(key=lambda h: h.path)
    return _with_states(res.headers, host), res.warnings, res.files_seen


def enumerate_local(
    bases: Sequence[PathLike] = (),
    *,
    full: bool = False,
    matchvstat: Sequence[str] = (),
    update_db: bool = False,
    db: Optional[PathLike] = None,
    host: Optional[str] = None,
    include_ignored: bool = False,
    context=None,
    jobs: Optional[int] = None,
    cache_dir: Optional[PathLike] = None,
) -> EnumerateResult:
    """Scan ``bases`` (default ``$HOME``) and return the records (canonical order).

    The DB (with ``update_db``) gets every VM found, whatever its VMSTATE; ``matchvstat``
    only filters the returned records.  ``cache_dir``: keep finished records of unchanged
    confs there (stat key mtime/size/inode/ctime), so rescans only read what changed."""
    res = EnumerateResult()
    blist = [normalize_base(b) for b in bases] or [os.path.expanduser("~")]
    keep = vmstate_filter(matchvstat)
    jobs = default_jobs() if jobs is None else max(1, jobs)
    store = None
    if update_db:    # (sqlite3 is imported only for the DB: --no-cache never needs it)
        from ctys_libvirt.inventory.store import Store, default_db_path

        store = Store(db if db is not None else default_db_path())
        res.db_path = store.path
        res.warnings.extend(store.warnings)
    seen_paths: set = set()
    out = res.lines
    try:
        for base in blist:
            per_vm, warnings, nseen = _scan_base(base, jobs=jobs, include_ignored=include_ignored,
                                                 full=full, context=context, host=host,
                                                 cache_dir=cache_dir)
            res.warnings.extend(warnings)
            res.files_seen += nseen
            if seen_paths:
                per_vm = [pv for pv in per_vm if pv[0] not in seen_paths]  # overlapping bases
            if len(blist) > 1:
                seen_paths.update(pv[0] for pv in per_vm)
            res.vms += len(per_vm)
            append, extend = out.append, out.extend
            for _, lines, state in per_vm:
                # (the records of one VM, one per interface, share its VMSTATE)
                if keep(state):
                    if "\n" in lines:
                        extend(lines.split("\n"))
                    else:
                        append(lines)
            if store is not None and os.path.isdir(base):
                storable = []
                for path, lines, _ in per_vm:
                    rs = [fields_of(line) for line in lines.split("\n")]
                    if _utf8_ok(rs):
                        storable.extend(rs)
                    else:   # SQLite text must be UTF-8; such a file name cannot be stored
                        res.warnings.append(f"{path!r}: path or values are not valid "
                                            "UTF-8; not stored in the inventory (rename it)")
                store.replace_records(base, storable)
    finally:
        if store is not None:
            store.close()
    return res


def _utf8_ok(records) -> bool:
    try:
        for r in records:
            ";".join(r).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def records_from_db(db: Optional[PathLike] = None, *, under: Sequence[PathLike] = ()) -> EnumerateResult:
    """The stored records (no scan), optionally only those below ``under``."""
    from ctys_libvirt.inventory.store import Store, default_db_path

    store = Store(db if db is not None else default_db_path())
    res = EnumerateResult(records=[])
    res.db_path = store.path
    res.warnings.extend(store.warnings)
    try:
        recs = store.all_records()
    finally:
        store.close()
    blist = [normalize_base(b).rstrip("/") + "/" for b in under]
    if blist:
        recs = [r for r in recs if any(r[3].startswith(b) for b in blist)]
    res.records = recs
    res.vms = len({r[3] for r in recs})
    return res
