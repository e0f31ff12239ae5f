"""Safe static reader for ctys `.ctys` conf files (design.md §3).

Nothing is ever executed: the shell subset of conf-format.md §3.3 is tokenized, parsed and
evaluated over an explicit variables dict; anything else is a ConfError naming file, line,
column and construct.

Public API: locate_conf, read_keys, load_conf, default_host_context, KeyInfo, evaluate_text.

Decisions where the legacy behaviour was loose (for the README):
* The check is static: a rejected construct is an error even inside a branch that the
  host context would not take.
* `overrides` (`check --set`) and `use_env` act like the legacy wrapper's environment:
  `X=${X:-d}` honours them, plain assignments in the conf win.
* Unquoted expansions inside `[ ... ]` are field-split as in bash; pathname expansion and
  file tests (`-f`, `-d`, ...) are never done (no filesystem access).
* NIC unset -> rtl8139 (the template default); a plain `NIC=` -> no NIC.  TIMEOPT unset ->
  `-localtime`.  MEMSIZE unset -> 512 MiB with a warning; set but empty/invalid -> error.
* `#@#` values are stripped; an unquoted value loses a trailing ` # comment`; values with
  inner blanks are kept whole with a warning (legacy used only the last word).
* Shell LABEL missing but `#@#LABEL` present -> the key is used, with a warning.
* The context sets VDE_VDEQ, not VDE_DEQ (the legacy name mismatch), so WRAPPERCALL falls
  through to the conf's own default exactly as in the §7 fixtures.
* Legacy ctys-conf variant: `#@#` keys of `<stem>.conf` override those of `<stem>.ctys`;
  the `.conf` is read with the same safe reader, the bash wrapper never.
* 01.07 layout (a `<stem>.conf` with its own MAGICID line next to a bash `<stem>.ctys`
  wrapper, which keeps `#@#MAGICID-IGNORE`): the `.conf` is a whole conf judged on its own,
  as ctys did; the wrapper is neither read as a conf nor executed.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Dict, Mapping, Optional, Tuple

from ctys_libvirt.conf.context import context_variables, default_host_context
from ctys_libvirt.conf.evaluate import evaluate, evaluate_groups
from ctys_libvirt.conf.keys import (KeyInfo, add_key_records, decode, key_flags, parse_keys,
                                    read_bytes, read_keys)
from ctys_libvirt.conf.locate import locate_conf, own_magic
from ctys_libvirt.conf.mapping import to_vmconfig
from ctys_libvirt.conf.shell import _Src, compile_groups, parse, scan_conf
from ctys_libvirt.errors import ConfError
from ctys_libvirt.model import HostContext, VmConfig
from ctys_libvirt.security.policy import load_policy
from ctys_libvirt.security.trust import assess
from ctys_libvirt.util import log

__all__ = ["locate_conf", "read_keys", "load_conf", "default_host_context", "KeyInfo",
           "evaluate_text"]

_LEGACY_VARS = ("LABEL", "MAC0", "VNCACCESSDISPLAY")


def _parsed(path: Path, data: bytes, force: bool) -> Tuple[str, KeyInfo, list]:
    """(text, keys, compiled groups) of an importable conf."""
    text = decode(data, path)
    info = key_flags(text, path)
    _check_magic(info, path, force)    # before parsing: an ignored conf may be anything
    groups, records = scan_conf(text, str(path))
    return text, add_key_records(info, records, text), groups


def evaluate_text(text: str, variables: Dict[str, str], path: str = "<conf>") -> Dict[str, str]:
    """Parse and evaluate conf text over `variables` (mutated and returned); no whole-file
    cache (the per-line-group memo of compile_groups only)."""
    return evaluate_groups(compile_groups(text, path), variables, _Src(text, path))


def _check_magic(info: KeyInfo, path: Path, force: bool) -> None:
    if force:
        return
    if info.magic_ignore or info.magic_noenum:
        flag = "MAGICID-IGNORE" if info.magic_ignore else "MAGICID-NOENUM"
        raise ConfError(f"conf is deactivated by #@#{flag}", path=str(path), construct=flag,
                        hint="use --force to load it anyway, or remove the flag")
    if not info.magic_qemu:
        raise ConfError("conf has no #@#MAGICID-QEMU line (not a ctys QEMU conf)",
                        path=str(path), construct="MAGICID-QEMU",
                        hint="add a '#@#MAGICID-QEMU' line, or use --force")


def load_conf(path_or_dir, context: Optional[HostContext] = None, *, use_env: bool = False,
              force: bool = False, overrides: Optional[Mapping[str, str]] = None) -> VmConfig:
    """Read a conf (file, VM dir or `.sh` wrapper) into a VmConfig; never executes it."""
    path = locate_conf(path_or_dir)
    log.info("conf: reading %s (parsed, never executed)", path)
    ctx = context or default_host_context()
    data = read_bytes(path)
    digest = hashlib.sha256(data).hexdigest()
    conf_dir = path.parent
    if data.startswith(b"#!") or data.startswith(b"\xef\xbb\xbf#!"):
        text = decode(data, path)
        return _load_legacy(path, parse_keys(text, path), ctx, use_env, force, overrides)
    text, info, groups = _parsed(path, data, force)
    variables = context_variables(ctx, conf_dir, use_env=use_env, overrides=overrides)
    evaluate_groups(groups, variables, _Src(text, str(path)))
    vm = to_vmconfig(variables, info.keys, source_path=path, conf_dir=conf_dir,
                     sha256=digest, warnings=list(info.warnings),
                     host_arch=ctx.arch)
    return _with_trust(vm)


def _with_trust(vm: VmConfig) -> VmConfig:
    """Decide the conf's trust once, where it enters (design.md §10)."""
    policy = load_policy()
    vm.warnings.extend(policy.warnings)
    vm.trust = assess(vm.source_path, policy)
    return vm


