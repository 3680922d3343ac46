"""The import structure of ``homogan/`` is one-way: no cycles, no arrow back up a level (docs/architecture.md)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "homogan"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path, known: set[str]) -> set[str]:
    """Every homogan module ``path`` imports, at module level or inside functions (``from homogan import x``
    counts as importing ``homogan.x`` when that is a module, else the package)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    found.discard(module_name(path))
    return found


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports_of(path, set(mods)) for name, path in mods.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def documented_levels() -> dict[str, int]:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    return {m.group(2): int(m.group(1)) for m in re.finditer(r"^\| (\d+) \| `([\w.]+)` \|", text, flags=re.M)}


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_in_the_package():
    found = cycles(import_graph())
    assert not found, f"import cycles: {found}"


def test_every_module_has_a_documented_level():
    levels = documented_levels()
    assert set(levels) == set(modules()), (f"missing from docs/architecture.md: {sorted(set(modules()) - set(levels))}; "
                                           f"documented but absent: {sorted(set(levels) - set(modules()))}")


def test_imports_never_run_back_up_a_level():
    levels = documented_levels()
    upward = [f"{a} (level {levels[a]}) imports {b} (level {levels[b]})"
              for a, targets in import_graph().items() for b in sorted(targets)
              if a in levels and b in levels and levels[b] > levels[a]]
    assert not upward, "\n".join(upward)


@pytest.mark.parametrize("module", ["homogan.metrics", "homogan.pixels", "homogan.config", "homogan.checkpoints",
                                    "homogan.experiment", "homogan.freeze", "homogan.data.sources"])
def test_light_modules_import_without_tensorflow(module):
    """Metric math is testable without TensorFlow; config, run folders and data selection answer fast."""
    probe = f"import sys; import {module}; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.stdout.split() == ["False", "False"], result.stdout + result.stderr
