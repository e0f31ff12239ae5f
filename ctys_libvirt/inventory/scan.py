"""ENUMERATE scan: find ``*.ctys`` confs under base paths and read their ``#@#`` header.

Fast path by design (design.md §8): one ``os.scandir`` walk, one ``read()`` per candidate file,
byte-level substring tests for the MAGICID flags (conf-format.md §1.3), one regex pass for the
``#@#KEY = value`` lines (§2.1) and a few literal shell defaults (MEMSIZE, SMP, ...).  No shell
parsing unless the caller asks for it (``full=True`` uses ``ctys_libvirt.conf.load_conf``).
Problems are collected as per-file warnings; the scan never aborts because of one file.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

PathLike = Union[str, Path]

_IGNORE = b"#@#MAGICID-IGNORE"
_NOENUM = b"#@#MAGICID-NOENUM"
_QEMU = b"#@#MAGICID-QEMU"

# conf-format.md §2.1: ^ *#@#KEY *= *"*VALUE"*.*$ with TABs deleted and ' read as ".
# Anchored on a literal '\n' (the text gets one prepended) instead of '^' + re.M: the regex
# engine then jumps between newlines with a fast literal search (5x faster on real confs).
_KEY_RE = re.compile(r'\n[ \t]*+#@#([A-Za-z0-9_]+)[ \t]*+=[ \t]*+["\']*+([^"\'\n]*+)')
# The #@# keys the ENUMERATE record reads (record.header_records; a test proves the list
# complete).
RECORD_KEYS = (
    "LABEL", "UUID", "VNCACCESSDISPLAY", "VNCACCESSPORT", "SPORT", "VNCBASEPORT", "DIST",
    "DISTREL", "OS", "OSREL", "VERSION", "SERNO", "VMSTATE", "INST_HYPERREL", "STACKCAP",
    "STACKREQ", "HWCAP", "HWREQ", "EXECLOCATION", "RELOCCAP", "INST_ACCELERATOR", "STARTERCALL",
    "CTYSREL", "CTYSRELEASE", "ARCH", "PLATFORM", "VRAM", "VCPU", "CSTRG", "USTRG",
    "DEFAULTHOSTS", "DEFAULTCONSOLE",
)


def _by_first_letter(alternatives: Sequence[str]) -> str:
    """``a|b|...`` of regex alternatives that each start with a plain letter, grouped by
    that letter (``A(?:RCH)|C(?:TYSREL|TYSRELEASE)|...``): the same matches (a line can only
    match the alternatives of its own first letter, tried in the same order), but the regex
    engine tries ~15 letters instead of ~35 words at every key line (7.4 -> 6.2 us a conf)."""
    groups: Dict[str, List[str]] = {}
    for a in alternatives:
        groups.setdefault(a[0], []).append(a[1:])
    return "|".join(c + "(?:" + "|".join(rest) + ")" for c, rest in groups.items())


# Literal shell values the record needs: VAR=value | VAR=${VAR:-value}, followed through
# every assignment of the variable like the shell would; anything computed needs the real
# reader (--full).
_SHELL_VARS = ("MEMSIZE", "SMP", "ACCELERATOR", "STARTERCALL", "ARCH")
# their line-start assignments, all five in one pass ('\n'-anchored as _KEY_RE):
# (VAR, OTHER of VAR=${OTHER:-..., the literal part)
_SHELL_ASSIGN_RE = re.compile(r"\n[ \t]*+(" + _by_first_letter(_SHELL_VARS) + r")="
                              r"""["']?(?:\$\{([A-Za-z_][A-Za-z0-9_]*):-)?([^"'}\s;`]*)""")
# The records' scan matches only the RECORD_KEYS and interface key lines (same shape as
# _KEY_RE; [0-9], not \d: Unicode digits are no key characters there).  A regex costs ~0.4 us
# per match: skipping the ~30 other key lines of a generated header halves its time.
_RECORD_KEY_RE = re.compile(r'\n[ \t]*+#@#('
                            + _by_first_letter(("MAC[0-9]*+", "IP[0-9]*+") + RECORD_KEYS)
                            + r')[ \t]*+=[ \t]*+["\']*+([^"\'\n]*+)')
# (what r"\s-m\s+(\d+)" finds, the blank before "-m" looked at from behind: a pattern that
# starts with the literal is searched for it, one starting with \s is tried at every
# character - 19 us instead of 1.5 for a 4 KiB conf without a literal MEMSIZE)
_DASH_M_RE = re.compile(r"-m(?<=\s-m)\s+(\d+)")
_DASH_SMP_RE = re.compile(r"-smp\s+(\d+)")


class _Record:
    """Fields, equality and repr as a dataclass has them.  (Plain classes: ``dataclasses``
    imports ``inspect``, ~8 ms of the start of every ENUMERATE.)"""

    __slots__ = ()
    _fields: Tuple[str, ...] = ()

    def _values(self) -> tuple:
        return tuple(getattr(self, f) for f in self._fields)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]  # mutable, as a dataclass without frozen

    def __repr__(self) -> str:
        return f"{type(self).__name__}(" + ", ".join(
            f"{f}={getattr(self, f)!r}" for f in self._fields) + ")"


