"""`planner diff BASE HEAD`: what a change to the workloads file, the catalog or the code does to
the plan, for review in a pull request, the way Infracost's comment shows cost diffs: the monthly
estimate before and after, each workload's placement and cost, the answers that changed, the
resources the offline preview would add, remove or change with their monthly cost, the perimeter
(HEAD verified, and any workload whose perimeter got weaker), new warnings, and the gates
(planner/diff/gate.py). The comment and the JSON are rendered by planner/render/diff_report.py.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from planner import names
from planner.catalog import Catalog
from planner.catalog.vocabulary import Perimeter
from planner.diff.gate import budget_gate, perimeter_gate
from planner.errors import PlannerError
from planner.graph.offline import OfflineRun, Registered, run_program
from planner.graph.preview import price_resources
from planner.graph.resources import graph_from_offline, normalize
from planner.planfile import Plan, Pool, WorkloadPlan, read_plan
from planner.planning.pools import PERIMETER_ORDER
from planner.verification.expectations import Expectations
from planner.verification.registry import Report
from planner.verification.run import verify


@dataclass(frozen=True)
class Side:
    """One workload as one plan has it."""

    placement: str
    model: str
    perimeter: str
    data: str
    monthly_cost_usd: float


@dataclass(frozen=True)
class Chart:
    """HEAD's crossover chart of a workload whose placement or volume changed (as in plan.md),
    with its volume before and after."""

    api_option: str
    self_hosted_option: str
    tokens: list[int]
    api_usd: list[float]
    self_hosted_usd: list[float]
    crossover_tokens: int | None
    tokens_before: int | None
    tokens_after: int


@dataclass
class WorkloadChange:
    name: str
    status: str  # added, removed, changed, unchanged
    before: Side | None
    after: Side | None
    # (question, before, after, the new reason)
    answers: list[tuple[str, str, str, str]] = field(default_factory=list)
    chart: Chart | None = None

    @property
    def change_usd(self) -> float:
        before = self.before.monthly_cost_usd if self.before else 0.0
        after = self.after.monthly_cost_usd if self.after else 0.0
        return round(after - before, 2)


@dataclass(frozen=True)
class ResourceChange:
    group: str  # the component it belongs to: a pool, a provider's access, a network
    status: str  # added, removed, changed, retagged (only its cost tag changed)
    type: str
    name: str
    before_usd: float | None
    after_usd: float | None
    changed_inputs: tuple[str, ...] = ()

    @property
    def change_usd(self) -> float:
        return round((self.after_usd or 0.0) - (self.before_usd or 0.0), 2)


@dataclass
class StackDiff:
    stack: str
    before_usd: float
    after_usd: float
    workloads: list[WorkloadChange]
    resources: list[ResourceChange]
    weaker: list[
        tuple[str, str, str, str, str]
    ]  # workload, perimeter before/after, data before/after
    new_warnings: list[tuple[str, str, str]]  # workload, code, message
    verification: Report | None
    # The headline's change by kind, as `planner preview` adds a total up: the resources (the
    # per-resource rows), the pools' staff and the API tokens; prices_change_usd is the rest.
    staff_change_usd: float = 0.0
    tokens_change_usd: float = 0.0

    @property
    def change_usd(self) -> float:
        return round(self.after_usd - self.before_usd, 2)

    @property
    def resources_change_usd(self) -> float:
        return sum(round(r.change_usd * 100) for r in self.resources) / 100

    @property
    def prices_change_usd(self) -> float:
        """What the rows do not show: BASE's resources are priced here at HEAD's catalog and
        list prices, its total at its own; a price update moves the headline only."""
        cents = round(self.change_usd * 100) - round(self.resources_change_usd * 100)
        cents -= round(self.staff_change_usd * 100) + round(self.tokens_change_usd * 100)
        return cents / 100


@dataclass
class Diff:
    stacks: list[StackDiff]
    gate: list[str]  # why the budget gate fails; empty: it passes (or is not set)
    fail_on_increase_pct: float | None = None
    fail_above_usd: float | None = None
    fail_on_verify: bool = False
    fail_on_weaker_perimeter: bool = False
    # why the perimeter gate (--fail-on-verify, --fail-on-weaker-perimeter) fails; empty: passes
    perimeter_gate: list[str] = field(default_factory=list)

    @property
    def perimeter_gate_set(self) -> bool:
        return self.fail_on_verify or self.fail_on_weaker_perimeter

    @property
    def failed(self) -> bool:
        """A gate that was asked for fails: the command exits 1, and the comment says why."""
        return bool(self.gate or self.perimeter_gate)

    @property
    def gate_set(self) -> bool:
        return self.fail_on_increase_pct is not None or self.fail_above_usd is not None

    @property
    def before_usd(self) -> float:
        return round(sum(s.before_usd for s in self.stacks), 2)

    @property
    def after_usd(self) -> float:
        return round(sum(s.after_usd for s in self.stacks), 2)

    @property
    def change_usd(self) -> float:
        return round(self.after_usd - self.before_usd, 2)

    @property
    def change_pct(self) -> float | None:
        return None if self.before_usd == 0 else 100 * self.change_usd / self.before_usd

    @property
    def perimeter_ok(self) -> bool:
        return all(
            not s.weaker and (s.verification is None or s.verification.passed) for s in self.stacks
        )


def load_plans(path: Path) -> dict[str, Plan]:
    """Plans by stack: a plan.json, a directory holding one, or a directory of stacks
    (plans/<stack>/plan.json). An empty directory is no plan at all (a new project)."""
    if path.is_file():
        plan = read_plan(path)
        return {plan.stack: plan}
    if not path.is_dir():
        raise PlannerError.single(str(path), "", "no such plan file or directory")
    if (path / "plan.json").is_file():
        plan = read_plan(path / "plan.json")
        return {plan.stack: plan}
    plans = {}
    for file in sorted(path.glob("*/plan.json")):
        plan = read_plan(file)
        plans[plan.stack] = plan
    return plans


def _side(w: WorkloadPlan) -> Side:
    return Side(
        w.placement,
        w.model,
        w.answers.data_sensitivity.perimeter.value,
        w.data,
        w.monthly_cost_usd,
    )


def _answer_changes(before: WorkloadPlan, after: WorkloadPlan) -> list[tuple[str, str, str, str]]:
    a, b = before.answers, after.answers
    found = []
    if a.task_quality.tier != b.task_quality.tier:
        found.append(
            ("task quality", a.task_quality.tier.value, b.task_quality.tier.value,
             b.task_quality.reason)
        )  # fmt: skip
    if a.data_sensitivity.perimeter != b.data_sensitivity.perimeter:
        found.append(
            ("data sensitivity", a.data_sensitivity.perimeter.value,
             b.data_sensitivity.perimeter.value, b.data_sensitivity.reason)
        )  # fmt: skip
    if a.volume_economics.chosen != b.volume_economics.chosen:
        found.append(
            ("volume economics", a.volume_economics.chosen, b.volume_economics.chosen,
             b.volume_economics.reason)
        )  # fmt: skip
    return found


def _tokens(w: WorkloadPlan) -> int:
    economics = w.answers.volume_economics
    return economics.monthly_input_tokens + economics.monthly_output_tokens


def _chart(before: WorkloadPlan | None, after: WorkloadPlan) -> Chart | None:
    """A chart where it tells the reviewer something: the placement or the volume moved."""
    b = after.answers.volume_economics.break_even
    if b is None:
        return None
    if before is not None and (before.placement, _tokens(before)) == (
        after.placement,
        _tokens(after),
    ):
        return None
    return Chart(
        b.api_option, b.self_hosted_option, b.chart_tokens, b.chart_api_usd,
        b.chart_self_hosted_usd, b.monthly_tokens,
        None if before is None else _tokens(before), _tokens(after),
    )  # fmt: skip


def _given(w: WorkloadPlan) -> tuple[object, ...]:
    """What the workloads file says of a workload, as far as its plan carries it."""
    economics = w.answers.volume_economics
    return (
        w.task,
        economics.monthly_input_tokens,
        economics.monthly_output_tokens,
        tuple(c.text() for c in w.consumers),
    )


def _same(a: Side, b: Side) -> bool:
    """The same placement, model, perimeter and data, and the same cost to the cent: a
    sub-cent difference (float noise, a plan written by another version) is no change."""
    return replace(a, monthly_cost_usd=0.0) == replace(b, monthly_cost_usd=0.0) and round(
        a.monthly_cost_usd * 100
    ) == round(b.monthly_cost_usd * 100)


def _workload_changes(base: Plan | None, head: Plan | None) -> list[WorkloadChange]:
    before = {w.name: w for w in base.workloads} if base else {}
    after = {w.name: w for w in head.workloads} if head else {}
    changes = []
    for name in sorted(before.keys() | after.keys()):
        old, new = before.get(name), after.get(name)
        if old is None:
            assert new is not None
            changes.append(WorkloadChange(name, "added", None, _side(new), chart=_chart(None, new)))
        elif new is None:
            changes.append(WorkloadChange(name, "removed", _side(old), None))
        else:
            answers = _answer_changes(old, new)
            # A workload whose input changed (volume, task, consumers) is changed even where its
            # cost moved by less than a cent: only untouched workloads hide sub-cent noise.
            same = _same(_side(old), _side(new)) and not answers and _given(old) == _given(new)
            changes.append(
                WorkloadChange(name, "unchanged" if same else "changed", _side(old), _side(new),
                               answers, _chart(old, new))
            )  # fmt: skip
    return changes


# ----------------------------------------------------------------------------- resources


def plan_program(plan: Plan, catalog: Catalog) -> Callable[[], None]:
    """The stack of a plan, as __main__.py builds it, without the freshness check: a base plan
    is compared as it was reviewed, whatever the workloads file says now."""

    def program() -> None:
        from stacks.program import run

        run(plan, catalog)

    return program


def run_plan(plan: Plan, catalog: Catalog) -> OfflineRun:
    """The plan's stack under Pulumi's mocks (see planner.graph.offline)."""
    with tempfile.TemporaryDirectory() as scratch:
        return run_program(
            Path(scratch),
            plan.stack,
            {"aws:region": plan.region},
            program=plan_program(plan, catalog),
        )


def _groups(run: OfflineRun) -> dict[str, str]:
    """URN -> the top-level component it belongs to (a pool, an access, a network, the budget)."""
    by_urn = {r.urn: r for r in run.resources}
    found = {}
    for resource in run.resources:
        top: Registered = resource
        while top.parent in by_urn:
            top = by_urn[top.parent]
        found[resource.urn] = top.name
    return found


def _inputs(resource: Registered) -> dict[str, Any]:
    value = normalize(resource.inputs)
    return json.loads(json.dumps(value, default=repr, sort_keys=True))  # type: ignore[no-any-return]


COST_TAG = names.TAG_MONTHLY_USD


def _only_cost_tag(a: dict[str, Any], b: dict[str, Any]) -> bool:
    def tags(inputs: dict[str, Any]) -> dict[str, Any]:
        found = inputs.get("tags") or {}
        if isinstance(found, list):  # auto-scaling groups
            found = {t.get("key"): t.get("value") for t in found if isinstance(t, dict)}
        return {k: v for k, v in found.items() if k != COST_TAG}

    return tags(a) == tags(b)


def resource_changes(
    base: tuple[OfflineRun, Plan] | None, head: tuple[OfflineRun, Plan] | None, catalog: Catalog
) -> list[ResourceChange]:
    def index(side: tuple[OfflineRun, Plan] | None) -> dict[str, tuple[Registered, float, str]]:
        if side is None:
            return {}
        run, plan = side
        costs = {c.urn: c.monthly_usd for c in price_resources(run, plan, catalog)}
        groups = _groups(run)
        return {r.urn: (r, costs.get(r.urn, 0.0), groups[r.urn]) for r in run.resources if r.custom}

    before, after = index(base), index(head)
    changes = []
    for urn in sorted(before.keys() | after.keys()):
        old, new = before.get(urn), after.get(urn)
        if old is None:
            assert new is not None
            changes.append(ResourceChange(new[2], "added", new[0].type, new[0].name, None, new[1]))
        elif new is None:
            changes.append(
                ResourceChange(old[2], "removed", old[0].type, old[0].name, old[1], None)
            )
        else:
            a, b = _inputs(old[0]), _inputs(new[0])
            keys = tuple(sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k)))
            if not keys and round(old[1] * 100) == round(new[1] * 100):
                continue
            # A new share of the estimate in its cost tag, and nothing else: counted, not listed.
            status = "retagged" if keys == ("tags",) and _only_cost_tag(a, b) else "changed"
            changes.append(
                ResourceChange(new[2], status, new[0].type, new[0].name, old[1], new[1], keys)
            )
    return sorted(changes, key=lambda c: (c.group, c.status, c.type, c.name))


# ----------------------------------------------------------------------------- the diff


def diff_stack(stack: str, base: Plan | None, head: Plan | None, catalog: Catalog) -> StackDiff:
    base_run = (run_plan(base, catalog), base) if base else None
    head_run = (run_plan(head, catalog), head) if head else None
    workloads = _workload_changes(base, head)
    weaker = []
    for change in workloads:
        if change.before and change.after:
            old, new = Perimeter(change.before.perimeter), Perimeter(change.after.perimeter)
            if PERIMETER_ORDER[new] < PERIMETER_ORDER[old]:
                weaker.append((change.name, old.value, new.value, change.before.data,
                               change.after.data))  # fmt: skip
    old_warnings = (
        {(w.name, x.code, x.message) for w in base.workloads for x in w.warnings} if base else set()
    )
    new_warnings = sorted(
        ({(w.name, x.code, x.message) for w in head.workloads for x in w.warnings} - old_warnings)
        | set(replan_warnings(base, head))
        if head
        else set()
    )
    verification = None
    if head_run is not None:
        run, plan = head_run
        verification = verify(graph_from_offline(run), Expectations.of(plan, catalog), run.outputs)
    return StackDiff(
        stack=stack,
        before_usd=base.totals.monthly_cost_usd if base else 0.0,
        after_usd=head.totals.monthly_cost_usd if head else 0.0,
        workloads=workloads,
        resources=resource_changes(base_run, head_run, catalog),
        weaker=weaker,
        new_warnings=new_warnings,
        verification=verification,
        staff_change_usd=_kind(base, head, "staff_usd"),
        tokens_change_usd=_kind(base, head, "api_tokens_usd"),
    )


def _spans_nodes(pool: Pool) -> bool:
    """A replica of the pool spans nodes: a LeaderWorkerSet on a cluster, not a Deployment."""
    return pool.tensor_parallel * pool.pipeline_parallel > pool.gpus_per_node


def replan_warnings(base: Plan | None, head: Plan | None) -> list[tuple[str, str, str]]:
    """Each cluster site that the update from BASE to HEAD would fill past its nodes while it
    runs: Pulumi makes a new pool's resources (a new name, or a Deployment turned into a
    LeaderWorkerSet, another resource type) before it deletes the old pool's at the update's
    end (pulumi/pulumi issue 9979), so the site holds both at once, and on a full site the new
    pods wait for GPUs the old ones hold until the wait runs out (README, Kubernetes sites).
    (site, code, message), the site in place of a workload."""
    if base is None or head is None:
        return []
    found = []
    for site in head.sites:
        old = {p.name: p for p in base.pools if p.site == site.name}
        new = {p.name: p for p in head.pools if p.site == site.name}
        leaving = sorted(
            name
            for name, pool in old.items()
            if name not in new or _spans_nodes(pool) != _spans_nodes(new[name])
        )
        held = sum(p.nodes for p in new.values()) + sum(old[name].nodes for name in leaving)
        if leaving and held > site.nodes:
            arriving = sorted(
                name
                for name, pool in new.items()
                if name not in old or _spans_nodes(pool) != _spans_nodes(old[name])
            )
            found.append(
                (
                    site.name,
                    "site_replan",
                    f"this update holds {held:,} GPU node(s) of site {site.name} at once, past "
                    f"its {site.nodes:,}: Pulumi makes {', '.join(arriving) or 'the grown pools'} "
                    f"before it deletes {', '.join(leaving)} at the update's end, so new pods "
                    "wait for nodes the old ones hold until the wait runs out. Deploy it in two "
                    f"steps: first without {', '.join(leaving)}, then this plan (README, "
                    "Kubernetes sites)",
                )
            )
    return found


def _kind(base: Plan | None, head: Plan | None, field: str) -> float:
    """The change of one of the totals' parts (staff, API tokens), in whole cents."""
    before = round(getattr(base.totals, field) * 100) if base else 0
    after = round(getattr(head.totals, field) * 100) if head else 0
    return (after - before) / 100


def diff_plans(
    base: dict[str, Plan],
    head: dict[str, Plan],
    catalog: Catalog,
    fail_on_increase_pct: float | None = None,
    fail_above_usd: float | None = None,
    fail_on_verify: bool = False,
    fail_on_weaker_perimeter: bool = False,
) -> Diff:
    stacks = [
        diff_stack(stack, base.get(stack), head.get(stack), catalog)
        for stack in sorted(base.keys() | head.keys())
    ]
    diff = Diff(
        stacks, [], fail_on_increase_pct, fail_above_usd, fail_on_verify, fail_on_weaker_perimeter
    )
    diff.perimeter_gate = perimeter_gate(diff)
    diff.gate = budget_gate(diff)
    return diff
