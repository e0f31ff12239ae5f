"""``ctys-libvirt enumerate``: the ENUMERATE scan, the inventory DB and its legacy files."""
from __future__ import annotations

from typing import List, Optional

import typer

from ctys_libvirt.cli import complete as C

from ctys_libvirt.cli.app import app
from ctys_libvirt.cli.enum_run import FORMATS


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
    from ctys_libvirt.cli.enum_run import run

    run(paths=paths, fmt=fmt, update_db=update_db, db=db, from_db=from_db, full=full,
        all_states=all_states, matchvstat=matchvstat, title=title, no_cache=no_cache,
        connect=connect, hosts=hosts, fmt_short=fmt_short, base=base, export_enum=export_enum,
        import_enum=import_enum, import_macmap=import_macmap, export_macmap=export_macmap)