class ConfHeader(_Record):
    """What the scan learned about one accepted conf without executing or fully parsing it.

    ``path``: absolute path of the .ctys; ``keys``: #@# keys, first occurrence wins (raw
    value; consumers take last_word() as legacy did); ``shell``: literal
    MEMSIZE/SMP/ACCELERATOR/...; ``mtime``."""

    __slots__ = ("path", "keys", "shell", "mtime")
    _fields = __slots__

    def __init__(self, path: str, keys: Dict[str, str], shell: Optional[Dict[str, str]] = None,
                 mtime: float = 0.0) -> None:
        self.path = path
        self.keys = keys
        self.shell = {} if shell is None else shell
        self.mtime = mtime

    @property
    def label(self) -> str:
        return last_word(self.keys.get("LABEL", "")) or stem_of(self.path)

    @property
    def stem(self) -> str:
        return stem_of(self.path)


class ScanResult(_Record):
    """``headers`` found, per-file ``warnings``, ``files_seen`` (*.ctys files looked at)."""

    __slots__ = ("headers", "warnings", "files_seen")
    _fields = __slots__

    def __init__(self, headers: Optional[List[ConfHeader]] = None,
                 warnings: Optional[List[str]] = None, files_seen: int = 0) -> None:
        self.headers = [] if headers is None else headers
        self.warnings = [] if warnings is None else warnings
        self.files_seen = files_seen


def stem_of(path: str) -> str:
    """Legacy stem: basename up to the first '.'."""
    return os.path.basename(path).split(".", 1)[0]


def last_word(value: str) -> str:
    """Legacy consumers keep only the last blank-separated word of a key's value."""
    parts = value.split()
    return parts[-1] if parts else ""


_MAGIC = b"#@#MAGICID-"


def classify(data: bytes) -> Optional[bool]:
    """None: no MAGICID-QEMU (not ours); False: ignored (IGNORE/NOENUM); True: accepted.

    The same as the three substring tests (``_IGNORE in data`` ...) in one pass over the
    file: every ``#@#MAGICID-`` is looked at once (occurrences cannot overlap), instead of
    scanning the whole file for IGNORE and for NOENUM and then for QEMU (1.8 vs 2.6 us)."""
    find = data.find
    i = find(_MAGIC)
    found = None
    while i >= 0:
        tag = data[i + 11:i + 17]
        if tag == b"IGNORE" or tag == b"NOENUM":
            return False
        if tag[:4] == b"QEMU":
            found = True
        i = find(_MAGIC, i + 11)
    return found


def _shell_literals(assignments) -> Dict[str, str]:
    """Literal values of the ``_SHELL_VARS`` after all their line-start ``assignments``
    ((VAR, OTHER of ``${OTHER:-``, literal) in text order), as the shell would leave them:
    ``VAR=lit`` replaces, ``VAR=${VAR:-lit}`` fills only an empty value.  A variable that is
    unset, empty, or decided by something computed (``$``) is left out (--full knows)."""
    vals: Dict[str, str] = {}
    computed = set()
    for var, ref, v in assignments:
        if var in computed:
            continue
        if ref and ref != var:
            computed.add(var)                     # VAR=${OTHER:-...}: computed
        elif not ref or not vals.get(var):        # a default only fills an empty value
            if "$" in v:
                computed.add(var)
            else:
                vals[var] = v
    return {k: v for k, v in vals.items() if v and k not in computed}


