"""The libvirt URI a command uses when it names none (as virsh picks it).  Its own small
module: every libvirt command needs it, the ctys target grammar (ctys/targets.py) too."""
from __future__ import annotations

import os
from typing import Optional


def default_uri(uri: Optional[str] = None) -> str:
    """--connect, else LIBVIRT_DEFAULT_URI, else qemu:///system as root, session otherwise."""
    if uri:
        return uri
    env = os.environ.get("LIBVIRT_DEFAULT_URI")
    if env:
        return env
    return "qemu:///system" if os.geteuid() == 0 else "qemu:///session"
