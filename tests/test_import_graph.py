"""The import graph between the packages (issue 15): the Pulumi program's components (stacks/)
use only the plan file's model, the catalog and the costing of the planner (and the templates'
environment), and nothing those import reaches back into stacks/ or into the planning,
rendering, verification or CLI. The only planner module that imports stacks/ runs a base plan's
stack for `planner diff`. Imports are read from the source (function-level ones too; those under
`if TYPE_CHECKING:` are not run and do not count)."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("planner", "stacks", "policy")

# What stacks/ may import of the planner: planfile (model), catalog, costing, errors, templates,
# and the shared names (tags, config keys, type tokens).
STACKS_MAY_IMPORT = {
    "planner.model",
    "planner.catalog",
    "planner.aws_prices",
    "planner.costs",
    "planner.errors",
    "planner.templating",
    "planner.names",
}
# The planner's layers above them: none of these may be reached from what stacks/ imports.
UPPER = {
    "planner.answers", "planner.api", "planner.cli", "planner.crossover", "planner.diff",
    "planner.offline", "planner.optimize", "planner.plan", "planner.preview", "planner.render",
    "planner.sarif", "planner.verification", "planner.netgraph",
}  # fmt: skip
# Planner modules that run a stack's program (`planner diff` builds the base plan's stack).
RUNNERS = {"planner.diff"}


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(tree: ast.Module) -> set[int]:
    """Line numbers of the statements under `if TYPE_CHECKING:`."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def import_graph(root: Path = REPO) -> dict[str, set[str]]:
    """Module -> the modules of the project's packages it imports."""
    modules = {
        _module_name(p, root): p for package in PACKAGES for p in (root / package).rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped = _type_checking_only(tree)
        found: set[str] = set()
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) in skipped:
                continue
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from planner import costs`: the submodule (the package's own names only
                # where something else is imported from it).
                submodules = {f"{node.module}.{a.name}" for a in node.names} & set(modules)
                found.update(submodules)
                if len(submodules) < len(node.names):
                    found.add(node.module)
        graph[name] = {m for m in found if m.split(".")[0] in PACKAGES and m != name}
    return graph


def reachable(graph: dict[str, set[str]], start: Iterable[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(start)
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo.extend(graph.get(module, ()))
    return seen


def layering_problems(graph: dict[str, set[str]]) -> list[str]:
    """Every way the graph breaks the layering above, as a sentence."""
    problems = []
    for module, imports in sorted(graph.items()):
        if module.startswith("stacks"):
            for imported in sorted(imports):
                if imported.startswith("planner") and imported not in STACKS_MAY_IMPORT:
                    problems.append(f"{module} imports {imported}")
        elif module.startswith("planner") and module not in RUNNERS:
            for imported in sorted(imports):
                if imported.startswith("stacks"):
                    problems.append(f"{module} imports {imported}")
    below = reachable(graph, STACKS_MAY_IMPORT)
    for module in sorted(below & (UPPER | {m for m in graph if m.startswith("stacks")})):
        problems.append(f"what stacks/ imports reaches {module}")
    for module in sorted(m for m in graph if m.startswith("stacks")):
        if module in reachable(graph, graph[module]):
            problems.append(f"{module} imports itself through a cycle")
    return problems


def test_the_packages_are_layered() -> None:
    graph = import_graph()
    assert any(m.startswith("stacks") for m in graph) and "planner.model" in graph
    assert layering_problems(graph) == []


def test_a_break_of_the_layering_is_caught() -> None:
    """The check is not vacuous: each kind of break in a copy of the real graph is reported."""
    graph = import_graph()
    for module, imported, expected in (
        ("stacks.pool", "planner.render", "stacks.pool imports planner.render"),
        ("planner.costs", "stacks.common", "planner.costs imports stacks.common"),
        ("planner.model", "planner.plan", "what stacks/ imports reaches planner.plan"),
        ("planner.catalog", "stacks.program", "stacks.program imports itself through a cycle"),
    ):
        broken = {m: set(i) for m, i in graph.items()}
        broken[module].add(imported)
        assert expected in layering_problems(broken), (module, imported)


def test_type_checking_imports_do_not_count(tmp_path: Path) -> None:
    (tmp_path / "planner").mkdir()
    (tmp_path / "stacks").mkdir()
    (tmp_path / "policy").mkdir()
    (tmp_path / "stacks" / "a.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "from planner.model import Plan\n"
        "if TYPE_CHECKING:\n"
        "    from planner.plan import build_plan\n"
        "def run():\n"
        "    from planner import costs\n",
        encoding="utf-8",
    )
    (tmp_path / "planner" / "costs.py").write_text("", encoding="utf-8")
    graph = import_graph(tmp_path)
    assert graph["stacks.a"] == {"planner.model", "planner.costs"}
