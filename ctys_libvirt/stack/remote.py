"""The inside of a VM without a libvirt to talk to: ``ctys-libvirt cancel --all`` run in the
guest over the same ssh (ctys ran its own ctys inside the guest the same way).  Only the
guest's libvirt VMs of ours are cancelled there (``--backend libvirt``), each with the same
method and timeout; the guest's ctys-libvirt propagates further down by itself."""
from __future__ import annotations

import json
import os
import shlex
import subprocess
from typing import List

from ctys_libvirt.errors import BackendError
from ctys_libvirt.ctys.targets import Target, ssh_argv
from ctys_libvirt.model import CancelMode, CancelResult

REMOTE_CMD_ENV = "CTYS_STACK_REMOTE_CMD"     # ctys-libvirt inside the guests (site setting)


def _result(d: dict) -> CancelResult:
    return CancelResult(name=str(d.get("name", "?")), mode=CancelMode(d.get("mode", "POWEROFF")),
                        action=str(d.get("action", "?")), state=str(d.get("state", "?")),
                        seconds=float(d.get("seconds") or 0.0),
                        messages=[str(m) for m in d.get("messages") or []],
                        uri=d.get("uri"), inside=d.get("inside"), reached=d.get("reached"),
                        inner=[_result(c) for c in d.get("inner") or [] if isinstance(c, dict)],
                        started=d.get("started"), finished=d.get("finished"))


def cancel_all_over_ssh(t: Target, mode: CancelMode, timeout: float, *,
                        connect_timeout: float) -> List[CancelResult]:
    """Run the CANCEL of every VM inside the guest ``t``; BackendError when neither ssh
    nor ctys-libvirt answers there."""
    cmd = shlex.split(os.environ.get(REMOTE_CMD_ENV) or "ctys-libvirt")
    cmd += ["cancel", "--all", "--backend", "libvirt", "--mode", mode.value,
            "--timeout", f"{timeout:g}", "--format", "json"]
    argv = ssh_argv(t, cmd)
    # every VM there may take its full timeout (the guest's CLI cancels them one by one)
    limit = connect_timeout + 60 + 20 * (timeout + 30)
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=limit,
                           stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise BackendError("ssh client not found", hint="install openssh-client") from None
    except subprocess.TimeoutExpired:
        raise BackendError(f"ctys-libvirt inside {t.display} did not finish within {limit:g}s") from None
    err = " ".join(p.stderr.split())
    if p.returncode == 255:
        raise BackendError(f"ssh failed: {err or 'connection error'}")
    if p.returncode == 127:
        raise BackendError(f"neither libvirt nor {cmd[0]} answers inside ({err})")
    if p.returncode != 0:
        raise BackendError(f"ctys-libvirt inside failed (exit {p.returncode}): {err}")
    try:
        data = json.loads(p.stdout or "[]")
    except ValueError:
        raise BackendError("ctys-libvirt inside printed no JSON") from None
    return [_result(d) for d in data if isinstance(d, dict)]
