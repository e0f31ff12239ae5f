"""LIST without one ``XMLDesc`` per domain per call: the parsed facts of each domain's XML
(and its drift) kept per UUID in a small SQLite file, keyed by a cheap stamp of the
definition.

libvirt has no "definition changed" counter, but on a local connection the QEMU driver
writes every definition to ``<config dir>/NAME.xml`` and every running domain's live XML to
``<state dir>/NAME.xml``, each time through a temp file and a rename: the stat of that file
(inode, size, mtime, ctime) changes whenever the XML that ``XMLDesc`` would return changes
(``virsh define`` of an edited XML, start, stop, device hot-plug, ...).  One ``stat`` per
domain instead of one RPC plus one XML parse.

Where those files cannot be seen (remote URIs, unreadable directories, a domain whose file
is missing) there is no stamp and LIST asks libvirt as before: the cache only ever saves
time, it never answers without a fresh stamp.  A file changed within ``RACY_NS`` of the LIST
that cached it may change again inside one timestamp tick, so such entries are not trusted
(the scan cache's rule)."""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import astuple, fields
from pathlib import Path
from typing import Dict, Optional, Tuple

from ctys_libvirt.backends.libvirt_domxml import DomXml

CACHE_VERSION = 1
RACY_NS = 2_000_000_000
_FIELDS = [f.name for f in fields(DomXml)]


def driver_dirs(uri: str) -> Optional[Tuple[str, str]]:
    """(config dir, state dir) of the local QEMU driver behind ``uri``; None when the
    files are not ours to see (remote, or not readable by this user)."""
    if uri in ("qemu:///system", "qemu+unix:///system"):
        dirs = ("/etc/libvirt/qemu", "/run/libvirt/qemu")
    elif uri in ("qemu:///session", "qemu+unix:///session"):
        cfg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
        rt = os.environ.get("XDG_RUNTIME_DIR")
        if not rt:
            return None
        dirs = (os.path.join(cfg, "libvirt", "qemu"), os.path.join(rt, "libvirt", "qemu", "run"))
    else:
        return None
    if all(os.access(d, os.R_OK | os.X_OK) for d in dirs):
        return dirs
    return None


