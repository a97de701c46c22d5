"""The plan: what `planner plan` writes to plan.json and what the Pulumi program reads back."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from planner.catalog import Catalog, default_catalog
from planner.errors import PlannerError, Problem
from planner.workloads import Perimeter, Pricing, Tier

SCHEMA_VERSION = 5

Placement = Literal["self_hosted", "cloud_api"]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FigureUsed(_Out):
    """A catalog figure a cost was computed from."""

    value: float | str
    unit: str
    source: str
    date: str


# The per-workload parts of a plan are plain frozen dataclasses rather than pydantic models: a plan
# of 10,000 workloads builds about 100,000 options, and pydantic still validates all of them when a
# plan is read back (read_plan), as fields of the Plan model.
@dataclass(frozen=True, slots=True)
class MemoryFit:
    precision: str
    weights_gb: float
    gpu_memory_gb: float
    gpus_per_replica: int
    tensor_parallel: int
    pipeline_parallel: int
    replicas_per_node: int
    fits_one_node: bool
    note: str


# Not frozen: a frozen dataclass sets each field through object.__setattr__, which makes building
# the ~10 options of every workload three times slower. Nothing mutates an option once built.
@dataclass(slots=True, kw_only=True)
class Option:
    id: str
    placement: Placement
    model: str
    tier: Tier
    monthly_cost_usd: float
    formula: str
    figures: tuple[str, ...]
    provider: str | None = None
    instance_type: str | None = None
    pricing: Pricing | None = None
    memory_fit: MemoryFit | None = None
    nodes: int | None = None
    # The part of monthly_cost_usd that does not grow with volume: staff and network pieces
    # (for an API, those of its access standing alone; shared in a plan).
    fixed_monthly_usd: float = 0.0
    # Low and high ends of the cost from the ranges of the uncertain assumptions (utilization,
    # serving efficiency, purchase multiplier); set on the option a plan chooses.
    monthly_cost_low_usd: float | None = None
    monthly_cost_high_usd: float | None = None
    # What to know before relying on it (a lower-precision alternative's quality note).
    note: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakEven:
    api_option: str
    self_hosted_option: str
    monthly_tokens: int | None
    api_monthly_usd: float | None
    explanation: str
    # Monthly cost of both options at volumes from zero to past the crossover, for the chart.
    chart_tokens: list[int]
    chart_api_usd: list[float]
    chart_self_hosted_usd: list[float]


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskQuality:
    tier: Tier
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DataSensitivity:
    perimeter: Perimeter
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class VolumeEconomics:
    monthly_input_tokens: int
    monthly_output_tokens: int
    options: list[Option]
    chosen: str
    reason: str
    break_even: BreakEven | None
    # Priced side by side, never chosen: the chosen self-hosted model at a lower precision
    # where its own needs several nodes (multi-node and larger-memory instances are options).
    alternatives: list[Option] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class Answers:
    task_quality: TaskQuality
    data_sensitivity: DataSensitivity
    volume_economics: VolumeEconomics


@dataclass(frozen=True, slots=True, kw_only=True)
class Warning:
    code: str
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Consumer:
    """Callers of a workload. `vpc` (with `subnets`): their VPC in this account, where the stack
    makes their endpoint; `account`: another account, which makes its own; neither: callers
    inside the stack's own network."""

    cidr: str
    vpc: str | None = None
    subnets: tuple[str, ...] = ()
    account: str | None = None

    def text(self) -> str:
        if self.vpc is not None:
            return f"{self.cidr} in {self.vpc} ({len(self.subnets)} subnet(s))"
        if self.account is not None:
            return f"{self.cidr} in account {self.account}"
        return self.cidr


