"""The planner's public API, for users who script it instead of running `planner` (README,
"Scripting the planner"). Four calls, each what the CLI command of the same name does without
printing or writing anything:

    from planner import build_plan, load_workloads, read_plan, verify

    loaded = load_workloads("workloads.yaml")           # PlannerError lists every problem
    plan = build_plan(loaded)                           # the optimum, as `planner plan`
    print(plan.totals.monthly_cost_usd)
    again = read_plan("plans/dev/plan.json")            # a plan `planner plan` wrote
    report = verify(".", stack="dev")                   # as `planner verify --stack dev`
    assert report.passed

Every call takes the catalog to use and loads the bundled one (planner/data) without it. The
rest of the package is internal: its modules may move between releases, these four stay.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from planner.catalog import Catalog, default_catalog
from planner.errors import PlannerError
from planner.inputs.loader import LoadedWorkloads
from planner.inputs.loader import load_workloads as _load
from planner.planfile import Plan, is_stack_name
from planner.planfile import read_plan as _read
from planner.verification.registry import Report


def load_workloads(path: str | Path, catalog: Catalog | None = None) -> LoadedWorkloads:
    """Read and validate a workloads file; a bad one raises PlannerError with one problem per
    field (file, field, line, what is wrong), as `planner plan` prints them."""
    return _load(Path(path), catalog or default_catalog())


def build_plan(
    loaded: LoadedWorkloads,
    catalog: Catalog | None = None,
    *,
    stack: str = "dev",
    strategy: str = "optimal",
    time_limit: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> Plan:
    """The plan `planner plan --stack STACK --strategy STRATEGY` makes of the loaded file (the
    optimum by default; `per-workload` decides each workload alone), in memory: the workloads
    file recorded relative to the Pulumi project around the working directory, as the CLI
    does. `progress` hears how a long solve goes, as the CLI's stderr does. A bad stack name or
    time limit raises PlannerError, as the CLI refuses them."""
    from planner.planning.build import build_plan as _build
    from planner.render.plan_files import find_project_dir

    if strategy not in ("optimal", "per-workload"):
        raise ValueError(f"strategy {strategy!r}: optimal or per-workload")
    if not is_stack_name(stack):
        raise PlannerError.single(
            "stack", "", f"{stack!r} is not a stack name (letters, digits, '-', '_', '.')"
        )
    if time_limit is not None and not (math.isfinite(time_limit) and time_limit > 0):
        raise PlannerError.single("time_limit", "", "must be a positive number of seconds")
    project = find_project_dir(Path.cwd()) or Path.cwd()
    path = loaded.path.resolve()
    try:
        workloads_file = path.relative_to(project.resolve()).as_posix()
    except ValueError:
        workloads_file = path.as_posix()
    return _build(
        loaded,
        catalog or default_catalog(),
        stack,
        workloads_file,
        "optimal" if strategy == "optimal" else "per-workload",
        time_limit,
        progress,
    )


def read_plan(path: str | Path, catalog: Catalog | None = None) -> Plan:
    """Load a plan.json and check it whole (PlannerError lists every problem)."""
    return _read(Path(path), catalog or default_catalog())


def verify(
    project: str | Path = ".",
    stack: str = "dev",
    catalog: Catalog | None = None,
    plan_file: str | Path | None = None,
) -> Report:
    """Run the Pulumi program of `project` under mocks for `stack` and verify what it would
    create (`planner verify --stack STACK`): `report.passed` is what the command's exit status
    says (`report.passes(fail_on_unknown=True)` with `--fail-on-unknown`), `report.failures()`
    why not, `report.unknowns()` what could not be decided."""
    from planner.verification.run import verify_program

    report, _ = verify_program(
        Path(project),
        catalog or default_catalog(),
        stack,
        None if plan_file is None else Path(plan_file),
    )
    return report