def file_stamp(path: str, racy: int) -> Optional[str]:
    """Stat key of ``path``; None when missing or changed too recently to trust."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if st.st_mtime_ns >= racy or st.st_ctime_ns >= racy:
        return None
    return f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"


def conf_stamp(path: Optional[str], racy: int) -> Optional[str]:
    """Stat key of a conf for the drift entry ('-' when missing: its drift is 'conf missing'
    until the file appears, which changes the key); None: changed too recently to trust."""
    if not path:
        return "-"
    try:
        st = os.stat(path)
    except OSError:
        return "-"
    if st.st_mtime_ns >= racy or st.st_ctime_ns >= racy:
        return None
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"


def default_path(uri: str) -> Path:
    env = os.environ.get("CTYS_LIST_CACHE_DIR")
    if env:
        base = Path(env)
    else:
        from ctys_libvirt.util.paths import user_cache_dir

        base = user_cache_dir()
    ident = f"{uri}\0{os.uname().nodename}".encode()
    return base / f"domains-{hashlib.sha1(ident).hexdigest()[:16]}.sqlite"


def to_json(d: DomXml) -> str:
    return json.dumps(astuple(d), separators=(",", ":"))


def from_json(text: str) -> DomXml:
    return _from_values(json.loads(text))


def _from_values(vals) -> DomXml:
    if len(vals) != len(_FIELDS):
        raise ValueError("cached facts of another layout")
    d = DomXml.__new__(DomXml)      # the values were a DomXml's: no defaults to fill
    d.__dict__.update(zip(_FIELDS, vals))
    d.serial_types = tuple(d.serial_types or ())
    return d


class ListCache:
    """uuid -> (stamp, DomXml as JSON, drift key, drift).  Loaded whole (one query) and
    written back whole into a temp file renamed into place when anything changed, so two
    concurrent LISTs never see half a cache; the last writer wins, which only costs speed."""

    def __init__(self, path: Path, dirs: Tuple[str, str]):
        self.path = path
        self.config_dir, self.state_dir = dirs
        self.now = time.time_ns()
        self.racy = self.now - RACY_NS
        self.old: Dict[str, tuple] = {}
        self.new: Dict[str, tuple] = {}
        self.changed = False
        self._load()

    @classmethod
    def open(cls, uri: str) -> Optional["ListCache"]:
        if os.environ.get("CTYS_LIST_CACHE") == "0":
            return None
        dirs = driver_dirs(uri)
        if dirs is None:
            return None
        return cls(default_path(uri), dirs)

    def _load(self) -> None:
        import sqlite3
        from urllib.parse import quote

        try:
            con = sqlite3.connect(f"file:{quote(str(self.path))}?mode=ro", uri=True)
        except sqlite3.Error:
            return
        try:
            v = con.execute("SELECT v FROM meta").fetchone()
            if v and v[0] == CACHE_VERSION:
                self.old = {r[0]: r[1:] for r in con.execute("SELECT * FROM doms")}
        except sqlite3.Error:
            self.old = {}           # a damaged cache is a cold cache
        finally:
            con.close()

    def stamp(self, name: str, active: bool, dom_id: int) -> Optional[str]:
        """Cheap key of the XML ``XMLDesc(0)`` returns now: the live XML's file (and the
        domain ID) for a running domain, the definition's file for a shut-off one."""
        if active:
            s = file_stamp(os.path.join(self.state_dir, name + ".xml"), self.racy)
            return None if s is None else f"a{dom_id}:{s}"
        s = file_stamp(os.path.join(self.config_dir, name + ".xml"), self.racy)
        return None if s is None else f"i:{s}"

    def definition_stamp(self, name: str, persistent: bool) -> Optional[str]:
        """Key of ``XMLDesc(INACTIVE)``: the definition file (a transient domain's
        definition is its live XML)."""
        d = self.config_dir if persistent else self.state_dir
        return file_stamp(os.path.join(d, name + ".xml"), self.racy)

    def facts(self, uuid: str, stamp: Optional[str]) -> Optional[DomXml]:
        row = self.old.get(uuid)
        if stamp is None or row is None or row[0] != stamp:
            return None
        try:
            return from_json(row[1])
        except (ValueError, TypeError):
            return None

    def facts_many(self, uuids, stamps) -> list:
        """``facts`` for many domains; the hits are decoded by one JSON call (a call per
        domain costs more than the decoding)."""
        old = self.old
        hits = [i for i, (u, s) in enumerate(zip(uuids, stamps))
                if s is not None and u in old and old[u][0] == s]
        out: list = [None] * len(uuids)
        try:
            vals = json.loads("[" + ",".join(old[uuids[i]][1] for i in hits) + "]")
        except (ValueError, TypeError):
            return out
        for i, v in zip(hits, vals):
            try:
                out[i] = _from_values(v)
            except (TypeError, ValueError):
                pass
        return out

    def drift(self, uuid: str, key: Optional[str]) -> Optional[str]:
        row = self.new.get(uuid) or self.old.get(uuid)
        if key is None or row is None or row[2] != key:
            return None
        return row[3]

    def keep(self, uuid: str, stamp: Optional[str], facts_json: Optional[str] = None) -> None:
        """Carry the entry of ``uuid`` into the new cache (with fresh facts if given)."""
        if stamp is None:
            return
        old = self.old.get(uuid)
        if facts_json is None:
            if old is None:
                return
            self.new[uuid] = old
        else:       # the drift columns check their own key
            self.new[uuid] = (stamp, facts_json) + (old[2:] if old else (None, None))
            self.changed = True

    def drift_key(self, name: str, persistent: bool, conf_path: Optional[str],
                  caps_key: str) -> Optional[str]:
        d = self.definition_stamp(name, persistent)
        c = conf_stamp(conf_path, self.racy)
        return None if d is None or c is None else f"{d}|{c}|{caps_key}"

    def set_drift(self, uuid: str, key: Optional[str], drift: str) -> None:
        row = self.new.get(uuid)
        if key is None or row is None:
            return
        if row[2:] != (key, drift):
            self.new[uuid] = (row[0], row[1], key, drift)
            self.changed = True

    def save(self) -> None:
        if not self.changed and len(self.new) == len(self.old):
            return
        from ctys_libvirt.util.scratchdb import write_replacing

        def fill(con) -> None:
            con.execute("CREATE TABLE meta (v INTEGER)")
            con.execute("CREATE TABLE doms (uuid TEXT, stamp TEXT, facts TEXT, dkey TEXT, drift TEXT)")
            con.execute("INSERT INTO meta VALUES (?)", (CACHE_VERSION,))
            con.executemany("INSERT INTO doms VALUES (?, ?, ?, ?, ?)",
                            [(u, *row) for u, row in self.new.items()])

        write_replacing(self.path, fill, dir_mode=0o700)
