"""The --format json contract (docs/json.md): the outputs of list, create, cancel and
enumerate, and errors, validated with jsonschema against ctys_libvirt/schema/*.json,
from a real libvirtd and QEMU; warnings on stderr, once per cause."""
from __future__ import annotations

import json

import jsonschema
import pytest

from support.cli import assert_one_line_error, run_cli
from support.confs import write_conf
from support.domains import unique_label
from support.guests import wait_marker
from support.paths import REPO

SCHEMAS = REPO / "ctys_libvirt" / "schema"
CONFS = REPO / "tests" / "data" / "legacy" / "examples" / "confs"


def schema(name: str) -> dict:
    return json.loads((SCHEMAS / f"{name}.json").read_text())


def valid(name: str, doc) -> None:
    jsonschema.Draft202012Validator(schema(name)).validate(doc)


def invalid(name: str, doc) -> bool:
    return not jsonschema.Draft202012Validator(schema(name)).is_valid(doc)


def ok_json(p):
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_every_schema_is_a_valid_draft_2020_12_schema():
    files = sorted(SCHEMAS.glob("*.json"))
    assert {f.stem for f in files} >= {"list", "show", "enumerate", "cancel", "create", "define", "error"}
    for f in files:
        jsonschema.Draft202012Validator.check_schema(json.loads(f.read_text()))


def test_the_schemas_reject_what_the_contract_forbids():
    # the old shapes must fail, or the checks below prove nothing
    assert invalid("enumerate", [{"VRAM": "512"}])
    assert invalid("cancel", [{"name": "a", "mode": "FORCE", "action": "destroyed",
                               "state": "shutoff (destroyed)", "reason": None, "seconds": 0.1,
                               "messages": []}])
    entry = {"name": "t", "uuid": "u", "state": "running", "reason": None, "backend": "libvirt"}
    assert invalid("list", [entry])                                     # keys missing
    assert invalid("error", {"error": {"code": 7, "kind": "usage", "message": "m", "hint": None}})


@pytest.mark.libvirt
@pytest.mark.qemu
def test_create_list_cancel_json_follow_the_schemas(vmroot, media, janitor):
    label = janitor.add(unique_label("json"))
    conf = write_conf(vmroot, label, image=media["hello"])
    log = vmroot / "serial.log"
    created = ok_json(run_cli("create", str(conf), "--console", "NONE", "--serial-log", str(log),
                              "--format", "json"))
    valid("create", created)
    assert (created["name"], created["state"], created["backend"]) == (label, "running", "libvirt")
    assert created["defined"] is True and created["warnings"] == []
    wait_marker(log, "CTYS-GUEST-OK")

    listed = ok_json(run_cli("list", "--all", "--format", "json"))
    valid("list", listed)
    mine = next(d for d in listed if d["name"] == label)
    assert (mine["state"], mine["reason"], mine["persistent"], mine["autostart"]) == \
        ("running", None, True, False)
    assert mine["conf_path"] == str(conf) and mine["memory_mib"] == 16 and mine["vcpus"] == 1

    cancelled = ok_json(run_cli("cancel", label, "--mode", "FORCE", "--format", "json"))
    valid("cancel", cancelled)
    assert [(c["name"], c["mode"], c["state"], c["reason"]) for c in cancelled] == \
        [(label, "FORCE", "shutoff", "destroyed")]
    after = next(d for d in ok_json(run_cli("list", "--all", "--format", "json")) if d["name"] == label)
    assert (after["state"], after["persistent"]) == ("shutoff", True)   # list's names, same vocabulary


@pytest.mark.libvirt
@pytest.mark.qemu
def test_a_transient_domain_is_listed_as_not_persistent(vmroot, media, janitor):
    label = janitor.add(unique_label("trans"))
    conf = write_conf(vmroot, label, image=media["hello"])
    valid("create", ok_json(run_cli("create", str(conf), "--console", "NONE", "--transient",
                                    "--format", "json")))
    mine = next(d for d in ok_json(run_cli("list", "--format", "json")) if d["name"] == label)
    assert (mine["persistent"], mine["autostart"]) == (False, False)
    run_cli("cancel", label, "--mode", "FORCE")


