"""The package's import structure: no cycles, and the layers stay apart.

Read statically from every module's AST (imports inside functions count too: an import
hidden in a function is still a dependency).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pyanomaly"


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Package modules that ``name`` imports (a ``from X import y`` names ``X.y`` when that is a module)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        found.update(t for t in targets if t in MODULES and t != name)
    return found


def _edges() -> dict[str, set[str]]:
    edges = {}
    for name, path in MODULES.items():
        # a package's __init__ re-exporting its children, or a child importing its package, is no cycle
        edges[name] = {t for t in _imports(name, path)
                       if not t.startswith(name + ".") and not name.startswith(t + ".")}
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def _subpackage(name: str) -> str:
    return ".".join(name.split(".")[:2])


def test_the_walker_sees_the_imports():
    edges = _edges()
    assert len(MODULES) > 50
    assert "pyanomaly.registry" in edges["pyanomaly.models.frame_predictor"]
    assert "pyanomaly.engine.checkpoint" in edges["pyanomaly.engine.launch"]


def test_a_cycle_is_found_when_there_is_one():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_cycles():
    assert _cycles(_edges()) == []


def test_no_subpackage_cycles():
    layers: dict[str, set[str]] = {}
    for name, targets in _edges().items():
        for t in targets:
            if _subpackage(t) != _subpackage(name):
                layers.setdefault(_subpackage(name), set()).add(_subpackage(t))
    assert _cycles(layers) == []


@pytest.mark.parametrize("layer", ["pyanomaly.models", "pyanomaly.networks"])
def test_models_and_networks_never_reach_the_engine_or_read_a_config(layer):
    builders = {"pyanomaly.models.build"}  # the one place that turns MODEL.* into a method
    for name, targets in _edges().items():
        if not name.startswith(layer) or name in builders:
            continue
        assert not any(t.startswith("pyanomaly.engine") for t in targets), f"{name} imports the engine"
        assert not any(t.startswith("pyanomaly.config") for t in targets), f"{name} imports the config"
        source = MODULES[name].read_text()
        assert "cfg." not in source, f"{name} reads a config"
