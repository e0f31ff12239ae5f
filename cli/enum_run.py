"""The body of ``ctys-libvirt enumerate`` (cli/cmd_inventory.py declares its options for
typer), and its typer-free start: a plain scan (``enumerate PATH... --format records
--no-cache``) is over in a few hundred ms, and typer + click cost ~25 ms to import and
~8 ms to build the command before it starts.  ``parse_plain`` accepts only a command line
made of paths and a few options spelled exactly as declared, each at most as click reads
it; anything else (a global option, another spelling, --help, a value that looks like an
option, completion) returns None and goes through typer as before
(tests/unit/cli/test_enum_fast.py runs both ways and compares)."""
from __future__ import annotations

import sys
from typing import Dict, List, Optional

from ctys_libvirt.cli.common import errors_to_exit, note, warn

FORMATS = ("table", "records", "json")

# The options parse_plain takes: spelling -> (parameter, takes a value, repeatable).  Every
# one is declared the same way on the typer command (the test compares with its params).
PLAIN_OPTIONS = {
    "--format": ("fmt", True, False),
    "--no-cache": ("no_cache", False, False),
    "--all-states": ("all_states", False, False),
    "--full": ("full", False, False),
    "--title": ("title", False, False),
    "--matchvstat": ("matchvstat", True, False),
    "--base": ("base", True, True),
    "-b": ("base", True, True),
}


def parse_plain(args: List[str]) -> Optional[Dict[str, object]]:
    """``run`` keywords for ``args`` (the words after ``enumerate``), or None when the
    command line is anything but plain (then typer parses it)."""
    from ctys_libvirt.cli.plain import parse

    return parse(args, PLAIN_OPTIONS, {"fmt": "table", "no_cache": False, "all_states": False,
                                       "full": False, "title": False, "matchvstat": None},
                 positional=("paths", False, True))


def run(*, paths: Optional[List[str]] = None, fmt: str = "table", update_db: bool = False,
        db: Optional[str] = None, from_db: bool = False, full: bool = False,
        all_states: bool = False, matchvstat: Optional[str] = None, title: bool = False,
        no_cache: bool = False, connect: Optional[List[str]] = None,
        hosts: Optional[List[str]] = None, fmt_short: Optional[str] = None,
        base: Optional[List[str]] = None, export_enum: Optional[str] = None,
        import_enum: Optional[str] = None, import_macmap: Optional[str] = None,
        export_macmap: Optional[str] = None) -> None:
    """ENUMERATE with the command's options (cli/cmd_inventory.py documents them)."""
    with errors_to_exit():
        from ctys_libvirt.errors import UsageError
        from ctys_libvirt.ctys import enum_record as record   # output: only for table/TITLE
        from ctys_libvirt.inventory import collect

        if fmt_short is not None:
            fmt = fmt_short
        paths = list(paths or ()) + list(base or ()) or None
        fmt = fmt.lower()
        uri_targets = []
        if connect:
            from ctys_libvirt.ctys.targets import target_from_uri

            uri_targets = [t for t in map(target_from_uri, connect) if t is not None]
            if not uri_targets and not hosts:
                connect = None          # only local URIs: scan this host as without -c
        if fmt not in FORMATS:
            raise UsageError(f"unknown format {fmt!r}", hint="use table, records or json")
        if not hosts and not uri_targets:        # remote paths are the far side's business
            collect.require_bases(paths or (), hint="give existing directories (or .ctys files) to scan")
        dbpath = db or None     # None: the default DB (sqlite3 is imported only to open one)
        if import_enum or import_macmap or export_enum or export_macmap:
            with _open_store(dbpath) as st:
                for w in st.warnings:
                    warn(w)
                if import_enum:
                    n, ws = st.import_enum_fdb(import_enum)
                    for w in ws:
                        warn(w)
                    note(f"imported {n} VMs from {import_enum}")
                if import_macmap:
                    n, ws = st.import_macmap(import_macmap)
                    for w in ws:
                        warn(w)
                    note(f"imported {n} MAC map entries from {import_macmap}")
            if not (export_enum or export_macmap) and not paths and not from_db and not update_db:
                return
        vst = ("PRESENT",) if all_states else tuple(
            v for v in (matchvstat or "").upper().split("%") if v)
        failed = False
        rec_lines = False           # recs are record lines already (a local scan's records)
        if hosts or uri_targets:
            from ctys_libvirt.ctys.targets import parse_targets
            from ctys_libvirt.inventory.remote import enumerate_hosts

            targets = parse_targets(hosts or ()) + uri_targets
            res_remote = enumerate_hosts(targets, bases=paths or (), matchvstat=vst, full=full,
                                         cache_dir=None if no_cache else collect.default_cache_dir())
            recs = res_remote.records
            for w in res_remote.warnings:
                warn(w)
            for h, err in res_remote.failures:
                print(f"ctys-libvirt: error: {h}: {err}", file=sys.stderr)
                failed = True
        elif from_db:
            res = collect.records_from_db(dbpath, under=paths or ())
            for w in res.warnings:
                warn(w)
            recs = res.records
        elif export_enum or export_macmap:
            recs = None
        else:
            res = collect.enumerate_local(paths or (), full=full, matchvstat=vst,
                                          update_db=update_db, db=dbpath,
                                          cache_dir=None if no_cache else collect.default_cache_dir())
            for w in res.warnings:
                warn(w)
            # the records format prints the scan's lines as they are (no split and re-join)
            recs = res.lines if fmt == "records" else res.records
            rec_lines = fmt == "records"
        if export_enum or export_macmap:
            with _open_store(dbpath) as st:
                for w in st.warnings:
                    warn(w)
                if export_enum:
                    n = st.export_enum_fdb(export_enum)
                    note(f"wrote {n} records to {export_enum}")
                if export_macmap:
                    n = st.export_macmap(export_macmap)
                    note(f"wrote {n} MAC map entries to {export_macmap}")
        if recs is not None:
            names = record.FIELD_NAMES
            if fmt == "json":
                from ctys_libvirt.cli import contract
                from ctys_libvirt.cli.common import emit_json

                emit_json(contract.enum_records(recs))
            elif fmt == "records":
                lines = []
                if title:
                    from ctys_libvirt.inventory import output

                    lines.append(output.title(names, range(1, record.NFIELDS + 1), "TITLE"))
                lines.extend(recs if rec_lines else map(record.join_record, recs))
                if lines:
                    print("\n".join(lines))
            else:
                from ctys_libvirt.cli.table import columns

                # host, label, uuid, mac, tcp, id (the conf path)
                print(columns(("HOST", "LABEL", "UUID", "MAC", "TCP", "CONF"),
                              ([r[0], r[2], r[4], r[5], r[6], r[3]] for r in recs)))
        if failed:
            raise SystemExit(4)


def _open_store(path):
    from ctys_libvirt.inventory.store import open_store

    return open_store(path)
