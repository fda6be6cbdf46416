"""The package's import graph has no cycle: layers import downward only.

Every ``import`` of a ``mncrl`` module counts, at module level or inside a function (a lazy
import is still a dependency). ``from pkg import name`` is an edge to ``pkg.name`` when that is
a module, else to ``pkg``.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in (SRC / "mncrl").rglob("*.py")}


def imports(path: Path, known: set[str]) -> set[str]:
    """The mncrl modules a file imports."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "mncrl"}
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.level == 0
            and node.module.split(".")[0] == "mncrl"
        ):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                out.add(full if full in known else node.module)
    return out


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports(path, known) & known - {name} for name, path in mods.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the directed graph (as a path that returns to its start), or None."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_package_has_no_import_cycle():
    edges = graph()
    assert len(edges) > 20 and "mncrl.experiments.core" in edges
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_low_layers_do_not_import_high_ones():
    edges = graph()
    low = [
        "mncrl.errors",
        "mncrl.threads",
        "mncrl.data",
        "mncrl.environments",
        "mncrl.estimators.base",
        "mncrl.metrics",
        "mncrl.interventions",
    ]
    high = {"mncrl.api", "mncrl.cli", "mncrl.config", "mncrl.experiments", "mncrl.claims"}
    for name in low:
        bad = {m for m in edges[name] if any(m == h or m.startswith(h + ".") for h in high)}
        assert not bad, f"{name} imports {sorted(bad)}"