def parse_header_bytes(path: str, data: bytes, *, record_keys: bool = False) -> ConfHeader:
    """The header of one conf's bytes.  ``record_keys``: only the ``RECORD_KEYS`` and
    interface keys (all the ENUMERATE record needs; its records are the same)."""
    keys, shell = header_values(data, record_keys=record_keys)
    return ConfHeader(path=path, keys=keys, shell=shell)


def header_values(data: bytes, *, record_keys: bool = False) -> Tuple[Dict[str, str], Dict[str, str]]:
    """(#@# keys, shell literals) of ``parse_header_bytes``, without the ConfHeader (the
    cold ENUMERATE makes its record lines straight from them)."""
    text = "\n" + data.decode("utf-8", "replace")
    # The #@# keys: only the text up to the last '#@#' line is searched (generated confs keep
    # their keys in a header block; the shell body below is never regex-scanned for them).
    end = text.rfind("#@#")
    keys: Dict[str, str] = {}
    if end >= 0:
        nl = text.find("\n", end)
        if nl < 0:
            nl = len(text)
        # first occurrence wins: reversed() lets earlier pairs overwrite later ones
        keys = dict(reversed((_RECORD_KEY_RE if record_keys else _KEY_RE).findall(text, 0, nl)))
        if text.find("\t", 0, nl) >= 0:  # legacy deletes every TAB before matching
            keys = {k: v.replace("\t", "") for k, v in keys.items()}
    shell = _shell_literals(_SHELL_ASSIGN_RE.findall(text))
    if "MEMSIZE" not in shell:
        m = _DASH_M_RE.search(text)
        if m:
            shell["MEMSIZE"] = m.group(1)
    if "SMP" not in shell:
        m = _DASH_SMP_RE.search(text)
        if m:
            shell["SMP"] = m.group(1)
    return keys, shell


_CHUNK = 65536


def read_bytes(path: str) -> bytes:
    """A whole (regular) file: plain os.open/os.read are 40% cheaper than open().read() for
    the 4 KiB of a conf, and ENUMERATE reads 10,000 of them.  OSError propagates."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = os.read(fd, _CHUNK)
        if len(data) < _CHUNK:      # a short read of a regular file is its end
            return data
        chunks = [data]
        while data:
            data = os.read(fd, _CHUNK)
            chunks.append(data)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_header(path: PathLike, *, include_ignored: bool = False, record_keys: bool = False,
                data: Optional[bytes] = None) -> Optional[ConfHeader]:
    """Header of one conf, or None if it is not an (active) QEMU conf.  OSError propagates.
    ``record_keys``: see ``parse_header_bytes``; ``data``: the file's bytes, already read."""
    p = os.fspath(path)
    if data is None:
        data = read_bytes(p)
    c = classify(data)
    if c is None or (c is False and not include_ignored):
        return None
    return parse_header_bytes(os.path.abspath(p), data, record_keys=record_keys)


def with_layout_0107(confs: list, legacy: list, name=lambda e: e.name) -> list:
    """``confs`` (the ``*.ctys`` of one directory) plus the ``<stem>.conf`` files of
    ``legacy`` that sit next to a ``<stem>.ctys``: the 01.07 layout, where the ``.conf`` is
    the conf and the ``.ctys`` a bash wrapper.  Each file is then judged on its own flags."""
    if not legacy:
        return confs
    have = {name(e) for e in confs}
    return confs + [e for e in legacy if name(e)[:-5] + ".ctys" in have]


def conf_order(name: str) -> Tuple[str, bool]:
    """Sort key of the confs of one directory: by name, a ``<stem>.ctys`` before its
    ``<stem>.conf`` (when both are accepted, the .ctys is the VM's conf)."""
    return name[:-5], name.endswith(".conf")


def key_file_of(path: str, previous: str) -> bool:
    """True for a ``<stem>.conf`` right after its accepted ``<stem>.ctys``: the key file of
    the same VM (ctys-conf variant), not a second conf worth a redundancy warning."""
    return path.endswith(".conf") and previous == path[:-5] + ".ctys"


