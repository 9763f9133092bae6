"""What `lint-imports` (pyproject.toml [tool.importlinter]) cannot say by itself.

The layers contract constrains only the modules it lists, and acyclic_siblings
looks for cycles inside one package at a time. So: every module of vmknet is
in exactly one layer (a new package cannot slip past the contract), and no
module-level import cycle exists at all, across packages too. Function-level
and TYPE_CHECKING imports count, as they do for lint-imports (grimp's graph).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]
# Package __init__ modules left out of the layers because their package straddles layers
# (lab, controller) or holds only a docstring; each may import its own package only.
UNLAYERED = {"vmknet", "vmknet.controller", "vmknet.lab", "vmknet.vm"}


def _graph() -> grimp.ImportGraph:
    return grimp.build_graph("vmknet", cache_dir=None)


def _layer_names() -> dict[str, bool]:
    """Module name -> whether it must exist (a name in parentheses is optional)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    layers = next(c for c in contracts if c["id"] == "layers")["layers"]
    names = [name.strip() for layer in layers for name in re.split(r"[|:]", layer)]
    return {name.strip("()"): not name.startswith("(") for name in names}


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def _in(module: str, name: str) -> bool:
    return module == name or module.startswith(name + ".")


def test_every_module_is_in_exactly_one_layer() -> None:
    names = _layer_names()
    graph = _graph()
    wrong = {m: [n for n in names if _in(m, n)] for m in graph.modules if m not in UNLAYERED}
    assert {m: hits for m, hits in wrong.items() if len(hits) != 1} == {}
    assert not [n for n, required in names.items() if required and n not in graph.modules]


def test_unlayered_init_modules_import_their_own_package_only() -> None:
    graph = _graph()
    for module in UNLAYERED - {"vmknet"}:
        outside = {i for i in graph.find_modules_directly_imported_by(module)
                   if not _in(i, module)}
        assert outside == set(), module
    assert graph.find_modules_directly_imported_by("vmknet") == set()


def test_no_import_cycle_between_any_modules() -> None:
    assert _cycles(_graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for module in ("a", "b", "c", "d"):
        graph.add_module(module)
    graph.add_import(importer="a", imported="b")
    graph.add_import(importer="b", imported="c")
    graph.add_import(importer="c", imported="a")
    graph.add_import(importer="c", imported="d")
    assert _cycles(graph) == [["a", "b", "c"]]
