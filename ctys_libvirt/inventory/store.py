"""Inventory store: SQLite in WAL mode, one row per VM (plus one per interface for lookups).

* ``replace_base(base, headers)`` swaps every VM below ``base`` for the new scan result in one
  short ``BEGIN IMMEDIATE`` transaction: readers see the old or the new set, never a mix.
* WAL + ``busy_timeout`` let concurrent scans and readers proceed without corrupting or
  blocking each other for long (the scan itself runs outside any transaction).
* A file that is not a usable SQLite DB is renamed aside (``*.corrupt-<time>``) and rebuilt;
  the caller gets the warning in ``Store.warnings`` (the library never prints).
* Export/import of the legacy ``enum.fdb`` (47 ``;`` fields) and ``macmap.fdb``
  (``name;MAC;IP``).
"""
from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple, Union

from ctys_libvirt.errors import BackendError, ConfError, NotFoundError, UsageError
from ctys_libvirt.ctys.enum_record import F_ID, F_LABEL, F_MAC, F_TCP, F_UUID, join_record, split_record
from ctys_libvirt.inventory.record import header_records
from ctys_libvirt.inventory.scan import ConfHeader, stem_of

PathLike = Union[str, Path]

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 10000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS vms (
    rowid_    INTEGER PRIMARY KEY,
    path      TEXT NOT NULL UNIQUE,
    label     TEXT NOT NULL,
    uuid      TEXT NOT NULL,
    stem      TEXT NOT NULL,
    dirname   TEXT NOT NULL,
    host      TEXT NOT NULL,
    records   TEXT NOT NULL,
    scanned   REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS vms_label ON vms(label);
CREATE INDEX IF NOT EXISTS vms_uuid ON vms(uuid);
CREATE INDEX IF NOT EXISTS vms_stem ON vms(stem);
CREATE INDEX IF NOT EXISTS vms_dirname ON vms(dirname);
CREATE TABLE IF NOT EXISTS ifaces (
    path TEXT NOT NULL REFERENCES vms(path) ON DELETE CASCADE,
    mac  TEXT NOT NULL,
    ip   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ifaces_mac ON ifaces(mac);
CREATE INDEX IF NOT EXISTS ifaces_ip ON ifaces(ip);
CREATE INDEX IF NOT EXISTS ifaces_path ON ifaces(path);
CREATE TABLE IF NOT EXISTS macmap (name TEXT NOT NULL, mac TEXT NOT NULL, ip TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS macmap_mac ON macmap(mac);
"""


def default_db_path() -> Path:
    env = os.environ.get("CTYS_INVENTORY_DB")
    if env:
        return Path(env)
    return Path(os.path.expanduser("~")) / ".ctys" / "db" / "default" / "inventory.sqlite"


_DB_SUFFIXES = (".sqlite", ".sqlite3", ".db")


@dataclass
class VmRow:
    path: str
    label: str
    uuid: str
    host: str
    records: List[List[str]]



def _read_fdb(path: PathLike, what: str) -> str:
    """A legacy ``*.fdb`` file's text; unreadable -> ConfError naming it."""
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ConfError(f"cannot read {path}: {exc.strerror or exc}",
                        hint=f"check the {what} path") from None

class Store:
    """An open inventory database.  Use as a context manager or call ``close()``."""

    def __init__(self, path: PathLike, *, create: bool = True):
        self.path = Path(path)
        self.warnings: List[str] = []
        if create:
            self._make_parent()
        try:
            self.conn = self._connect()
        except sqlite3.DatabaseError as exc:
            if not create:
                raise
            self._check_ours(exc)
            self._set_aside(exc)
            self.conn = self._connect()

    # -- opening -------------------------------------------------------------

    @classmethod
    def open_existing(cls, path: PathLike) -> Optional["Store"]:
        """Open for lookups only; None when the DB is missing or unusable (never raises)."""
        if not Path(path).exists():
            return None
        try:
            return cls(path, create=False)
        except (sqlite3.Error, OSError):
            return None

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_MS / 1000,
                               isolation_level=None, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.DatabaseError(f"cannot switch to WAL (journal_mode={mode})")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            # touches the header and every schema page: catches 'file is not a database'
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            conn.executescript(_SCHEMA)
            row = conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is None:
                conn.execute("INSERT OR REPLACE INTO meta VALUES('schema', ?)", (str(SCHEMA_VERSION),))
            elif row[0] != str(SCHEMA_VERSION):
                raise sqlite3.DatabaseError(f"unknown inventory schema version {row[0]}")
            conn.execute("SELECT count(*) FROM vms").fetchone()
        except BaseException:
            conn.close()
            raise
        return conn

    def _make_parent(self) -> None:
        """Create the DB's missing directories (~/.ctys/db/default), but never a new
        top-level directory: HOME=/nonexistent or --db /typo/x.sqlite is an error."""
        parent = self.path.parent
        if parent.is_dir():
            return
        anc = parent
        while not anc.exists() and anc.parent != anc:
            anc = anc.parent
        if anc.parent == anc:
            raise NotFoundError(f"directory {parent} of the inventory database does not exist",
                                hint="create it, or pass --db with a path in an existing directory")
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BackendError(f"cannot create {parent}: {exc.strerror or exc}",
                               hint="check its permissions, or pass --db FILE") from None

    def _check_ours(self, exc: Exception) -> None:
        """Only a file that is plausibly an inventory DB may be moved aside and rebuilt: an
        SQLite file or a *.sqlite/*.sqlite3/*.db name (the default is inventory.sqlite).
        Anything else (``--db /etc/passwd``, CTYS_INVENTORY_DB=/etc/hostname) is the user's
        file and stays exactly where it is."""
        try:
            with open(self.path, "rb") as fh:
                head = fh.read(16)
        except OSError:
            head = b""
        if head.startswith(b"SQLite format 3") or self.path.suffix.lower() in _DB_SUFFIXES:
            return
        raise UsageError(f"{self.path} is not an inventory database ({exc}); not touching it",
                         hint="pass --db with a *.sqlite path (a missing file is created)")

    def _set_aside(self, exc: Exception) -> None:
        stamp = time.strftime("%Y%m%d%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        try:
            os.replace(self.path, aside)
            for suffix in ("-wal", "-shm"):
                side = Path(str(self.path) + suffix)
                if side.exists():
                    os.replace(side, Path(str(aside) + suffix))
        except OSError as err:
            raise BackendError(f"inventory database {self.path} is unusable ({exc}) and cannot be "
                               f"moved aside: {err.strerror or err}",
                               hint="remove the file or pass --db PATH") from None
        self.warnings.append(f"inventory database {self.path} was unusable ({exc}); moved to "
                             f"{aside} and rebuilt empty (run 'ctys-libvirt enumerate --update-db')")

    def close(self) -> None:
        try:
            self.conn.close()
        except sqlite3.Error:
            pass

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- writing -------------------------------------------------------------

    def replace_base(self, base: PathLike, headers: Sequence[ConfHeader],
                     *, host: Optional[str] = None) -> int:
        """Atomically replace every VM whose conf lies under ``base`` with ``headers``."""
        rows = [self._row(h, host) for h in headers]
        return self._replace(os.path.abspath(os.fspath(base)), rows)

    def replace_records(self, base: PathLike, records: Iterable[Sequence[str]]) -> int:
        """Like ``replace_base`` from ready 47-field records (enum.fdb import, remote scans)."""
        by_path = {}
        for r in records:
            by_path.setdefault(r[F_ID - 1], []).append(list(r))
        rows = [(p, rs[0][F_LABEL - 1], rs[0][F_UUID - 1].replace("-", "").lower(),
                 stem_of(p), os.path.basename(os.path.dirname(p)), rs[0][0],
                 "\n".join(join_record(x) for x in rs),
                 [(x[F_MAC - 1].lower(), x[F_TCP - 1]) for x in rs])
                for p, rs in by_path.items()]
        return self._replace(os.fspath(base), rows)

    @staticmethod
    def _row(h: ConfHeader, host: Optional[str]):
        recs = header_records(h, host=host)
        return (h.path, recs[0][F_LABEL - 1], recs[0][F_UUID - 1].lower(), h.stem,
                os.path.basename(os.path.dirname(h.path)), recs[0][0],
                "\n".join(join_record(r) for r in recs),
                [(r[F_MAC - 1].lower(), r[F_TCP - 1]) for r in recs])

    def _replace(self, base: str, rows) -> int:
        now = time.time()
        prefix = base.rstrip("/") + "/"
        c = self.conn
        try:
            c.execute("BEGIN IMMEDIATE")
            # every conf below base; '/'+1 == '0' bounds the prefix range for the index
            if base in ("", "/"):
                c.execute("DELETE FROM vms")
            else:
                c.execute("DELETE FROM vms WHERE path = ? OR (path >= ? AND path < ?)",
                          (base, prefix, prefix[:-1] + "0"))
            for path, label, uuid, stem, dname, host, recs, ifs in rows:
                c.execute("DELETE FROM vms WHERE path = ?", (path,))
                c.execute("INSERT INTO vms(path,label,uuid,stem,dirname,host,records,scanned) "
                          "VALUES(?,?,?,?,?,?,?,?)",
                          (path, label, uuid, stem, dname, host, recs, now))
                c.executemany("INSERT INTO ifaces(path,mac,ip) VALUES(?,?,?)",
                              [(path, m, ip) for m, ip in ifs if m or ip])
            c.execute("COMMIT")
        except sqlite3.Error as exc:
            if c.in_transaction:
                c.execute("ROLLBACK")
            raise BackendError(f"inventory database {self.path}: update failed: {exc}",
                               hint="retry; another process may hold a long write lock") from None
        return len(rows)

    # -- reading -------------------------------------------------------------

    def count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM vms").fetchone()[0]

    def all_records(self) -> List[List[str]]:
        out = []
        for (recs,) in self.conn.execute("SELECT records FROM vms ORDER BY path"):
            out.extend(split_record(line) for line in recs.split("\n"))
        return out

    def path_of_record(self, index: int) -> Optional[str]:
        """DBRECORD index (0-based, the order of ``all_records``) -> conf path."""
        recs = self.all_records()
        if 0 <= index < len(recs):
            return recs[index][F_ID - 1]
        return None

    def find(self, *, uuid: Optional[str] = None, label: Optional[str] = None,
             tcp: Optional[str] = None, mac: Optional[str] = None,
             filename: Optional[str] = None, under: Sequence[str] = ()) -> List[str]:
        """Conf paths whose stored values equal *all* given parts (exact match)."""
        where, args = [], []
        if uuid:
            where.append("v.uuid = ?")
            args.append(uuid.replace("-", "").lower())
        if label:
            where.append("v.label = ?")
            args.append(label)
        if mac:
            where.append("v.path IN (SELECT path FROM ifaces WHERE mac = ?)")
            args.append(mac.strip().lower().replace("-", ":"))
        if tcp:
            where.append("v.path IN (SELECT path FROM ifaces WHERE ip = ?)")
            args.append(tcp)
        if filename:
            f = filename.rstrip("/")
            base = os.path.basename(f)
            where.append("(v.stem = ? OR v.dirname = ? OR v.path LIKE ? ESCAPE '\\' "
                         "OR v.path LIKE ? ESCAPE '\\')")
            like = _like_escape(base)
            args += [base, base, "%/" + like, "%/" + like + "/%"]
        if not where:
            return []
        sql = "SELECT v.path FROM vms v WHERE " + " AND ".join(where)
        paths = [r[0] for r in self.conn.execute(sql, args)]
        if under:
            paths = [p for p in paths
                     if any(p == b or p.startswith(b.rstrip("/") + "/") for b in under)]
        return paths

    # -- legacy files ----------------------------------------------------------

    def export_enum_fdb(self, path: PathLike) -> int:
        """Write ``enum.fdb``: every record, 47 ``;`` fields, sorted and unique (like sort -u)."""
        lines = sorted({join_record(r) for r in self.all_records()})
        _atomic_write(Path(path), "".join(line + "\n" for line in lines))
        return len(lines)

    def import_enum_fdb(self, path: PathLike, *, base: str = "/") -> Tuple[int, List[str]]:
        """Read ``enum.fdb`` into the store (replacing everything under ``base``).

        Returns (VMs imported, per-line warnings); malformed lines are skipped."""
        warnings: List[str] = []
        records = []
        text = _read_fdb(path, "enum.fdb")
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append(split_record(line))
            except ValueError as exc:
                warnings.append(f"{path}:{n}: {exc}; line skipped")
        return self.replace_records(base, records), warnings

    def import_macmap(self, path: PathLike) -> Tuple[int, List[str]]:
        warnings: List[str] = []
        rows = []
        text = _read_fdb(path, "macmap.fdb")
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            f = line.split(";")
            if len(f) < 3 or not f[1]:
                warnings.append(f"{path}:{n}: expected name;MAC;IP; line skipped")
                continue
            rows.append((f[0], f[1].strip().upper(), f[2].strip()))
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            c.execute("DELETE FROM macmap")
            c.executemany("INSERT INTO macmap(name,mac,ip) VALUES(?,?,?)", rows)
            c.execute("COMMIT")
        except sqlite3.Error:
            c.execute("ROLLBACK")
            raise
        return len(rows), warnings

    def export_macmap(self, path: PathLike) -> int:
        rows = self.conn.execute("SELECT name, mac, ip FROM macmap ORDER BY name, mac").fetchall()
        _atomic_write(Path(path), "".join(f"{n};{m};{i};\n" for n, m, i in rows))
        return len(rows)

    def ip_for_mac(self, mac: str) -> Optional[str]:
        row = self.conn.execute("SELECT ip FROM macmap WHERE mac = ?",
                                (mac.strip().upper(),)).fetchone()
        return row[0] if row else None


def _like_escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _atomic_write(path: Path, text: str) -> None:
    if path.is_dir():
        raise UsageError(f"cannot write {path}: it is a directory", hint="give a file path")
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise BackendError(f"cannot write {path}: {exc.strerror or exc}",
                           hint="check the path and its directory's permissions") from None


def open_store(path: Optional[PathLike] = None) -> Store:
    """Open (creating, or rebuilding a corrupt file) the inventory at ``path`` or the default."""
    return Store(path if path is not None else default_db_path())


def read_names(path: Optional[PathLike] = None) -> List[Tuple[str, str]]:
    """(label, uuid) of every VM in the inventory, read-only: never creates, migrates or sets
    aside the file (shell completion calls this; a missing or broken DB is just empty)."""
    p = Path(path) if path is not None else default_db_path()
    if not p.is_file():
        return []
    try:
        from urllib.parse import quote

        con = sqlite3.connect(f"file:{quote(str(p))}?mode=ro", uri=True, timeout=0.5)
        try:
            return [(str(a), str(b)) for a, b in con.execute("SELECT label, uuid FROM vms")]
        finally:
            con.close()
    except sqlite3.Error:
        return []
