"""How the library talks back without printing: callbacks the front end passes."""
from __future__ import annotations

from typing import Callable

Say = Callable[[str], None]     # one line: a warning (``warn``) or progress (``say``)


def drop(_message: str) -> None:
    """The default: say nothing."""
