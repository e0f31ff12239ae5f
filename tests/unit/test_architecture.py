"""The intended layering (docs/architecture.md), read from its one declaration in
pyproject.toml (``[tool.ctys_libvirt.layers] order``) and checked on the source with ``ast``:

* a module imports only from its own line of the order and the lines below it (imports inside
  functions count; only ``if TYPE_CHECKING:`` blocks are ignored);
* no cycles between parts (entries of the order);
* the front ends (``cli/``) use only public names of the library;
* ``translate/`` is pure: nothing of ``host/``, ``backends/`` or libvirt-python.

Each failure names ``file:line`` of the import that breaks the rule."""
from __future__ import annotations

import ast
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import pytest

from support.paths import REPO

LIB = REPO / "ctys_libvirt"
CLI = REPO / "cli"                  # installed as ctys_libvirt.cli
TRANSLATE_MUST_NOT_IMPORT = ("host", "backends", "libvirt")   # `libvirt`: libvirt-python


# --- the declaration -----------------------------------------------------------------------

def load_order(pyproject: Path = REPO / "pyproject.toml") -> List[List[str]]:
    """The layers top to bottom, each a list of entries."""
    data = tomllib.loads(pyproject.read_text())
    return [line.split() for line in data["tool"]["ctys_libvirt"]["layers"]["order"]]


@lru_cache(maxsize=None)
def _order() -> Tuple[Tuple[str, ...], ...]:
    return tuple(tuple(line) for line in load_order())


def level(entry: str, order=None) -> int:
    """Index of ``entry``'s line (0 = top)."""
    for i, line in enumerate(order or _order()):
        if entry in line:
            return i
    raise KeyError(entry)


def entry_of(module: str, order=None) -> Optional[str]:
    """The longest entry naming ``module`` (dotted, relative to ctys_libvirt: ``model``,
    ``security.inuse``, ``cli.app``), or None when no entry names it."""
    best = None
    for line in order or _order():
        for e in line:
            if (module == e or module.startswith(e + ".")) and (best is None or len(e) > len(best)):
                best = e
    return best


