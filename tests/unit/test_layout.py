"""The package layout: few top-level modules, imports only go down the
layers, and docs/architecture.md describes the folders that exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "okopy"

# Lowest first.  A part may import from its own part and from lower layers
# only; parts in one layer do not import each other.
LAYERS: list[set[str]] = [
    {"okopy", "paths", "process"},  # okopy = okopy/__init__ (the version)
    {"netns"},
    {"traffic", "acl"},
    {"bpf"},
    {"policy"},
    {"ofp"},
    {"controller"},
    {"ovs"},
    {"lab", "trace"},
    {"bench", "testing"},
    {"cli"},
    {"__main__"},
]
LAYER = {part: i for i, parts in enumerate(LAYERS) for part in parts}
MAX_TOP_LEVEL_MODULES = 10


def part_of(module: str) -> str:
    """okopy.bpf.vm -> bpf; okopy.paths -> paths; okopy -> okopy."""
    parts = module.split(".")
    assert parts[0] == "okopy", module
    return parts[1] if len(parts) > 1 else "okopy"


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    names = list(rel.parts)
    if names[-1] == "__init__":
        names.pop()
    return ".".join(names)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every okopy import in a file, at any depth;
    `from okopy.x import y` counts y when y is itself a module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "okopy"]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "okopy":
                continue
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                is_module = (ROOT / (sub.replace(".", "/") + ".py")).exists() or (
                    ROOT / sub.replace(".", "/") / "__init__.py"
                ).exists()
                out.append((node.lineno, sub if is_module else node.module))
    return out


def test_every_part_has_a_layer() -> None:
    parts = {p.stem for p in PKG.glob("*.py")} | {
        p.name for p in PKG.iterdir() if (p / "__init__.py").exists()
    }
    parts = {"okopy" if p == "__init__" else p for p in parts}
    assert parts - set(LAYER) == set(), "add new parts of okopy/ to LAYERS"
    assert set(LAYER) - parts == set(), "LAYERS names parts that no longer exist"


def test_few_top_level_modules() -> None:
    modules = sorted(p.name for p in PKG.glob("*.py"))
    assert len(modules) <= MAX_TOP_LEVEL_MODULES, modules


def test_imports_only_go_down() -> None:
    wrong = []
    for path in sorted(PKG.rglob("*.py")):
        here = part_of(module_name(path))
        for line, target in imported_modules(path):
            there = part_of(target)
            if there == here:
                continue
            if LAYER[there] >= LAYER[here]:
                wrong.append(f"{path.relative_to(ROOT)}:{line}: {here} imports {target}")
    assert wrong == []


def test_no_import_cycle_between_modules() -> None:
    graph: dict[str, set[str]] = {}
    for path in PKG.rglob("*.py"):
        graph[module_name(path)] = {m for _, m in imported_modules(path)}
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for n in sorted(graph.get(m, ())):
            if n == m or n not in graph:
                continue
            # a package's __init__ is imported implicitly with its modules
            if m.startswith(n + ".") or n.startswith(m + "."):
                continue
            if state.get(n) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*stack, m, n]))
            if n not in state:
                visit(n, [*stack, m])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])


def test_architecture_table_matches_the_folders() -> None:
    doc = (ROOT / "docs/architecture.md").read_text()
    listed = set(re.findall(r"`okopy/([a-z_]+)/`", doc))
    folders = {p.name for p in PKG.iterdir() if (p / "__init__.py").exists()}
    assert listed == folders


# Dotted names in prose that are not modules (a fuzzing dictionary file).
NOT_MODULES = {"okopy.dict"}


def stale_module_references(text: str) -> list[str]:
    """okopy.a.b names and okopy/a/b.py paths that name no module: after the
    longest prefix that is a module, a lower-case name under a package must
    be a module too (attributes of modules are not checked)."""
    stale = []
    for m in re.finditer(r"\bokopy(?:\.[a-z_][a-z0-9_]*)+", text):
        parts = m.group(0).split(".")
        i = len(parts)
        while i > 1:
            p = ROOT.joinpath(*parts[:i])
            if p.with_suffix(".py").exists() or (p / "__init__.py").exists():
                break
            i -= 1
        prefix = ROOT.joinpath(*parts[:i])
        after = parts[i] if i < len(parts) else None
        if (
            after is not None
            and not after.startswith("__")
            and (prefix / "__init__.py").exists()
            and m.group(0) not in NOT_MODULES
        ):
            stale.append(m.group(0))
    for m in re.finditer(r"\bokopy/[a-z_/]+\.py\b", text):
        if not (ROOT / m.group(0)).exists():
            stale.append(m.group(0))
    return stale


def test_docs_and_docstrings_name_modules_that_exist() -> None:
    files = [*PKG.rglob("*.py"), *ROOT.glob("tests/**/*.py"), *ROOT.glob("docs/**/*.md")]
    files += [ROOT / "README.md", ROOT / "pyproject.toml", ROOT / "bpf/include/okopy/types.h"]
    stale = []
    for f in files:
        if f == Path(__file__).resolve():
            continue
        stale += [
            f"{f.relative_to(ROOT)}: {name}" for name in stale_module_references(f.read_text())
        ]
    assert stale == []


def test_stale_references_are_found() -> None:
    assert stale_module_references("see okopy.controller.shim and okopy/config.py") == [
        "okopy.controller.shim",
        "okopy/config.py",
    ]
    assert stale_module_references("okopy.bpf.vm.Namespace, okopy.__version__") == []
