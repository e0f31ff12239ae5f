"""Drift of our domains for LIST: in sync / conf changed / domain edited / conflict /
conf missing, without re-translating unchanged confs on every call.

The definition side compares the definition's conf-owned field values with the digests
of our last define (its baseline); that needs only the XML LIST already has.  The conf
side needs the conf's field values: a conf whose bytes still hash to the sha256 of the
last define is unchanged; otherwise it is translated once and its field digests are kept
in a small SQLite cache keyed by (path, device, inode, size, mtime_ns), so the next LIST
only stats it."""
from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Callable, Dict, Optional, Set

from ctys_libvirt.coexist import fields as F
from ctys_libvirt.coexist.merge import CONFLICT, CONF_CHANGED, DOMAIN_EDITED, read_baseline, summarize

CONF_MISSING = "conf missing"
UNTRACKED = "untracked"          # defined by a version that kept no baseline


def cache_path() -> Path:
    env = os.environ.get("CTYS_DRIFT_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "ctys-libvirt" / "drift.sqlite"


class DriftCache:
    """Two tables, read whole on first use (LIST asks for every domain anyway):

    confs: path -> (stat key, sha256, caps, conf field digests as JSON or NULL = as at
           the last define);
    defs:  sha1 of a definition's XML -> (its baseline as JSON, its edited fields as
           JSON): a definition nobody touched is not parsed again."""

    MAX_DEFS = 20000

    def __init__(self, path: Optional[Path] = None):
        self.path = Path(path or cache_path())
        self.db: Optional[sqlite3.Connection] = None
        self.confs: Optional[dict] = None
        self.defs: Optional[dict] = None
        self._new_confs: dict = {}
        self._new_defs: dict = {}

    def _load(self) -> None:
        if self.confs is not None:
            return
        self.confs, self.defs = {}, {}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.db = sqlite3.connect(str(self.path), timeout=5)
            self.db.execute("CREATE TABLE IF NOT EXISTS confs (path TEXT PRIMARY KEY, "
                            "stat TEXT NOT NULL, sha256 TEXT NOT NULL, caps TEXT NOT NULL, digests TEXT)")
            self.db.execute("CREATE TABLE IF NOT EXISTS defs (xml TEXT PRIMARY KEY, "
                            "baseline TEXT, edited TEXT NOT NULL)")
            for path, st, sha, caps, dg in self.db.execute("SELECT * FROM confs"):
                self.confs[path] = (st, sha, caps, dg)
            for key, base, edited in self.db.execute("SELECT * FROM defs"):
                self.defs[key] = (base, edited)
        except sqlite3.Error:
            self.db = None      # a cache we cannot use costs time, never correctness

    def get(self, path: str, stat_key: str, caps: str):
        self._load()
        row = self.confs.get(path)
        if row is None or row[0] != stat_key or row[2] != caps:
            return None
        return row[1], (json.loads(row[3]) if row[3] else None)

    def put(self, path: str, stat_key: str, sha: str, caps: str, digests: Optional[Dict[str, str]]) -> None:
        self._load()
        row = (stat_key, sha, caps, json.dumps(digests) if digests is not None else None)
        self.confs[path] = self._new_confs[path] = row

    def get_def(self, key: str):
        self._load()
        return self.defs.get(key)

    def put_def(self, key: str, baseline: Optional[str], edited: str) -> None:
        self._load()
        self.defs[key] = self._new_defs[key] = (baseline, edited)

    def close(self) -> None:
        if self.db is None:
            return
        try:
            if self._new_confs or self._new_defs:
                with self.db:
                    if len(self.defs) > self.MAX_DEFS:
                        self.db.execute("DELETE FROM defs")
                    self.db.executemany("INSERT OR REPLACE INTO confs VALUES (?,?,?,?,?)",
                                        [(k,) + v for k, v in self._new_confs.items()])
                    self.db.executemany("INSERT OR REPLACE INTO defs VALUES (?,?,?)",
                                        [(k,) + v for k, v in self._new_defs.items()])
            self.db.close()
        except sqlite3.Error:
            pass
        self.db = None


def _stat_key(st: os.stat_result) -> str:
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


def _sha256(path: str) -> str:
    import hashlib

    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def domain_edits(root, base) -> Dict[str, str]:
    """{field: the definition's digest now} of the fields edited since the baseline."""
    ctx = F.Context(base.targets, base.macs)
    out = {}
    for name, (_c, d) in base.fields.items():
        if name in F.CONF_FIELDS:
            now = F.digest(F.value(root, name, ctx))
            if now != d:
                out[name] = now
    return out


class DriftChecker:
    """Drift of each of our domains; ``conf_digests(path)`` translates a changed conf
    (given by the caller: it needs the host's capabilities)."""

    def __init__(self, conf_digests: Callable[[str], Dict[str, str]], caps_key: str = "",
                 cache: Optional[DriftCache] = None):
        self.conf_digests = conf_digests
        self.caps_key = caps_key
        self.cache = cache if cache is not None else DriftCache()

    def conf_changes(self, path: str, recorded_sha: Optional[str], fields) -> Optional[Dict[str, str]]:
        """{field: the conf's digest now} of the fields whose conf value changed since the
        baseline; None: the conf is missing."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        key = _stat_key(st)
        hit = self.cache.get(path, key, self.caps_key)
        if hit is not None:
            sha, digests = hit
        else:
            try:
                sha = _sha256(path)
            except OSError:
                return None
            digests = None
            if sha != recorded_sha:
                try:
                    digests = self.conf_digests(path)
                except Exception:          # a conf that no longer reads: every field changed
                    digests = {}
            self.cache.put(path, key, sha, self.caps_key, digests)
        if digests is None:
            if sha == recorded_sha:
                return {}
            try:
                digests = self.conf_digests(path)
            except Exception:
                digests = {}
            self.cache.put(path, key, sha, self.caps_key, digests)
        return {n: digests.get(n, "") for n, (c, _d) in fields.items() if digests.get(n) != c}

    def drift(self, xml: str, conf_path: Optional[str], recorded_sha: Optional[str]) -> str:
        """The drift of the definition ``xml`` (inactive) made from ``conf_path``."""
        import hashlib

        key = hashlib.sha1(xml.encode("utf-8", "surrogateescape")).hexdigest()
        hit = self.cache.get_def(key)
        if hit is None:
            root = F.parse(xml)
            base = read_baseline(root)
            fields = base.fields if base is not None and base.fields else None
            dom = domain_edits(root, base) if fields else {}
            self.cache.put_def(key, json.dumps(fields) if fields else None, json.dumps(dom))
        else:
            fields = json.loads(hit[0]) if hit[0] else None
            dom = json.loads(hit[1])
        if not conf_path:
            return CONF_MISSING
        if fields is None:
            return UNTRACKED if os.path.exists(conf_path) else CONF_MISSING
        conf = self.conf_changes(conf_path, recorded_sha, fields)
        if conf is None:
            return CONF_MISSING
        states = []
        for n, c in conf.items():
            if n not in dom:
                states.append(CONF_CHANGED)
            elif dom[n] != c:
                states.append(CONFLICT)        # both changed, to different values
        states += [DOMAIN_EDITED for n in dom if n not in conf]
        return summarize(states)

    def close(self) -> None:
        self.cache.close()