# Not frozen, like Option: the plan adds each API workload's share of its access afterwards.
@dataclass(slots=True, kw_only=True)
class WorkloadPlan:
    name: str
    task: str
    data: str
    consumers: list[Consumer]
    placement: Placement
    model: str
    provider: str | None
    pool: str | None
    answers: Answers
    monthly_cost_usd: float
    warnings: list[Warning]
    # The range of its cost from the uncertain assumptions (an API's is its expected cost).
    monthly_cost_low_usd: float = 0.0
    monthly_cost_high_usd: float = 0.0
    # An API workload's share of the shared access it uses (its provider's pieces and the egress
    # network, each paid once in the plan), part of monthly_cost_usd; the rest is its tokens. Its
    # chosen option's price is that access standing alone, which can be more.
    access_share_usd: float = 0.0


class PurchaseOptionCost(_Out):
    option: str
    monthly_cost_usd: float
    formula: str
    comparison_only: bool


@dataclass(slots=True, kw_only=True)
class PoolCrossover:
    """The monthly volume from which the pool costs less than an API, at one purchase option.
    (A plain slots dataclass, as Option: a plan builds eight a pool.)"""

    comparison: str  # closed frontier API, or the same open model as an API
    api_option: str
    purchase: str
    monthly_tokens: int | None  # None: never
    api_monthly_usd: float | None  # the API spend at that volume


class Pool(_Out):
    name: str
    model: str
    weights: str
    instance_type: str
    nodes: int
    gpus_per_node: int
    precision: str
    tensor_parallel: int
    pipeline_parallel: int
    pricing: Pricing
    perimeter: Perimeter
    capacity_reservation_id: str | None
    monthly_cost_usd: float
    # The range of its cost: utilization, serving efficiency and purchase multiplier ranges.
    monthly_cost_low_usd: float
    monthly_cost_high_usd: float
    workloads: list[str]
    # The same nodes under every purchase option (and bought, as a comparison only).
    purchase_options: list[PurchaseOptionCost]
    # Tokens a month its workloads send, and where the pool starts to beat the APIs.
    monthly_tokens: int
    crossover: list[PoolCrossover]


class ProviderAccess(_Out):
    provider: str
    hosts: list[str]
    private_link: bool
    models: list[str]
    secret_config_key: str | None
    workloads: list[str]
    # Its own network and security pieces a month (key secret, PrivateLink endpoint).
    fixed_monthly_usd: float


class Totals(_Out):
    monthly_cost_usd: float
    monthly_cost_low_usd: float
    monthly_cost_high_usd: float
    self_hosted_usd: float
    cloud_api_usd: float
    # The same total by kind, as `planner preview` shows it: the pools' staff, the API tokens,
    # and the shared access (providers' pieces and the egress network, each once); the rest is
    # the pools' nodes and network pieces.
    staff_usd: float
    api_tokens_usd: float
    shared_access_usd: float
    # The same workloads decided one at a time, and what planning them together saves.
    per_workload_usd: float
    saved_by_sharing_usd: float
    # The boundary the providers reached over the internet share, once.
    egress_network_usd: float
    # strategy optimal: how far above the optimum the plan may be (0: the exact optimum; above
    # 0 only when --time-limit stopped the solver, as proven by its bound).
    optimality_gap_usd: float


class Plan(_Out):
    schema_version: int
    organization: str
    stack: str
    region: str
    workloads_file: str
    inputs_sha256: str
    catalog_sha256: str
    assumptions: dict[str, str | float | int]
    strategy: str
    workloads: list[WorkloadPlan]
    pools: list[Pool]
    providers: list[ProviderAccess]
    totals: Totals
    figures: dict[str, FigureUsed]


