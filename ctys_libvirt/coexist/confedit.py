"""Rewrite simple assignments (and ``#@#`` keys) of a conf in place, keeping every other
byte of the file as it was.  Only a variable assigned exactly once, at the top level (not
inside if/case), to a literal word is rewritten; anything else is refused with the
reason, so a conf is never half understood and wrongly edited."""
from __future__ import annotations

import os
import re
import tempfile
from typing import Dict, List, Tuple

from ctys_libvirt.coexist.confmap import shell_word

_LITERAL = r"""(?:[^\s"'$`\\;&|<>()#]*|"[^"$`\\]*"|'[^']*')"""
_OPENERS = {"if": 1, "case": 1, "fi": -1, "esac": -1}


def _assign_re(var: str) -> "re.Pattern":
    return re.compile(rf"^(?P<lead>[ \t]*){re.escape(var)}=(?P<val>{_LITERAL})(?P<tail>[ \t]*(?:#.*)?)$")


def _any_assign_re(var: str) -> "re.Pattern":
    return re.compile(rf"(?:^|[\s;&|]){re.escape(var)}=")


def _depths(lines: List[str]) -> List[int]:
    """Nesting depth (if/case) at the start of each line: a rough but safe guard."""
    out, depth = [], 0
    for line in lines:
        out.append(depth)
        for word in re.findall(r"(?:^|[\s;])(if|case|fi|esac)(?=[\s;]|$)", line.split("#", 1)[0]):
            depth += _OPENERS[word]
    return out


def apply(text: str, assignments: Dict[str, str], keys: Dict[str, str]) -> Tuple[str, List[str], List[str]]:
    """(new text, changes made, refusals)."""
    lines = text.split("\n")
    depths = _depths(lines)
    changes: List[str] = []
    refused: List[str] = []
    appended: List[str] = []
    for var, value in assignments.items():
        if any(c in value for c in "\n\r\0"):
            refused.append(f"{var}: the value {value!r} spans lines; set it by hand")
            continue
        word = shell_word(value)
        rx, any_rx = _assign_re(var), _any_assign_re(var)
        hits = [i for i, line in enumerate(lines)
                if not line.lstrip().startswith("#") and any_rx.search(line)]
        if not hits:
            appended.append(f"{var}={word}")
            changes.append(f"{var}={word} (added)")
            continue
        if len(hits) > 1:
            refused.append(f"{var} is assigned {len(hits)} times (lines "
                           + ", ".join(str(i + 1) for i in hits) + "); set it to "
                           + f"{word} by hand")
            continue
        i = hits[0]
        m = rx.match(lines[i])
        if m is None or depths[i] != 0:
            refused.append(f"{var} on line {i + 1} is not a simple top-level assignment; "
                           f"set it to {word} by hand")
            continue
        old = m.group("val")
        if _unquote(old) == value:
            continue
        lines[i] = f"{m.group('lead')}{var}={word}{m.group('tail')}"
        changes.append(f"line {i + 1}: {var}={old} -> {var}={word}")
    for key, value in keys.items():
        if any(c in value for c in '\n\r\0"'):
            refused.append(f"#@#{key}: the value {value!r} cannot be a key value; set it by hand")
            continue
        krx = re.compile(rf'^(?P<lead>[ \t]*#@#{re.escape(key)}[ \t]*=[ \t]*)(?P<val>.*)$')
        hits = [i for i, line in enumerate(lines) if krx.match(line)]
        new = f'"{value}"'
        if not hits:
            at = next((i + 1 for i, line in enumerate(lines) if line.startswith("#@#LABEL")), 0)
            lines.insert(at, f'#@#{key:<24} = {new}')
            depths.insert(at, 0)
            changes.append(f"#@#{key} = {new} (added)")
            continue
        for i in hits:
            m = krx.match(lines[i])
            if m.group("val").strip().strip('"\'') != value:
                lines[i] = m.group("lead") + new
                changes.append(f"line {i + 1}: #@#{key} -> {new}")
    if appended:
        if lines and lines[-1] == "":
            lines = lines[:-1] + appended + [""]
        else:
            lines += appended
    return "\n".join(lines), changes, refused


def _unquote(word: str) -> str:
    if len(word) >= 2 and word[0] == word[-1] and word[0] in "\"'":
        return word[1:-1]
    return word


def write_atomically(path: str, text: str) -> None:
    """Replace ``path`` with ``text`` keeping its mode and owner (never a torn file)."""
    st = os.stat(path)
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".ctys-sync-", dir=d)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape", newline="") as f:
            f.write(text)
        os.chmod(tmp, st.st_mode & 0o7777)
        try:
            os.chown(tmp, st.st_uid, st.st_gid)
        except PermissionError:
            pass
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
