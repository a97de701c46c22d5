"""The plan: what `planner plan` writes to plan.json and what the Pulumi program reads back."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from planner.errors import PlannerError
from planner.workloads import Perimeter, Pricing, Tier

SCHEMA_VERSION = 1

Placement = Literal["self_hosted", "cloud_api"]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FigureUsed(_Out):
    """A catalog figure a cost was computed from."""

    value: float | str
    unit: str
    source: str
    date: str


class MemoryFit(_Out):
    precision: str
    weights_gb: float
    gpu_memory_gb: float
    gpus_per_replica: int
    tensor_parallel: int
    pipeline_parallel: int
    replicas_per_node: int
    fits_one_node: bool
    note: str


class Option(_Out):
    id: str
    placement: Placement
    model: str
    provider: str | None = None
    tier: Tier
    instance_type: str | None = None
    pricing: Pricing | None = None
    memory_fit: MemoryFit | None = None
    nodes: int | None = None
    monthly_cost_usd: float
    formula: str
    figures: list[str]


class BreakEven(_Out):
    api_option: str
    self_hosted_option: str
    monthly_tokens: int | None
    api_monthly_usd: float | None
    explanation: str


class TaskQuality(_Out):
    tier: Tier
    reason: str


class DataSensitivity(_Out):
    perimeter: Perimeter
    reason: str


class VolumeEconomics(_Out):
    monthly_input_tokens: int
    monthly_output_tokens: int
    options: list[Option]
    chosen: str
    reason: str
    break_even: BreakEven | None


class Answers(_Out):
    task_quality: TaskQuality
    data_sensitivity: DataSensitivity
    volume_economics: VolumeEconomics


class Warning(_Out):
    code: str
    message: str


class WorkloadPlan(_Out):
    name: str
    task: str
    data: str
    consumers: list[str]
    placement: Placement
    model: str
    provider: str | None
    pool: str | None
    answers: Answers
    monthly_cost_usd: float
    warnings: list[Warning]


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
    workloads: list[str]


class ProviderAccess(_Out):
    provider: str
    hosts: list[str]
    private_link: bool
    models: list[str]
    secret_config_key: str | None
    workloads: list[str]


class Totals(_Out):
    monthly_cost_usd: float
    self_hosted_usd: float
    cloud_api_usd: float


class Plan(_Out):
    schema_version: int
    organization: str
    stack: str
    region: str
    workloads_file: str
    inputs_sha256: str
    catalog_sha256: str
    assumptions: dict[str, str | float | int]
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
