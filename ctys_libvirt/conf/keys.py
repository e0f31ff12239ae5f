"""`#@#KEY = value` inventory keys and MAGICID flags (conf-format.md §1.3, §2.1).

Read as data with one regex over the whole text (fast enough for inventory scans of
thousands of files); the shell part is not parsed here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List

from ctys_libvirt.errors import ConfError, NotFoundError

MAX_CONF_BYTES = 1024 * 1024

# After deleting TABs and turning ' into ": #@#, KEY, blanks, '=', blanks, any quotes,
# VALUE up to the next quote or end of line.  Only blanks may precede '#@#' on its line
# (checked in code: a literal-prefix search is much faster than a '^' anchored scan).
_KEY_LINE = re.compile(r'#@#([A-Za-z0-9_][A-Za-z0-9_.:-]*) *= *("*)([^"\n]*)')
_UNQUOTED_COMMENT = re.compile(r"\s+#.*$")


@dataclass
class KeyInfo:
    """What a quick header read of one conf yields."""

    path: Path
    keys: Dict[str, str] = field(default_factory=dict)
    magic_qemu: bool = False        # some line contains '#@#MAGICID-QEMU'
    magic_ignore: bool = False      # some line contains '#@#MAGICID-IGNORE'
    magic_noenum: bool = False      # some line contains '#@#MAGICID-NOENUM'
    shebang: bool = False           # first line starts with '#!' (legacy ctys-conf wrapper)
    warnings: List[str] = field(default_factory=list)

    @property
    def active(self) -> bool:
        """Importable per §1.3: MAGICID-QEMU present, no IGNORE/NOENUM anywhere."""
        return self.magic_qemu and not (self.magic_ignore or self.magic_noenum)

    @property
    def label(self) -> str:
        return self.keys.get("LABEL", "")


def read_bytes(path: Path) -> bytes:
    """Conf bytes with the size limit applied (ConfError/NotFoundError, never OSError)."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_CONF_BYTES + 1)
    except FileNotFoundError:
        raise NotFoundError(f"conf file {path} does not exist",
                            hint="give the path of a <label>.ctys file or its VM directory") from None
    except IsADirectoryError:
        raise ConfError(f"{path} is a directory, not a conf file",
                        hint="give the .ctys file or use the VM directory form") from None
    except OSError as exc:
        raise ConfError(f"cannot read conf {path}: {exc.strerror}",
                        hint="check the file's permissions") from None
    if len(data) > MAX_CONF_BYTES:
        raise ConfError(f"conf file {path} is larger than {MAX_CONF_BYTES // 1024} KiB",
                        path=str(path), construct="file too large",
                        hint="a ctys conf is a few KiB; check that this is the right file")
    return data


def decode(data: bytes, path: Path) -> str:
    """Bytes -> text: UTF-8 (BOM dropped) else Latin-1; CRLF -> LF; NUL bytes rejected."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if b"\x00" in data:
        raise ConfError("conf contains NUL bytes (not a text file)", path=str(path),
                        construct="binary data", hint="check that this is the right file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    return text


def parse_keys(text: str, path: Path) -> KeyInfo:
    """Keys and flags of a conf's text (first matching line wins)."""
    info = KeyInfo(path=path)
    info.shebang = text.startswith("#!")
    if "#@#" not in text:
        return info
    info.magic_qemu = "#@#MAGICID-QEMU" in text
    info.magic_ignore = "#@#MAGICID-IGNORE" in text
    info.magic_noenum = "#@#MAGICID-NOENUM" in text
    norm = text.replace("\t", "").replace("'", '"') if ("\t" in text or "'" in text) else text
    keys = info.keys
    for m in _KEY_LINE.finditer(norm):
        start = m.start()
        if start and norm[start - 1] != "\n":
            if norm[norm.rfind("\n", 0, start) + 1:start].strip(" "):
                continue
        key = m.group(1)
        if key in keys or key.startswith("MAGICID"):
            continue
        value = m.group(3)
        if not m.group(2) and "#" in value:
            # unquoted values may carry a trailing '# comment' (hand-edited files)
            value = _UNQUOTED_COMMENT.sub("", value)
        value = value.strip()
        if " " in value:
            info.warnings.append(f"key {key} has blanks in its value {value!r} "
                                 "(legacy tools used only the last word)")
        keys[key] = value
    return info


def read_keys(path) -> KeyInfo:
    """Fast header read of one conf: keys dict and MAGICID flags, no shell parsing."""
    p = Path(path)
    return parse_keys(decode(read_bytes(p), p), p)
