"""The import graph between the packages (issue 15). The planner is a set of packages, one per
idea (planner/inputs, catalog, costing, planning, planfile, graph, verification, diff, render,
cli) and a few shared modules (errors, names, templating, outputs, console, api); stacks/ is the
Pulumi program's components and policy/ the CrossGuard pack. The rules:

- no import cycle between packages (a package's modules may import each other);
- stacks/ imports of the planner only the plan file (planfile), the catalog, the costing and the
  shared names, errors and templates, and nothing those reach imports planning, rendering,
  verification, the CLI or stacks/ back;
- no planner package imports stacks/, except the one that runs a base plan's stack for
  `planner diff`.

Imports are read from the source (function-level ones too; those under `if TYPE_CHECKING:` are
not run and do not count)."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("planner", "stacks", "policy")

# What stacks/ may import of the planner (package or shared module).
STACKS_MAY_IMPORT = {
    "planner.planfile",
    "planner.catalog",
    "planner.costing",
    "planner.inputs",
    "planner.errors",
    "planner.templating",
    "planner.names",
}
# The planner's layers above them: none of these may be reached from what stacks/ imports.
UPPER = {
    "planner.planning", "planner.api", "planner.cli", "planner.diff", "planner.graph",
    "planner.render", "planner.verification", "planner.console", "planner.outputs",
}  # fmt: skip
# Planner packages that run a stack's program (`planner diff` builds the base plan's stack).
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


def unit(module: str) -> str:
    """The package a module belongs to: planner's subpackage (planner.costing for
    planner.costing.fixed), planner's shared module itself (planner.errors), or stacks / policy."""
    parts = module.split(".")
    if parts[0] != "planner" or len(parts) == 1:
        return parts[0]
    return ".".join(parts[:2])


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Package -> the other packages its modules import."""
    packages: dict[str, set[str]] = {}
    for module, imports in graph.items():
        packages.setdefault(unit(module), set()).update(unit(i) for i in imports)
    return {p: i - {p} for p, i in packages.items()}


def layering_problems(graph: dict[str, set[str]]) -> list[str]:
    """Every way the graph breaks the layering above, as a sentence."""
    packages = package_graph(graph)
    problems = []
    for imported in sorted(packages.get("stacks", set())):
        if imported.startswith("planner") and imported not in STACKS_MAY_IMPORT:
            problems.append(f"stacks imports {imported}")
    for package, imports in sorted(packages.items()):
        if package.startswith("planner") and package not in RUNNERS and "stacks" in imports:
            problems.append(f"{package} imports stacks")
    below = reachable(packages, STACKS_MAY_IMPORT)
    for package in sorted(below & (UPPER | {"stacks"})):
        problems.append(f"what stacks/ imports reaches {package}")
    for package in sorted(packages):
        if package in reachable(packages, packages[package]):
            problems.append(f"{package} imports itself through a cycle")
    return problems


def test_the_packages_are_layered() -> None:
    graph = import_graph()
    assert any(m.startswith("stacks") for m in graph) and "planner.planfile.io" in graph
    assert layering_problems(graph) == []
    # Every planner subpackage is a unit of its own, and its modules are in the graph.
    packages = package_graph(graph)
    for package in ("inputs", "catalog", "costing", "planning", "planfile", "graph"):
        assert f"planner.{package}" in packages, package


def test_a_break_of_the_layering_is_caught() -> None:
    """The check is not vacuous: each kind of break in a copy of the real graph is reported."""
    graph = import_graph()
    for module, imported, expected in (
        ("stacks.aws.pool", "planner.render.plan_files", "stacks imports planner.render"),
        ("planner.costing.fixed", "stacks.addressing", "planner.costing imports stacks"),
        (
            "planner.planfile.plan",
            "planner.planning.plan",
            "what stacks/ imports reaches planner.planning",
        ),
        ("planner.catalog", "stacks.program", "planner.catalog imports itself through a cycle"),
        (
            "planner.inputs.loader",
            "planner.planning.plan",
            "planner.inputs imports itself through a cycle",
        ),
        (
            "planner.graph.resources",
            "planner.render.sarif",
            "planner.verification imports itself through a cycle",
        ),
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
        "from planner.planfile.schema import Plan\n"
        "if TYPE_CHECKING:\n"
        "    from planner.planning.plan import build_plan\n"
        "def run():\n"
        "    from planner.costing import costs\n",
        encoding="utf-8",
    )
    (tmp_path / "planner" / "costing").mkdir()
    (tmp_path / "planner" / "costing" / "costs.py").write_text("", encoding="utf-8")
    graph = import_graph(tmp_path)
    assert graph["stacks.a"] == {"planner.planfile.schema", "planner.costing.costs"}
