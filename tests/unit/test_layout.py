"""The layout every service keeps (README, Layout): imports run one way and stay shallow.

A chain is counted in imports made at run time from the service's entry modules
(imports under ``if TYPE_CHECKING:`` are for the type checker only): app -> api ->
service -> repository -> domain is four, so five leaves room for one shared helper.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = sorted(p for p in ROOT.glob("services/*/src/*") if (p / "__init__.py").exists())
MAX_DEPTH = 5
DOMAIN_MAY_NOT_IMPORT = ("fastapi", "asyncpg", "aiokafka", "httpx", "starlette")


def _modules(root: Path) -> dict[str, Path]:
    found = {}
    for f in root.rglob("*.py"):
        parts = list(f.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = f
    return found


def _runtime_imports(path: Path, name: str) -> set[str]:
    """Absolute names of the modules ``path`` imports when it runs."""
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for node in ast.walk(tree)
                   if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
                   for n in ast.walk(node)}
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            out.add(module)
            out.update(f"{module}.{a.name}" for a in node.names)
    return out


def _graph(root: Path) -> dict[str, set[str]]:
    mods = _modules(root)
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        edges = set()
        for imported in _runtime_imports(path, name):
            while imported and imported not in mods:
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                edges.add(imported)
        graph[name] = edges
    return graph


def longest_chain(root: Path) -> list[str]:
    graph = _graph(root)

    @functools.cache
    def longest(module: str, seen: frozenset[str]) -> tuple[str, ...]:
        best: tuple[str, ...] = (module,)
        for dep in graph[module]:
            if dep not in seen:
                chain = (module, *longest(dep, seen | {module}))
                if len(chain) > len(best):
                    best = chain
        return best

    return list(max((longest(m, frozenset()) for m in graph), key=len))


@pytest.mark.parametrize("root", PACKAGES, ids=lambda p: p.name)
def test_import_chains_are_at_most_five_deep(root: Path) -> None:
    chain = longest_chain(root)
    assert len(chain) - 1 <= MAX_DEPTH, " -> ".join(chain)


@pytest.mark.parametrize("root", PACKAGES, ids=lambda p: p.name)
def test_route_modules_do_not_import_each_other(root: Path) -> None:
    graph = _graph(root)
    api = f"{root.name}.api"
    shared = {f"{api}.common", f"{api}.problems", f"{api}.web"}
    crossing = sorted(f"{m} -> {d}" for m, deps in graph.items()
                      if m.startswith(f"{api}.") and m not in shared
                      for d in deps if d.startswith(f"{api}.") and d not in shared)
    assert not crossing, crossing


@pytest.mark.parametrize("root", PACKAGES, ids=lambda p: p.name)
def test_the_domain_knows_no_framework(root: Path) -> None:
    mods = _modules(root)
    domain = {n: p for n, p in mods.items()
              if n == f"{root.name}.domain" or n.startswith(f"{root.name}.domain.")}
    bad = sorted(f"{n} imports {i}" for n, p in domain.items()
                 for i in _runtime_imports(p, n) if i.split(".")[0] in DOMAIN_MAY_NOT_IMPORT)
    assert not bad, bad


def test_the_measure_sees_a_deep_chain(tmp_path: Path) -> None:
    """The checker itself: seven modules in a row are six imports deep, and a type-only
    import does not count."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for i in range(7):
        body = f"from pkg import m{i + 1}\n" if i < 6 else ""
        (pkg / f"m{i}.py").write_text(body)
    (pkg / "t.py").write_text("from typing import TYPE_CHECKING\n"
                              "if TYPE_CHECKING:\n    from pkg import m0\n")
    chain = longest_chain(pkg)
    assert chain[0] == "pkg.m0" and len(chain) - 1 == 6, chain
