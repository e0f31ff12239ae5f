"""Library logging without the import cost: the CLI imports and configures ``logging`` for
-v/--debug; until something has imported it, a log call costs one dict lookup."""
from __future__ import annotations

import sys


def _logger(name: str):
    lg = sys.modules.get("logging")
    return lg.getLogger(name) if lg is not None else None


def info(msg: str, *args, name: str = "ctys_libvirt") -> None:
    lg = _logger(name)
    if lg is not None:
        lg.info(msg, *args)


def debug(msg: str, *args, name: str = "ctys_libvirt") -> None:
    lg = _logger(name)
    if lg is not None:
        lg.debug(msg, *args)
