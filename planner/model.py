"""The plan: what `planner plan` writes to plan.json and what the Pulumi program reads back."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from planner.errors import PlannerError
from planner.workloads import Perimeter, Pricing, Tier

SCHEMA_VERSION = 4

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


def read_plan(path: Path) -> Plan:
    """Load plan.json; a missing, malformed or other-version plan is a PlannerError."""
    file = str(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PlannerError.single(file, "", "no such plan: run `planner plan` first") from None
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
        return Plan.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"])
        raise PlannerError.single(file, field, f"{error['msg']}: plan again") from None


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
