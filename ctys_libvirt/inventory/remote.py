"""ENUMERATE over several targets: the local host in process, remote hosts over ssh
(``ctys-libvirt enumerate --format records`` there), concurrently; a failing host becomes a
``(target, message)`` failure while the others' records are merged (host column filled)."""
from __future__ import annotations

import os
import shlex
import subprocess
from dataclasses import dataclass, field
from typing import List, Sequence, Tuple

from ctys_libvirt.ctys.targets import REMOTE_TIMEOUT, Target, ssh_argv, ssh_target_of
from ctys_libvirt.stack.address import stack_ssh_target
from ctys_libvirt.util.fanout import fan_out


@dataclass
class MultiResult:
    records: List[List[str]] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)
    failures: List[Tuple[str, str]] = field(default_factory=list)   # (host, one-line message)
    exit_codes: List[int] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return max(self.exit_codes) if self.exit_codes else 0


def run_remote_enumerate(t: Target, bases: Sequence[str] = (), matchvstat: Sequence[str] = (),
                         *, timeout: float = REMOTE_TIMEOUT) -> Tuple[List[List[str]], List[str]]:
    """``ctys-libvirt enumerate --format records`` on ``t`` over ssh -> (records, warnings)."""
    from ctys_libvirt.errors import BackendError
    from ctys_libvirt.ctys.enum_record import split_record

    cmd = shlex.split(t.remote_cmd or os.environ.get("CTYS_REMOTE_CTYS_LIBVIRT", "ctys-libvirt"))
    cmd += ["enumerate", "--format", "records"]
    if matchvstat:
        cmd += ["--matchvstat", "%".join(matchvstat)]
    cmd += list(bases)
    argv = ssh_argv(t, cmd)
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise BackendError("ssh client not found", hint="install openssh-client") from None
    except subprocess.TimeoutExpired:
        raise BackendError(f"remote ENUMERATE did not finish within {timeout:g}s",
                           hint="narrow the base paths") from None
    err = " ".join(p.stderr.split())
    if p.returncode == 255:
        raise BackendError(f"ssh to {t.display} failed: {err or 'connection error'}",
                           hint="check the host, the port and key-based login (BatchMode, no passwords)")
    if p.returncode == 127:
        raise BackendError(f"remote host lacks {cmd[0]} (command not found)",
                           hint=f"install ctys-libvirt on {t.display} or give --remote-cmd")
    warnings = [line.split("warning: ", 1)[-1] for line in p.stderr.splitlines()
                if "warning:" in line]
    if p.returncode != 0:
        raise BackendError(f"remote ENUMERATE failed (exit {p.returncode}): {err}",
                           hint=f"run '{' '.join(cmd)}' on {t.display} to see why")
    recs = []
    for n, line in enumerate(p.stdout.splitlines(), 1):
        if not line.strip():
            continue
        try:
            r = split_record(line)
        except ValueError as exc:
            warnings.append(f"{t.display}: output line {n}: {exc}")
            continue
        recs.append(r)
    return recs, warnings


def enumerate_hosts(targets: Sequence[Target], *, bases: Sequence[str] = (),
                    matchvstat: Sequence[str] = (), full: bool = False,
                    cache_dir=None) -> MultiResult:
    """ENUMERATE on every target (local in process, remote over ssh), records merged with
    the host column (field 1) set to the target's name."""
    from ctys_libvirt.inventory.collect import enumerate_local

    def one(t: Target):
        if t.stack:     # ctys-libvirt inside the last VM, over ssh (ctys ran itself there)
            return run_remote_enumerate(stack_ssh_target(t), bases, matchvstat)
        st = ssh_target_of(t)
        if st is None:
            r = enumerate_local(bases, matchvstat=matchvstat, full=full, cache_dir=cache_dir)
            return r.records, r.warnings
        return run_remote_enumerate(st, bases, matchvstat)

    res = MultiResult()
    for t, out, err in fan_out(targets, one):
        if err is not None:
            res.failures.append((t.display, err.one_line()))
            res.exit_codes.append(err.exit_code)
            continue
        recs, warns = out
        res.warnings.extend(f"{t.display}: {w}" for w in warns)
        remote = ssh_target_of(t) is not None or bool(t.stack)
        for r in recs:
            if remote:
                r[0] = t.stack[-1] if t.stack else t.display   # stack: the containing VM
            res.records.append(r)
    return res