def iter_ctys_entries(base: str, warnings: List[str]) -> Iterator[os.DirEntry]:
    """``*.ctys`` files under ``base`` as DirEntry objects (symlinked directories are not
    followed, like ``find``).  Confs of one directory come sorted and together (the
    duplicate-stem rule needs that).  The inner loop is the hot path of ENUMERATE."""
    stack = [base]
    pop, push = stack.pop, stack.append
    while stack:
        d = pop()
        confs = []
        legacy = []
        try:
            with os.scandir(d) as it:
                entries = list(it)
        except OSError as exc:
            warnings.append(f"cannot read directory {d}: {exc.strerror or exc}")
            continue
        try:
            for e in entries:
                if e.name.endswith(".ctys"):
                    if e.is_file():
                        confs.append(e)
                    elif e.is_dir(follow_symlinks=False):
                        push(e.path)
                elif e.name.endswith(".conf") and e.is_file():
                    legacy.append(e)
                elif e.is_dir(follow_symlinks=False):
                    push(e.path)
        except OSError:  # rare (stat of an entry failed): redo this directory carefully
            confs = []
            legacy = []
            for e in entries:
                try:
                    if e.is_dir(follow_symlinks=False):
                        if e.path not in stack:
                            push(e.path)
                    elif e.name.endswith(".ctys") and e.is_file():
                        confs.append(e)
                    elif e.name.endswith(".conf") and e.is_file():
                        legacy.append(e)
                except OSError as exc:
                    warnings.append(f"cannot stat {e.path}: {exc.strerror or exc}")
        confs = with_layout_0107(confs, legacy)
        if len(confs) > 1:
            confs.sort(key=lambda e: conf_order(e.name))
        yield from confs


def iter_ctys_files(base: str, warnings: List[str]) -> Iterator[str]:
    """Paths of ``iter_ctys_entries``."""
    for e in iter_ctys_entries(base, warnings):
        yield e.path


def normalize_base(base: PathLike, *, home: Optional[str] = None) -> str:
    b = os.fspath(base)
    if b == "~" or b.startswith("~/"):
        b = (home or os.path.expanduser("~")) + b[1:]
    return os.path.abspath(b)


# File systems where every open and read waits for a server: a cold scan reads ahead there.
NETWORK_FS = frozenset(("nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "ceph", "glusterfs",
                        "fuse.sshfs", "afs", "lustre", "gpfs", "fuse.glusterfs", "fuse.cephfs"))
READ_AHEAD_THREADS = 8
_OCTAL_ESC = re.compile(r"\\([0-7]{3})")     # mountinfo writes ' ' as \040


def fs_type(path: str, mountinfo: str = "/proc/self/mountinfo") -> str:
    """The type of the file system ``path`` lies on (the longest mount point above it in
    ``mountinfo``), '' when unknown."""
    real = os.path.realpath(path)
    best, kind = -1, ""
    try:
        with open(mountinfo, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                left, _, right = line.partition(" - ")
                fields = left.split()
                if len(fields) < 5 or not right:
                    continue
                mnt = _OCTAL_ESC.sub(lambda m: chr(int(m.group(1), 8)), fields[4])
                if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) and len(mnt) > best:
                    best, kind = len(mnt), right.split()[0]
    except OSError:
        return ""
    return kind


def read_ahead_threads(base: str) -> int:
    """Reader threads for a cold scan of ``base``: several on a network file system (their
    round trips overlap; the GIL is released while they wait), none on a local one (a
    thread per read costs more than the read)."""
    return READ_AHEAD_THREADS if fs_type(base) in NETWORK_FS else 0


def _read_ahead(paths: Iterable[str], threads: int, window: int = 64):
    """(path, its bytes or the OSError reading it), in the order of ``paths``, read by
    ``threads`` threads at most ``window`` files ahead of the caller."""
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    def read(p: str):
        try:
            return read_bytes(p)
        except OSError as exc:
            return exc

    with ThreadPoolExecutor(threads) as ex:
        ahead: deque = deque()
        for p in paths:
            ahead.append((p, ex.submit(read, p)))
            if len(ahead) >= window:
                p0, fut = ahead.popleft()
                yield p0, fut.result()
        while ahead:
            p0, fut = ahead.popleft()
            yield p0, fut.result()


