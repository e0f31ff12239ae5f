"""``ctys-libvirt enumerate``: the ENUMERATE scan, the inventory DB and its legacy files."""
from __future__ import annotations

import sys
from typing import List, Optional

import typer

from ctys_libvirt.cli import complete as C

from ctys_libvirt.cli.app import app
from ctys_libvirt.cli.common import errors_to_exit, note, warn

FORMATS = ("table", "records", "json")


@app.command()
def enumerate(  # noqa: A001 - the ctys action name
    paths: Optional[List[str]] = typer.Argument(
        None, help="Base paths to scan for *.ctys (default: $HOME)."),
    fmt: str = typer.Option("table", "--format", help="table | records | json",
                            shell_complete=C.values(*FORMATS)),
    update_db: bool = typer.Option(False, "--update-db",
                                   help="Store the result in the inventory DB (atomic replace per base path)."),
    db: Optional[str] = typer.Option(None, "--db", help="Inventory DB file "
                                     "(default ~/.ctys/db/default/inventory.sqlite, or $CTYS_INVENTORY_DB)."),
    from_db: bool = typer.Option(False, "--from-db", help="Print the stored inventory instead of scanning."),
    full: bool = typer.Option(False, "--full", help="Parse every conf completely (slower; "
                              "reports conf errors and fills VRAM/VCPU/arch from the parsed values)."),
    all_states: bool = typer.Option(False, "--all-states",
                                    help="Include every VMSTATE (default ACTIVE, DISABLED, empty)."),
    matchvstat: Optional[str] = typer.Option(None, "--matchvstat",
                                             help="'%'-separated VMSTATE list, as ctys MATCHVSTAT."),
    title: bool = typer.Option(False, "--title", help="records: print a TITLE line first."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Re-read every conf (default: confs "
                                  "unchanged since the last scan come from the scan cache, "
                                  "$CTYS_SCAN_CACHE_DIR or ~/.cache/ctys-libvirt)."),
    connect: Optional[List[str]] = typer.Option(
        None, "--connect", "-c", metavar="URI", shell_complete=C.uri,
        help="Scan on the host of a qemu+ssh://[user@]host[:port]/... URI over ssh (repeatable; "
             "a local URI scans this host)."),
    hosts: Optional[List[str]] = typer.Option(None, "--host", "-H",
                                              help="Scan on [user@]host over ssh (repeatable; groups allowed)."),
    fmt_short: Optional[str] = typer.Option(None, "-f", hidden=True),   # old spelling of --format
    base: Optional[List[str]] = typer.Option(None, "--base", "-b", help="Base path to scan, as "
                                             "the PATH arguments (repeatable; the name the other "
                                             "commands use)."),
    export_enum: Optional[str] = typer.Option(None, "--export-enum-fdb", metavar="FILE",
                                              help="Write the DB as legacy enum.fdb."),
    import_enum: Optional[str] = typer.Option(None, "--import-enum-fdb", metavar="FILE",
                                              help="Load a legacy enum.fdb into the DB."),
    import_macmap: Optional[str] = typer.Option(None, "--import-macmap", metavar="FILE",
                                                help="Load a legacy macmap.fdb (name;MAC;IP) into the DB."),
    export_macmap: Optional[str] = typer.Option(None, "--export-macmap", metavar="FILE",
                                                help="Write the DB's MAC map as macmap.fdb."),
) -> None:
    """ENUMERATE: find ctys QEMU confs (MAGICID-QEMU, not IGNORE/NOENUM) and print their
    47-field records; optionally refresh the inventory DB and export enum.fdb."""
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
