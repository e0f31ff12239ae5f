"""The raw QEMU words a VM brings (the conf's ARGSADD and TIMEOPT, the command line's
``--argsadd``), where each came from.  Separate from the policy (security/argsadd.py) so
that a create without any words never loads the policy's option tables."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

from ctys_libvirt.util.words import split_words


@dataclass(frozen=True)
class Source:
    """Where ARGSADD words came from, for messages and for who may allow them."""

    what: str                        # 'ARGSADD' | 'TIMEOPT' | '--argsadd'
    words: Tuple[str, ...]
    conf_path: Optional[str] = None  # None: the command line

    @property
    def line(self) -> Optional[int]:
        """Looked up only for a message (it reads the conf again)."""
        return conf_line(self.conf_path, self.what) if self.conf_path else None


def conf_line(conf_path: str, var: str) -> Optional[int]:
    """The line of the last assignment of ``var`` in the conf (for messages only)."""
    try:
        text = Path(conf_path).read_text(errors="replace")
    except OSError:
        return None
    pat = re.compile(r"(?:^|[\s;&|(])" + re.escape(var) + r"=")
    last = None
    for no, line in enumerate(text.splitlines(), 1):
        if pat.search(line) and not line.lstrip().startswith("#"):
            last = no
    return last


def sources(vm, request) -> List[Source]:
    """The conf's ARGSADD and TIMEOPT words and the request's --argsadd words."""
    out = []
    for what, raw in (("ARGSADD", vm.argsadd), ("TIMEOPT", vm.timeopt)):
        if not raw or raw == "-localtime":
            continue
        try:
            words = tuple(w for w in split_words(raw) if not (what == "TIMEOPT" and w == "-localtime"))
        except ValueError:
            continue        # the plan reports unbalanced quotes itself
        if words:
            out.append(Source(what, words, str(vm.source_path)))
    cli: List[str] = []
    for raw in getattr(request, "argsadd", ()) or ():
        try:
            cli += split_words(raw)
        except ValueError:
            continue
    if cli:
        out.append(Source("--argsadd", tuple(cli)))
    return out
