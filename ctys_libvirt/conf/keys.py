"""`#@#KEY = value` inventory keys and MAGICID flags (conf-format.md §1.3, §2.1).

Read as data with one regex over the whole text (fast enough for inventory scans of
thousands of files); the shell part is not parsed here.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List

from ctys_libvirt.errors import ConfError, NotFoundError

MAX_CONF_BYTES = 1024 * 1024
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)

# After deleting TABs and turning ' into ": #@#, KEY, blanks, '=', blanks, any quotes,
# VALUE up to the next quote or end of line.  Only blanks may precede '#@#' on its line:
# the pattern starts at the newline before them (a literal first character keeps the scan
# fast); a key on the first line is matched separately.
_KEY_BODY = r'#@#([A-Za-z0-9_][A-Za-z0-9_.:-]*) *= *("*)([^"\n]*)'
_KEY_LINE = re.compile("\n *" + _KEY_BODY)
_KEY_FIRST = re.compile(" *" + _KEY_BODY)
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


def _read_limited(fd: int) -> bytes:
    """Up to MAX_CONF_BYTES + 1 bytes (until EOF).  Reads are sized from fstat: a single
    read(MAX_CONF_BYTES + 1) allocates a 1 MiB buffer per conf, which costs more than
    the rest of reading it (and os.read is cheaper than a file object)."""
    want = min(os.fstat(fd).st_size, MAX_CONF_BYTES) + 1
    chunks = []
    total = 0
    while True:
        chunk = os.read(fd, want)
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
        if total > MAX_CONF_BYTES:
            break
        want = min(65536, MAX_CONF_BYTES + 1 - total)
    if len(chunks) == 1:
        return chunks[0]
    data = b"".join(chunks)
    return data[:MAX_CONF_BYTES + 1]


def read_bytes(path: Path) -> bytes:
    """Conf bytes with the size limit applied (ConfError/NotFoundError, never OSError)."""
    try:
        fd = os.open(path, os.O_RDONLY | _O_CLOEXEC)
        try:
            data = _read_limited(fd)
        finally:
            os.close(fd)
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
    found = _KEY_LINE.findall(norm)
    first = _KEY_FIRST.match(norm)
    if first:
        found.insert(0, first.groups())
    warnings = info.warnings
    for key, quotes, value in found:
        if key in keys or key.startswith("MAGICID"):
            continue
        if not quotes and "#" in value:
            # unquoted values may carry a trailing '# comment' (hand-edited files)
            value = _UNQUOTED_COMMENT.sub("", value)
        value = value.strip()
        if " " in value:
            warnings.append(f"key {key} has blanks in its value {value!r} "
                            "(legacy tools used only the last word)")
        keys[key] = value
    return info


def key_flags(text: str, path: Path) -> KeyInfo:
    """parse_keys without the keys: the MAGICID flags and shebang (see add_key_records)."""
    info = KeyInfo(path=path)
    info.shebang = text.startswith("#!")
    if "#@#" in text:
        info.magic_qemu = "#@#MAGICID-QEMU" in text
        info.magic_ignore = "#@#MAGICID-IGNORE" in text
        info.magic_noenum = "#@#MAGICID-NOENUM" in text
    return info


def key_record(line: str):
    """(key, value, warning or None) of one line (no newline) as parse_keys reads it, or
    None when the line holds no key (MAGICID lines hold none)."""
    if "\t" in line or "'" in line:      # parse_keys' normalisation ("#\t@#" is "#@#")
        line = line.replace("\t", "").replace("'", '"')
    if "#@#" not in line:
        return None
    m = _KEY_FIRST.match(line)
    if m is None:
        return None
    key, quotes, value = m.groups()
    if key.startswith("MAGICID"):
        return None
    if not quotes and "#" in value:
        value = _UNQUOTED_COMMENT.sub("", value)
    value = value.strip()
    warning = None
    if " " in value:
        warning = (f"key {key} has blanks in its value {value!r} "
                   "(legacy tools used only the last word)")
    return (key, value, warning)


def add_key_records(info: KeyInfo, records, text: str) -> KeyInfo:
    """Fill info.keys/warnings from the key_record()s of text's lines in file order (first
    line wins): with key_flags, the same KeyInfo as parse_keys(text)."""
    if "#@#" not in text:                # parse_keys looks no further
        return info
    keys = info.keys
    for key, value, warning in records:
        if key in keys:
            continue
        if warning is not None:
            info.warnings.append(warning)
        keys[key] = value
    return info


def read_keys(path) -> KeyInfo:
    """Fast header read of one conf: keys dict and MAGICID flags, no shell parsing."""
    p = Path(path)
    return parse_keys(decode(read_bytes(p), p), p)