def _load_legacy(path: Path, info: KeyInfo, ctx: HostContext, use_env: bool, force: bool,
                 overrides: Optional[Mapping[str, str]]) -> VmConfig:
    """ctys-conf variant (§1.4): `<stem>.ctys` is a VM-specific bash wrapper, `<stem>.conf`
    holds the keys and LABEL/MAC0/VNCACCESSDISPLAY.  The wrapper is never parsed."""
    conf_dir = path.parent
    conf = path.with_suffix(".conf")
    if conf.is_file() and own_magic(conf):
        # 01.07 layout: the .conf is a whole conf judged on its own; the wrapper's flags
        # (it keeps #@#MAGICID-IGNORE) and keys are not the conf's
        return load_conf(conf, ctx, use_env=use_env, force=force, overrides=overrides)
    warnings = list(info.warnings)
    keys = dict(info.keys)
    magic = KeyInfo(path=path, magic_qemu=info.magic_qemu, magic_ignore=info.magic_ignore,
                    magic_noenum=info.magic_noenum)
    picked: Dict[str, str] = {}
    source = path
    data = read_bytes(path)
    if conf.is_file():
        cdata = read_bytes(conf)
        ctext = decode(cdata, conf)
        cinfo = parse_keys(ctext, conf)
        warnings.extend(cinfo.warnings)
        keys = {**keys, **cinfo.keys}          # the .conf overrides (§1.2(5))
        magic.magic_qemu |= cinfo.magic_qemu
        magic.magic_ignore |= cinfo.magic_ignore
        magic.magic_noenum |= cinfo.magic_noenum
        _check_magic(magic, path, force)
        variables = context_variables(ctx, conf_dir, use_env=use_env, overrides=overrides)
        evaluate(parse(ctext, str(conf)), variables, _Src(ctext, str(conf)))
        picked = {k: variables[k] for k in _LEGACY_VARS if k in variables}
        source, data = conf, cdata
    else:
        _check_magic(magic, path, force)
        warnings.append(f"legacy wrapper {path.name} has no sibling {conf.name}; "
                        "using its #@# keys only")
        if not keys.get("LABEL"):
            picked["LABEL"] = path.stem
    if "LABEL" not in picked and keys.get("LABEL"):
        picked["LABEL"] = keys["LABEL"]
    warnings.append(f"legacy ctys-conf variant: {path.name} is a VM-specific bash wrapper; "
                    "its QEMU argv cannot be reconstructed, defaults are used except for "
                    "LABEL/MAC0/VNCACCESSDISPLAY and the #@# keys")
    return _with_trust(to_vmconfig(picked, keys, source_path=source, conf_dir=conf_dir,
                                   sha256=hashlib.sha256(data).hexdigest(), warnings=warnings,
                                   host_arch=ctx.arch))
