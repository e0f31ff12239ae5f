"""`ctys-libvirt check CONF`: read a conf safely and show what was understood."""
from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path
from typing import Dict, List, Optional

import typer

from ctys_libvirt.cli import complete as C

from ctys_libvirt.cli.app import app
from ctys_libvirt.cli.common import ALLOW_ARGSADD, BASE, emit_json, errors_to_exit
from ctys_libvirt.errors import NotFoundError, UsageError

_VAR = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SECTIONLESS = ("keys", "variables", "warnings", "trust")


def _overrides(items: Optional[List[str]]) -> Dict[str, str]:
    out: Dict[str, str] = {}
    for item in items or ():
        name, sep, value = item.partition("=")
        if not sep or not _VAR.fullmatch(name):
            raise UsageError(f"--set {item!r} is not VAR=VALUE",
                             hint="write e.g. --set MEMSIZE=256")
        out[name] = value
    return out


def _conf_target(conf: str, bases=()):
    """A path (file, VM dir, .sh wrapper) is used as is; anything else is a machine
    address resolved by the inventory."""
    p = Path(conf).expanduser()
    if p.exists() or (p.suffix == ".sh" and p.with_suffix(".ctys").exists()):
        return p
    try:
        from ctys_libvirt.cli.common import resolve_conf
        return resolve_conf(conf, tuple(bases))
    except ImportError:
        raise NotFoundError(f"conf {conf} does not exist",
                            hint="give the path of a <label>.ctys file or its VM directory") from None


def _plain(value):
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@app.command()
def check(
    conf: str = typer.Argument(..., shell_complete=C.address, help="conf file, VM directory, <label>.sh wrapper or address"),
    mydist: Optional[str] = typer.Option(None, "--mydist", help="host distribution as ctys "
                                         "spells it (debian, Ubuntu, CentOS, ...); default: this host"),
    set_: Optional[List[str]] = typer.Option(None, "--set", help="VAR=VALUE given to the conf "
                                             "like an environment variable (repeatable)"),
    env: bool = typer.Option(False, "--env", help="let the process environment into the conf"),
    force: bool = typer.Option(False, "--force", help="read confs marked MAGICID-IGNORE/NOENUM"),
    fmt: str = typer.Option("table", "--format", shell_complete=C.values("table", "json"), help="table | json"),
    base: Optional[List[str]] = BASE,
    allow_argsadd: Optional[List[str]] = ALLOW_ARGSADD,
) -> None:
    """Parse CONF without executing it; print keys, resolved settings, variables, warnings,
    the conf's trust and what its ARGSADD would be refused (exit 3 when something is)."""
    with errors_to_exit():
        f = (fmt or "").lower()
        if f not in ("table", "json"):
            raise UsageError(f"unknown --format {fmt!r}", hint="use table or json")
        overrides = _overrides(set_)
        from ctys_libvirt.conf import default_host_context, load_conf

        ctx = default_host_context()
        if mydist:
            ctx = dataclasses.replace(ctx, mydist=mydist)
        vm = load_conf(_conf_target(conf, base or ()), ctx, use_env=env, force=force, overrides=overrides)
        fields = {k: _plain(v) for k, v in dataclasses.asdict(vm).items()
                  if k not in _SECTIONLESS}
        from ctys_libvirt.security.argsadd import describe as policy_of, enforce
        from ctys_libvirt.translate.legacy_args import conf_conversion, describe as converted
        from ctys_libvirt.translate.request import make_request

        req = make_request(allow_argsadd=allow_argsadd or ())
        policy = policy_of(vm, req, allow=req.allow_argsadd)
        conv = conf_conversion(vm)
        warnings = list(vm.warnings)
        if not vm.uuid:     # the lasting fact `create` reports only when it defines
            from ctys_libvirt.translate.plan import plan_uuid

            plan_uuid(vm, warnings)
        trust = vm.trust.as_dict() if vm.trust else None
        from ctys_libvirt.errors import CtysError

        try:
            enforce(vm, req, allow=req.allow_argsadd)
            refused = None
        except CtysError as exc:      # reported after the report, as its last line
            refused = exc
        if f == "json":
            emit_json({"config": fields, "keys": vm.keys, "variables": vm.variables,
                       "warnings": warnings, "trust": trust,
                       "error": None if refused is None else
                       {"code": refused.exit_code, "message": " ".join(refused.message.split()),
                        "hint": refused.hint},
                       "argsadd": {"policy": policy,
                                   "converted": [{"words": list(c.words), "element": c.became}
                                                 for c in conv.converted],
                                   "passthrough": list(conv.leftover)}})
        else:
            _table("keys", vm.keys)
            _table("config", {k: "" if v is None else v for k, v in fields.items()})
            _table("variables", vm.variables)
            _table("trust", trust or {})
            print("[argsadd]")
            for a in policy:
                verdict = "allowed" if a["allowed"] else "REFUSED"
                what = f"{a['option']} {a['reason']}" if a["allowed"] else a["error"]
                print(f"  {verdict:8} {a['source']}: {_CONTROL.sub('?', what)}")
            # what the libvirt path makes of ARGSADD/TIMEOPT (the direct backend passes them as written)
            for line in converted(conv):
                print(f"  {_CONTROL.sub('?', line)}")
            if conv.leftover:
                import shlex

                print(f"  passed through: {_CONTROL.sub('?', shlex.join(conv.leftover))}")
            print("[warnings]")
            for w in warnings:
                print(f"  {_CONTROL.sub('?', w)}")
        sys.stdout.flush()
        if refused is not None:     # exit 3, one line; with --format json the report holds it
            print(f"ctys-libvirt: error: {refused.one_line()}", file=sys.stderr)
            raise SystemExit(refused.exit_code)


# C0/C1 controls and DEL: a hostile conf must not drive the user's terminal (ESC sequences)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def _table(title: str, rows: Dict[str, object]) -> None:
    print(f"[{title}]")
    width = max((len(k) for k in rows), default=0)
    for k in sorted(rows) if title != "config" else rows:
        v = rows[k]
        shown = repr(v) if isinstance(v, str) and (v != v.strip() or _CONTROL.search(v)) else v
        print(f"  {_CONTROL.sub('?', k).ljust(width)}  {shown}")
