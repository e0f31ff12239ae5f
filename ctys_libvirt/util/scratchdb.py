"""Caches written whole: an SQLite scratch file filled in one transaction and renamed into
place, so readers see the old file or the new one, never a half-written one."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable


def write_replacing(path: Path, fill: Callable[["sqlite3.Connection"], None], *,  # noqa: F821
                    dir_mode: int = 0o777) -> None:
    """Create ``path`` anew with ``fill(con)`` (tables and rows).  A cache that cannot be
    written only costs speed next time: failures are swallowed, the scratch file removed."""
    import sqlite3

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=dir_mode)
        tmp.unlink(missing_ok=True)
        con = sqlite3.connect(str(tmp), isolation_level=None)
        try:
            # a scratch file renamed into place: no journal, no fsync needed
            con.execute("PRAGMA journal_mode=OFF")
            con.execute("PRAGMA synchronous=OFF")
            con.execute("BEGIN")
            fill(con)
            con.execute("COMMIT")
        finally:
            con.close()
        os.replace(tmp, path)
    except (OSError, sqlite3.Error, ValueError):   # ValueError: a name that is not UTF-8
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