# --- the source ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Import:
    path: Path          # importing file
    line: int
    module: str         # importing module, dotted relative to ctys_libvirt ("cli.app")
    target: str         # imported module: relative to ctys_libvirt, or "!<top>" outside it
    names: Tuple[str, ...]   # names taken by `from X import names` (empty for `import X`)

    @property
    def where(self) -> str:
        return f"{_rel(self.path)}:{self.line}"


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def source_files() -> Iterator[Tuple[Path, str]]:
    """(file, module) for every module of the library and the front ends."""
    for base, top in ((LIB, []), (CLI, ["cli"])):
        for p in sorted(base.rglob("*.py")):
            parts = top + list(p.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__" and len(parts) > 1:
                parts = parts[:-1]           # a package is named by its folder
            yield p, ".".join(parts)


def _module_exists(dotted: str) -> bool:
    """Is ``dotted`` (relative to ctys_libvirt) a module or package of ours?"""
    parts = dotted.split(".")
    base = CLI if parts[0] == "cli" else LIB
    rest = parts[1:] if parts[0] == "cli" else parts
    p = base.joinpath(*rest) if rest else base
    return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()


def _ours(absolute: str) -> Optional[str]:
    """``ctys_libvirt.x.y`` -> ``x.y``; ``ctys_libvirt`` -> ``__init__``; else None."""
    if absolute == "ctys_libvirt":
        return "__init__"
    if absolute.startswith("ctys_libvirt."):
        return absolute[len("ctys_libvirt."):]
    return None


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or \
        (isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _walk(node: ast.AST) -> Iterator[ast.AST]:
    """ast.walk, without ``if TYPE_CHECKING:`` bodies."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child):
            for o in child.orelse:
                yield o
                yield from _walk(o)
            continue
        yield child
        yield from _walk(child)


def _package_of(path: Path, module: str) -> str:
    """Absolute dotted package a relative import in ``path`` starts from."""
    absolute = "ctys_libvirt" if module == "__init__" else f"ctys_libvirt.{module}"
    return absolute if path.name == "__init__.py" else absolute.rsplit(".", 1)[0]


@lru_cache(maxsize=None)
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def imports_of(path: Path, module: str) -> List[Import]:
    tree = _tree(path)
    out: List[Import] = []
    for node in _walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                mine = _ours(a.name)
                out.append(Import(path, node.lineno, module,
                                  mine if mine else "!" + a.name.split(".")[0], ()))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                pkg = _package_of(path, module).split(".")
                pkg = pkg[:len(pkg) - (node.level - 1)]
                absolute = ".".join(pkg + ([node.module] if node.module else []))
            else:
                absolute = node.module or ""
            mine = _ours(absolute)
            if mine is None:
                out.append(Import(path, node.lineno, module, "!" + absolute.split(".")[0],
                                  tuple(a.name for a in node.names)))
                continue
            # `from ctys_libvirt.x import y`: y a submodule or a name of x
            for a in node.names:
                sub = a.name if mine == "__init__" else f"{mine}.{a.name}"
                if _module_exists(sub):
                    out.append(Import(path, node.lineno, module, sub, ()))
                else:
                    out.append(Import(path, node.lineno, module, mine, (a.name,)))
    return out


@lru_cache(maxsize=None)
def all_imports() -> Tuple[Import, ...]:
    return tuple(i for p, m in source_files() for i in imports_of(p, m))


# --- the rules -----------------------------------------------------------------------------

def layer_violations(imports=None, order=None) -> Dict[str, List[str]]:
    """{importing entry: ["file:line: a (line i) imports b (line j, above)", ...]}"""
    out: Dict[str, List[str]] = {}
    for imp in imports if imports is not None else all_imports():
        if imp.target.startswith("!"):
            continue
        src, dst = entry_of(imp.module, order), entry_of(imp.target, order)
        if src is None or dst is None:
            out.setdefault(src or imp.module, []).append(
                f"{imp.where}: {imp.module} -> {imp.target}: "
                f"{imp.module if src is None else imp.target} is in no layer of the order")
            continue
        if level(dst, order) < level(src, order):
            out.setdefault(src, []).append(
                f"{imp.where}: {imp.module} ({src}) imports {imp.target} ({dst}, a layer above)")
    return {k: list(dict.fromkeys(v)) for k, v in out.items()}


def part_cycles(imports=None, order=None) -> List[str]:
    """Cycles between entries: one line per strongly connected group, with the imports."""
    edges: Dict[str, Dict[str, str]] = {}
    for imp in imports if imports is not None else all_imports():
        if imp.target.startswith("!"):
            continue
        a, b = entry_of(imp.module, order), entry_of(imp.target, order)
        if a and b and a != b:
            edges.setdefault(a, {}).setdefault(b, imp.where)
    # Tarjan's strongly connected components
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on: set = set()
    groups: List[List[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            g = []
            while True:
                w = stack.pop()
                on.discard(w)
                g.append(w)
                if w == v:
                    break
            if len(g) > 1:
                groups.append(sorted(g))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    out = []
    for g in groups:
        hops = [f"{a} -> {b} ({edges[a][b]})" for a in g for b in sorted(edges.get(a, {})) if b in g]
        out.append(f"cycle between {', '.join(g)}: " + "; ".join(hops))
    return out


def private_names_in_cli(files=None) -> List[str]:
    """Private (``_name``) names of the library a front end imports or reaches through a
    module attribute."""
    out = []
    for path, module in files if files is not None else source_files():
        if not module.startswith("cli"):
            continue
        tree = _tree(path)
        lib_aliases = set()
        for node in _walk(tree):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:      # relative inside cli/: cli modules are front-end, skip
                    continue
                if not base.startswith("ctys_libvirt") or base.startswith("ctys_libvirt.cli"):
                    continue
                for a in node.names:
                    if _private(a.name):
                        out.append(f"{_rel(path)}:{node.lineno}: {base}.{a.name}")
                    elif _module_exists(a.name if base == "ctys_libvirt" else f"{_ours(base)}.{a.name}"):
                        lib_aliases.add(a.asname or a.name)
                if any(_private(p) for p in base.split(".")):
                    out.append(f"{_rel(path)}:{node.lineno}: {base}")
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith("ctys_libvirt") and not a.name.startswith("ctys_libvirt.cli"):
                        if any(_private(p) for p in a.name.split(".")):
                            out.append(f"{_rel(path)}:{node.lineno}: {a.name}")
                        if a.asname:
                            lib_aliases.add(a.asname)
        for node in _walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in lib_aliases and _private(node.attr)):
                out.append(f"{_rel(path)}:{node.lineno}: {node.value.id}.{node.attr}")
    return list(dict.fromkeys(out))


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def impure_translate(imports=None, order=None) -> List[str]:
    out = []
    for imp in imports if imports is not None else all_imports():
        if entry_of(imp.module, order) != "translate":
            continue
        top = imp.target[1:] if imp.target.startswith("!") else imp.target.split(".")[0]
        if top in TRANSLATE_MUST_NOT_IMPORT:
            out.append(f"{imp.where}: {imp.module} imports {imp.target.lstrip('!')}")
    return list(dict.fromkeys(out))


# --- the tests -----------------------------------------------------------------------------

def _entries() -> List[str]:
    return [e for line in _order() for e in line]


@pytest.mark.parametrize("entry", _entries())
def test_imports_follow_the_layers(entry):
    bad = layer_violations().get(entry, [])
    assert not bad, "imports against the layering (pyproject.toml [tool.ctys_libvirt.layers]):\n" \
        + "\n".join(bad)


def test_every_module_is_in_a_layer():
    loose = sorted(m for _, m in source_files() if entry_of(m) is None)
    assert not loose, f"modules in no layer of pyproject.toml's order: {loose}"


def test_no_cycles_between_parts():
    cycles = part_cycles()
    assert not cycles, "\n".join(cycles)


def test_front_ends_use_only_public_library_names():
    bad = private_names_in_cli()
    assert not bad, "private library names used by the front ends:\n" + "\n".join(bad)


def test_translate_is_pure():
    bad = impure_translate()
    assert not bad, "translate/ must not import host/, backends/ or libvirt:\n" + "\n".join(bad)


# --- the checker itself (a test that cannot fail is a defect) --------------------------------

ORDER = [["cli"], ["backends"], ["translate"], ["host"], ["model"]]


def _imp(module: str, target: str, line: int = 7) -> Import:
    return Import(LIB / "x.py", line, module, target, ())


def test_checker_names_file_and_line_of_an_upward_import():
    v = layer_violations([_imp("translate.xml", "backends.libvirt", 12),
                          _imp("backends.libvirt", "translate.xml"),
                          _imp("cli.app", "model")], ORDER)
    assert v == {"translate": ["ctys_libvirt/x.py:12: translate.xml (translate) imports "
                               "backends.libvirt (backends, a layer above)"]}


def test_checker_longest_entry_wins():
    order = [["security.inuse"], ["translate"], ["security"]]
    assert entry_of("security.inuse", order) == "security.inuse"
    assert entry_of("security.trust", order) == "security"
    assert layer_violations([_imp("security.inuse", "translate.plan")], order) == {}
    assert list(layer_violations([_imp("security.trust", "translate.plan")], order)) == ["security"]


def test_checker_finds_cycles_and_impure_translate():
    imps = [_imp("host.caps", "translate.plan", 3), _imp("translate.plan", "host.caps", 4),
            _imp("translate.xml", "!libvirt", 5), _imp("model", "!dataclasses")]
    (cycle,) = part_cycles(imps, ORDER)
    assert cycle.startswith("cycle between host, translate:") and "x.py:3" in cycle
    assert impure_translate(imps, ORDER) == ["ctys_libvirt/x.py:4: translate.plan imports host.caps",
                                             "ctys_libvirt/x.py:5: translate.xml imports libvirt"]


def test_checker_resolves_relative_and_submodule_imports(tmp_path):
    src = ("from ..backends import libvirt\nfrom . import plan\nfrom ..model import VmConfig\n"
           "import ctys_libvirt.host.caps as caps\n"
           "if TYPE_CHECKING:\n    from ..backends import direct\n"
           "def f():\n    from ctys_libvirt.qemu.probe import probe\n")
    f = tmp_path / "__probe__.py"
    f.write_text(src)
    got = [(i.line, i.target, i.names) for i in imports_of(f, "translate.__probe__")]
    assert got == [(1, "backends.libvirt", ()), (2, "translate.plan", ()),
                   (3, "model", ("VmConfig",)), (4, "host.caps", ()), (8, "qemu.probe", ("probe",))]


def test_checker_sees_private_names_in_front_ends(tmp_path):
    f = tmp_path / "cmd.py"
    f.write_text("from ctys_libvirt.backends import select\nfrom ctys_libvirt.host.caps import _kvm_usable\n"
                 "import ctys_libvirt.qemu.probe as probe\n"
                 "select._conf_needs_direct(1)\nprobe.probe(2)\nselect.__name__\n")
    bad = private_names_in_cli([(f, "cli.cmd")])
    assert [b.split(": ", 1)[1] for b in bad] == ["ctys_libvirt.host.caps._kvm_usable",
                                                  "select._conf_needs_direct"]


@pytest.mark.parametrize("module, entry", [
    ("backends.libvirt", "backends"), ("security.inuse", "security.inuse"),
    ("security.trust", "security"), ("coexist.domains", "coexist.domains"), ("cli.app", "cli")])
def test_longest_entry_of_the_declaration_wins(module, entry):
    assert entry_of(module) == entry