def read_plan(path: Path, catalog: Catalog | None = None) -> Plan:
    """Load plan.json and check it whole: a missing, malformed, other-version or inconsistent
    plan (a negative cost or node count, a model or instance type the catalog does not have,
    totals that do not add up, a pool or provider and its workloads that disagree) is a
    PlannerError listing every problem with its field."""
    file = str(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PlannerError.single(file, "", "no such plan: run `planner plan` first") from None
    except IsADirectoryError:
        raise PlannerError.single(file, "", "a directory, not a plan file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PlannerError.single(file, "", f"cannot read the plan: {exc}") from None
    if not isinstance(raw, dict) or raw.get("schema_version") != SCHEMA_VERSION:
        found = raw.get("schema_version") if isinstance(raw, dict) else None
        raise PlannerError.single(
            file,
            "schema_version",
            f"expected {SCHEMA_VERSION}, found {found!r}: plan again with this planner",
        )
    try:
        plan = Plan.model_validate(raw)
    except ValidationError as exc:
        problems = [
            Problem(_field(error["loc"]), f"{_message(error)}: plan again")
            for error in exc.errors()
        ]
        raise PlannerError(file, problems) from None
    problems = plan_problems(plan, catalog or default_catalog())
    if problems:
        raise PlannerError(file, problems)
    return plan


def _field(loc: tuple[int | str, ...]) -> str:
    """('workloads', 1, 'pool') -> workloads[1].pool: the field as the JSON file has it."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _message(error: Any) -> str:
    given = error.get("input")
    if error["type"] == "missing":
        return "missing"
    if isinstance(given, dict | list):  # the whole value would drown the message
        return str(error["msg"])
    return f"{error['msg']}, found {given!r}"


def _cents(amount: float) -> int:
    return round(amount * 100)


def plan_problems(plan: Plan, catalog: Catalog) -> list[Problem]:
    """Everything a plan must satisfy beyond its types, each problem with its field. The totals
    must add up to the cent: they are sums of whole cents when the planner writes them."""
    problems: list[Problem] = []

    def problem(field: str, message: str) -> None:
        problems.append(Problem(field, f"{message}: plan again with `planner plan`"))

    def not_negative(field: str, value: float | int | None) -> None:
        if value is not None and value < 0:
            problem(field, f"{value} is negative")

    def adds_up(field: str, value: float, parts: list[float], what: str) -> None:
        expected = sum(_cents(part) for part in parts)
        if _cents(value) != expected:
            problem(field, f"{value:,.2f} USD is not {what}, {expected / 100:,.2f} USD")

    workloads = {w.name: w for w in plan.workloads}
    pools = {pool.name: pool for pool in plan.pools}
    providers = {access.provider: access for access in plan.providers}
    seen: set[str] = set()
    for index, w in enumerate(plan.workloads):
        at = f"workloads[{index}]"
        if w.name in seen:
            problem(f"{at}.name", f"{w.name!r} is repeated")
        seen.add(w.name)
        for name in (
            "monthly_cost_usd",
            "monthly_cost_low_usd",
            "monthly_cost_high_usd",
            "access_share_usd",
        ):
            not_negative(f"{at}.{name}", getattr(w, name))
        if w.monthly_cost_low_usd > w.monthly_cost_high_usd:
            problem(f"{at}.monthly_cost_low_usd", "above monthly_cost_high_usd")
        economics = w.answers.volume_economics
        not_negative(
            f"{at}.answers.volume_economics.monthly_input_tokens", economics.monthly_input_tokens
        )
        not_negative(
            f"{at}.answers.volume_economics.monthly_output_tokens", economics.monthly_output_tokens
        )
        if w.placement == "self_hosted":
            if w.model not in catalog.models:
                problem(f"{at}.model", f"{w.model!r} is not an open model of the catalog")
            if w.pool not in pools:
                problem(f"{at}.pool", f"{w.pool!r} names no pool of this plan")
            elif w.name not in pools[w.pool].workloads:
                problem(f"{at}.pool", f"pool {w.pool!r} does not list {w.name!r}")
            if w.access_share_usd:
                problem(f"{at}.access_share_usd", "a self-hosted workload shares no API access")
        else:
            if w.model not in catalog.api_models:
                problem(f"{at}.model", f"{w.model!r} is not an API model of the catalog")
            if w.pool is not None:
                problem(f"{at}.pool", f"an API workload is in no pool, found {w.pool!r}")
            if w.provider not in providers:
                problem(f"{at}.provider", f"{w.provider!r} names no provider of this plan")
            elif w.name not in providers[w.provider].workloads:
                problem(f"{at}.provider", f"provider {w.provider!r} does not list {w.name!r}")
            if _cents(w.access_share_usd) > _cents(w.monthly_cost_usd):
                problem(f"{at}.access_share_usd", "above the workload's monthly_cost_usd")
        option_ids = set()
        for number, option in enumerate(economics.options + economics.alternatives):
            kind = "options" if number < len(economics.options) else "alternatives"
            place = number if kind == "options" else number - len(economics.options)
            where = f"{at}.answers.volume_economics.{kind}[{place}]"
            if kind == "options":
                option_ids.add(option.id)
            not_negative(f"{where}.monthly_cost_usd", option.monthly_cost_usd)
            not_negative(f"{where}.fixed_monthly_usd", option.fixed_monthly_usd)
            if option.nodes is not None and option.nodes < 1:
                problem(f"{where}.nodes", f"{option.nodes} nodes: at least 1")
            if option.instance_type is not None and option.instance_type not in catalog.instances:
                problem(
                    f"{where}.instance_type",
                    f"{option.instance_type!r} is not an instance type of the catalog",
                )
            known = catalog.models if option.placement == "self_hosted" else catalog.api_models
            if option.model not in known:
                problem(f"{where}.model", f"{option.model!r} is not a model of the catalog")
        if economics.chosen not in option_ids:
            problem(
                f"{at}.answers.volume_economics.chosen",
                f"{economics.chosen!r} is none of the workload's options",
            )

    seen = set()
    for index, pool in enumerate(plan.pools):
        at = f"pools[{index}]"
        if pool.name in seen:
            problem(f"{at}.name", f"{pool.name!r} is repeated")
        seen.add(pool.name)
        if pool.model not in catalog.models:
            problem(f"{at}.model", f"{pool.model!r} is not an open model of the catalog")
        instance = catalog.instances.get(pool.instance_type)
        if instance is None:
            problem(
                f"{at}.instance_type",
                f"{pool.instance_type!r} is not an instance type of the catalog",
            )
        elif pool.gpus_per_node != instance.gpus:
            problem(
                f"{at}.gpus_per_node",
                f"{pool.gpus_per_node}, but a {pool.instance_type} has {instance.gpus}",
            )
        for name in ("nodes", "tensor_parallel", "pipeline_parallel"):
            if getattr(pool, name) < 1:
                problem(f"{at}.{name}", f"{getattr(pool, name)}: at least 1")
        for name in (
            "monthly_cost_usd",
            "monthly_cost_low_usd",
            "monthly_cost_high_usd",
            "monthly_tokens",
        ):
            not_negative(f"{at}.{name}", getattr(pool, name))
        for number, purchase in enumerate(pool.purchase_options):
            not_negative(
                f"{at}.purchase_options[{number}].monthly_cost_usd", purchase.monthly_cost_usd
            )
        if not pool.workloads:
            problem(f"{at}.workloads", "a pool names no workload")
        members = []
        for number, name in enumerate(pool.workloads):
            member = workloads.get(name)
            if member is None:
                problem(f"{at}.workloads[{number}]", f"{name!r} is no workload of this plan")
            elif member.pool != pool.name:
                problem(f"{at}.workloads[{number}]", f"{name!r} is placed in {member.pool!r}")
            else:
                members.append(member.monthly_cost_usd)
        if len(members) == len(pool.workloads) and pool.workloads:
            adds_up(
                f"{at}.monthly_cost_usd",
                pool.monthly_cost_usd,
                members,
                "the sum of its workloads' costs",
            )

    for index, access in enumerate(plan.providers):
        at = f"providers[{index}]"
        if access.provider not in catalog.providers:
            problem(f"{at}.provider", f"{access.provider!r} is not a provider of the catalog")
        not_negative(f"{at}.fixed_monthly_usd", access.fixed_monthly_usd)
        if not access.workloads:
            problem(f"{at}.workloads", "a provider's access names no workload")
        for number, name in enumerate(access.workloads):
            member = workloads.get(name)
            if member is None:
                problem(f"{at}.workloads[{number}]", f"{name!r} is no workload of this plan")
            elif member.placement != "cloud_api" or member.provider != access.provider:
                problem(f"{at}.workloads[{number}]", f"{name!r} does not use {access.provider}")
        for number, model in enumerate(access.models):
            if model not in catalog.api_models:
                problem(f"{at}.models[{number}]", f"{model!r} is not an API model of the catalog")

    totals = plan.totals
    for name in (
        "monthly_cost_usd",
        "monthly_cost_low_usd",
        "monthly_cost_high_usd",
        "self_hosted_usd",
        "cloud_api_usd",
        "staff_usd",
        "api_tokens_usd",
        "shared_access_usd",
        "per_workload_usd",
        "egress_network_usd",
        "optimality_gap_usd",
    ):
        not_negative(f"totals.{name}", getattr(totals, name))
    costs = [w.monthly_cost_usd for w in plan.workloads]
    adds_up(
        "totals.monthly_cost_usd", totals.monthly_cost_usd, costs, "the sum of the workloads' costs"
    )
    adds_up(
        "totals.monthly_cost_usd",
        totals.monthly_cost_usd,
        [totals.self_hosted_usd, totals.cloud_api_usd],
        "self_hosted_usd + cloud_api_usd",
    )
    adds_up(
        "totals.self_hosted_usd",
        totals.self_hosted_usd,
        [w.monthly_cost_usd for w in plan.workloads if w.placement == "self_hosted"],
        "the sum of the self-hosted workloads' costs",
    )
    adds_up(
        "totals.cloud_api_usd",
        totals.cloud_api_usd,
        [totals.api_tokens_usd, totals.shared_access_usd],
        "api_tokens_usd + shared_access_usd",
    )
    adds_up(
        "totals.shared_access_usd",
        totals.shared_access_usd,
        [a.fixed_monthly_usd for a in plan.providers] + [totals.egress_network_usd],
        "the providers' fixed_monthly_usd and egress_network_usd",
    )
    adds_up(
        "totals.shared_access_usd",
        totals.shared_access_usd,
        [w.access_share_usd for w in plan.workloads],
        "the sum of the workloads' access_share_usd",
    )
    adds_up(
        "totals.monthly_cost_low_usd",
        totals.monthly_cost_low_usd,
        [w.monthly_cost_low_usd for w in plan.workloads],
        "the sum of the workloads' low ends",
    )
    adds_up(
        "totals.monthly_cost_high_usd",
        totals.monthly_cost_high_usd,
        [w.monthly_cost_high_usd for w in plan.workloads],
        "the sum of the workloads' high ends",
    )
    adds_up(
        "totals.saved_by_sharing_usd",
        totals.saved_by_sharing_usd,
        [totals.per_workload_usd, -totals.monthly_cost_usd],
        "per_workload_usd - monthly_cost_usd",
    )
    fte, engineer = plan.assumptions.get("pool_fte"), plan.assumptions.get("engineer_usd_per_month")
    if isinstance(fte, int | float) and isinstance(engineer, int | float):
        adds_up(
            "totals.staff_usd",
            totals.staff_usd,
            [round(fte * engineer, 2)] * len(plan.pools),
            f"{len(plan.pools)} pool(s) x {fte:g} engineer x {engineer:,.2f} USD",
        )
    else:
        problem("assumptions.pool_fte", "pool_fte and engineer_usd_per_month must be numbers")
    return problems


def check_fresh(plan: Plan, plan_file: Path, project_dir: Path) -> None:
    """Refuse a plan whose workloads file changed since it was planned: what was reviewed is
    what gets deployed."""
    workloads = project_dir / plan.workloads_file
    try:
        digest = hashlib.sha256(workloads.read_bytes()).hexdigest()
    except OSError as exc:
        raise PlannerError.single(
            str(plan_file), "workloads_file", f"cannot read {workloads}: {exc.strerror}"
        ) from None
    if digest != plan.inputs_sha256:
        raise PlannerError.single(
            str(plan_file),
            "inputs_sha256",
            f"stale plan: {plan.workloads_file} changed since this plan was made; run "
            f"`planner plan {plan.workloads_file} --stack {plan.stack}` and review the new plan",
        )