def _scan_files(files: Iterable[str], res: ScanResult, seen_paths: set, *,
                include_ignored: bool, full: bool, context, record_keys: bool = False,
                read_threads: int = 0) -> None:
    last_dir_stem: Tuple[str, str] = ("", "")
    last_path = ""
    reads = _read_ahead(files, read_threads) if read_threads > 1 else ((p, None) for p in files)
    for path, data in reads:
        res.files_seen += 1
        if path in seen_paths:  # overlapping bases
            continue
        seen_paths.add(path)
        try:
            if isinstance(data, OSError):
                raise data
            hdr = read_header(path, include_ignored=include_ignored, record_keys=record_keys,
                              data=data)
        except OSError as exc:
            res.warnings.append(f"cannot read {path}: {exc.strerror or exc}")
            continue
        if hdr is None:
            continue
        ds = (os.path.dirname(path), hdr.stem)
        if ds == last_dir_stem:
            if key_file_of(path, last_path):
                continue
            res.warnings.append(
                f"Configuration-Redundancy: {path} has the same stem as the previous conf "
                f"in {ds[0]}; skipped")
            continue
        last_dir_stem = ds
        last_path = path
        if full:
            err = _full_parse(hdr, context)
            if err:
                res.warnings.append(err)
                continue
        res.headers.append(hdr)


def _base_files(base: str, res: ScanResult) -> Optional[Iterable[str]]:
    if os.path.isfile(base) and base.endswith((".ctys", ".conf")):
        return [base]
    if not os.path.isdir(base):
        res.warnings.append(f"base path {base} does not exist or is not a directory")
        return None
    return iter_ctys_files(base, res.warnings)


def scan(
    bases: Sequence[PathLike] = (),
    *,
    include_ignored: bool = False,
    full: bool = False,
    context=None,
) -> ScanResult:
    """Scan ``bases`` (default ``$HOME``) for QEMU confs.

    A missing base, an unreadable directory or file, or (with ``full``) a conf the reader
    rejects becomes a warning; the rest of the scan goes on.  Two accepted confs with the
    same stem in one directory (``vm.ctys`` / ``vm.old.ctys``): the later one is skipped with
    the legacy "Configuration-Redundancy" warning."""
    res = ScanResult()
    blist = [normalize_base(b) for b in bases] or [os.path.expanduser("~")]
    seen_paths: set = set()
    for base in blist:
        files = _base_files(base, res)
        if files is not None:
            _scan_files(files, res, seen_paths, include_ignored=include_ignored, full=full,
                        context=context)
    res.headers.sort(key=lambda h: h.path)  # stable output whatever the directory order
    return res


def split_units(base: str, want: int, max_depth: int = 3) -> Tuple[List[str], List[str]]:
    """Cut the tree below ``base`` into independent units for parallel scanning:
    (subdirectories to walk recursively, ``*.ctys`` files found on the way down).  Goes one
    level deeper while there are fewer than ``want`` subdirectories."""
    dirs, files = [base], []
    for _ in range(max_depth):
        if len(dirs) >= want:
            break
        nxt: List[str] = []
        for d in dirs:
            try:
                with os.scandir(d) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError:
                return [base], []  # let the serial walk report it
            confs, legacy = [], []
            for e in entries:
                try:
                    if e.is_dir(follow_symlinks=False):
                        nxt.append(e.path)
                    elif e.name.endswith(".ctys") and e.is_file():
                        confs.append(e)
                    elif e.name.endswith(".conf") and e.is_file():
                        legacy.append(e)
                except OSError:
                    return [base], []
            files.extend(e.path for e in sorted(with_layout_0107(confs, legacy),
                                                key=lambda e: conf_order(e.name)))
        dirs = nxt
    return dirs, files


def _full_parse(hdr: ConfHeader, context) -> Optional[str]:
    """Run the real conf reader and overlay its typed values on the fast ones."""
    from ctys_libvirt.errors import CtysError

    try:
        from ctys_libvirt.conf import load_conf
    except ImportError:  # conf reader not installed: keep the header values
        return None
    try:
        vm = load_conf(hdr.path, context=context)
    except CtysError as exc:
        line = exc.one_line()     # ConfErrors already start with the path: say it once
        return line if line.startswith(str(hdr.path)) else f"{hdr.path}: {line}"
    except Exception as exc:  # a reader bug must not abort a scan of thousands of files
        return f"{hdr.path}: conf reader failed: {exc}"
    hdr.shell["MEMSIZE"] = str(vm.memory_mib)
    hdr.shell["SMP"] = str(vm.smp)
    hdr.shell["ACCELERATOR"] = vm.accelerator or hdr.shell.get("ACCELERATOR", "")
    if vm.startercall:
        hdr.shell["STARTERCALL"] = vm.startercall
    if vm.arch:
        hdr.shell["ARCH"] = vm.arch
    return None
