"""Per-user directories (XDG on Linux) through platformdirs, imported only when needed."""
from __future__ import annotations

from pathlib import Path

APP = "ctys-libvirt"


def user_cache_dir() -> Path:
    """$XDG_CACHE_HOME/ctys-libvirt (default ~/.cache/ctys-libvirt)."""
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP, appauthor=False))