def test_enumerate_json_is_snake_case_and_typed():
    data = ok_json(run_cli("enumerate", "--format", "json", "--no-cache", str(CONFS)))
    valid("enumerate", data)
    by = {d["label"]: d for d in data}
    assert (by["debian5"]["vram"], by["debian5"]["vcpu"], by["kvmkern"]["vram"]) == (1024, 2, 2048)
    assert by["debian5"]["vm_state"] is None and by["debian5"]["def_console"] == "VNC"
    assert by["debian5"]["id"] == str(CONFS / "debian5" / "debian5.ctys")
    # the records format keeps the 47 ctys fields and their text
    rec = run_cli("enumerate", "--format", "records", "--no-cache", str(CONFS)).stdout.splitlines()
    assert [len(r.split(";")) for r in rec] == [47, 47, 47] and rec[1].split(";")[39] == "1024"


@pytest.mark.libvirt
def test_errors_are_json_objects_with_format_json(tmp_path):
    cases = [
        (("cancel", "no-such-vm-" + tmp_path.name, "--format", "json", "--base", str(tmp_path)), 2, "not_found"),
        (("cancel", "x", "--mode", "BOGUS", "--format", "json"), 1, "usage"),
        (("list", "--format", "json", "--bogus"), 1, "usage"),
        (("--format", "json", "check", str(tmp_path / "missing.ctys")), 2, "not_found"),
    ]
    for args, code, kind in cases:
        p = run_cli(*args)
        line = assert_one_line_error(p, code)           # the human line is still there
        err = json.loads(p.stdout)
        valid("error", err)
        assert (err["error"]["code"], err["error"]["kind"]) == (code, kind), args
        assert err["error"]["message"] in line
    p = run_cli("cancel", "no-such-vm-" + tmp_path.name, "--base", str(tmp_path))
    assert p.stdout == "" and p.returncode == 2          # table format: no JSON


@pytest.mark.libvirt
@pytest.mark.qemu
def test_create_warnings_go_to_stderr_once_per_cause(vmroot, media, janitor):
    label = janitor.add(unique_label("warn"))
    conf = write_conf(vmroot, label, image=media["hello"])
    conf.write_text("".join(l for l in conf.read_text().splitlines(True) if "UUID" not in l))
    first = run_cli("create", str(conf), "--console", "NONE")
    assert first.returncode == 0, first.stderr
    uuid_warnings = [l for l in first.stderr.splitlines() if "no UUID in the conf" in l]
    assert len(uuid_warnings) == 1 and uuid_warnings[0].startswith("ctys-libvirt: warning: ")
    assert "UUID in the conf" not in first.stdout and "warning" not in first.stdout
    assert run_cli("cancel", label, "--mode", "FORCE").returncode == 0
    again = run_cli("create", str(conf), "--console", "NONE", "--format", "json")
    res = ok_json(again)
    # the definition did not change: the lasting fact is not repeated on every start
    assert res["defined"] is False and "no UUID" not in again.stderr, again.stderr
    assert any("no UUID in the conf" in w for w in res["warnings"])     # still in the record
    assert "no UUID in the conf" in run_cli("xml", str(conf)).stderr    # and xml/check say it
    assert "no UUID in the conf" in run_cli("check", str(conf)).stdout
    run_cli("cancel", label, "--mode", "FORCE")


@pytest.mark.libvirt
def test_define_and_show_json_follow_the_schemas(vmroot, media, janitor):
    """define (a batch with a broken conf, a dry run) and show of the defined domain."""
    label = janitor.add(unique_label("jdef"))
    conf = write_conf(vmroot, label, image=media["hello"])
    broken = vmroot / "broken" / "broken.ctys"
    broken.parent.mkdir()
    broken.write_text("#@#MAGICID-QEMU\n#@#LABEL = \"broken\"\nLABEL=broken\nX=$(id)\n")
    dry = ok_json(run_cli("define", str(conf), "--dry-run", "--format", "json"))
    valid("define", dry)
    assert [r["status"] for r in dry] == ["would be defined"]
    p = run_cli("define", str(conf), str(broken), "--format", "json")
    assert p.returncode == 3, p.stderr                     # the broken conf's exit code
    rows = json.loads(p.stdout)
    valid("define", rows)
    assert [r["status"] for r in rows] == ["defined", "error"] and rows[0]["name"] == label, rows
    assert rows[1]["exit_code"] == 3 and "$(" in rows[1]["reason"], rows[1]
    shown = ok_json(run_cli("show", label, "--format", "json", "--base", str(vmroot)))
    valid("show", shown)
    assert (shown["name"], shown["state"], shown["ours"], shown["persistent"]) == \
        (label, "shutoff", True, True), shown
    assert shown["conf"] == str(conf)
    # the contract's state names: "shutoff (unknown)" was the old shape
    assert invalid("show", dict(shown, state="shutoff (unknown)"))
    assert invalid("define", [dict(rows[0], status="written")])
