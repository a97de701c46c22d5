"""The plan: what `planner plan` writes to plan.json and what the Pulumi program reads back."""

from __future__ import annotations

import bisect
import hashlib
import ipaddress
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from planner.catalog import Catalog, PrivateConsumers, default_catalog
from planner.catalog.vocabulary import DataClass, Perimeter, Pricing, Tier
from planner.costing import node_hourly_usd, nodes_monthly_usd, pieces_cost, purchase_costs
from planner.errors import PlannerError, Problem
from planner.inputs.workloads import NETWORK_PREFIXES

SCHEMA_VERSION = 10

# A stack name: it names Pulumi.<stack>.yaml, so no path separators (the CLI's --stack rule).
STACK_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")

Placement = Literal["self_hosted", "cloud_api"]


class _Out(BaseModel):
    # read_plan validates JSON text strictly: "2" or true is no node count, NaN no cost.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


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


@dataclass(frozen=True, slots=True, kw_only=True)
class ThroughputUsed:
    """What one unit of a self-hosted option serves, from the throughput model (planner/
    throughput.py): at the workload's request shape and the per-user speed."""

    input_tokens: int
    output_tokens: int
    cached_input_fraction: float
    user_output_tps: float
    # Per unit (all its replicas), before utilization.
    output_tokens_per_second: float
    total_tokens_per_second: float
    batch_per_replica: int
    tokens_per_user: float
    # What limits it: per-user speed, KV memory (the batch), or bandwidth, compute, overhead
    # (the step time).
    bound: str
    # False where even one request alone is slower than user_output_tps.
    user_speed_met: bool
    # False where no calibration point of the model is in the fit: its stated error does not
    # cover this figure (DeepSeek: every measured point of it is off by 1.5x or more).
    validated: bool = True
    # False where the calibration measured the model only in another configuration than the
    # pools deploy (MoE: TensorRT-LLM attention data parallel, not vLLM tensor parallel).
    configuration_measured: bool = True


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
    # the throughput model's error, purchase rate); set on the option a plan chooses.
    monthly_cost_low_usd: float | None = None
    monthly_cost_high_usd: float | None = None
    # What to know before relying on it (a lower-precision alternative's quality note).
    note: str | None = None
    # A self-hosted option's throughput at the workload's request shape.
    throughput: ThroughputUsed | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Crossing:
    """From this monthly volume on the `cheaper` side costs less (self-hosting at the volume
    itself, the API from just above it), up to the next crossing."""

    monthly_tokens: int
    cheaper: Placement


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
    # Every crossing at the plan's purchase option up to crossings_up_to_tokens: self-hosting
    # steps up a node at a time, so the API can win again above the first.
    crossings: list[Crossing] = field(default_factory=list)
    crossings_up_to_tokens: int = 0


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
    # Its share of the connections the stack makes in its consumers' VPCs for the service it
    # uses (Plan.connections), part of monthly_cost_usd.
    connection_share_usd: float = 0.0


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
    # Every crossing up to crossings_up_to_tokens (the first is monthly_tokens).
    crossings: list[Crossing] = field(default_factory=list)
    crossings_up_to_tokens: int = 0


class PoolLoad(_Out):
    """One member's load on a pool, in units of the pool's option (costs.unit_load): its
    monthly volume, its peak, the KV cache it keeps in flight, and its minimum of units."""

    workload: str
    volume_units: float
    peak_units: float
    kv_cache_units: float
    min_units: int


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
    # Replicas a node serves (the plan prices them all; a multi-node replica is 1): the node
    # runs them as vLLM data-parallel engines behind one server.
    replicas_per_node: int
    # The longest context (prompt and completion) a request may have: from its workloads'
    # request shapes with a margin, within the model's window and one replica's KV cache.
    max_model_len: int
    # The share of GPU memory the engine may use: 1 - the plan's memory_reserve, as the plan
    # sized the KV cache with it.
    gpu_memory_utilization: float
    pricing: Pricing
    perimeter: Perimeter
    capacity_reservation_id: str | None
    # The reservation's availability zone (the workloads file names it): the nodes go there.
    capacity_reservation_zone: str | None = None
    monthly_cost_usd: float
    # The range of its cost: utilization, the throughput model's error, purchase rate.
    monthly_cost_low_usd: float
    monthly_cost_high_usd: float
    workloads: list[str]
    # The same nodes under every purchase option (and bought, as a comparison only).
    purchase_options: list[PurchaseOptionCost]
    # Tokens a month its workloads send, and where the pool starts to beat the APIs.
    monthly_tokens: int
    crossover: list[PoolCrossover]
    # Its network's range, allocated at plan time (planner/inputs/networks.py).
    cidr: str
    # How its nodes follow from its members' loads: each part adds up on its own, and the units
    # are the largest of the rounded-up sums and the largest minimum (sizing_formula).
    sizing: list[PoolLoad]
    sizing_formula: str


class ProviderAccess(_Out):
    provider: str
    hosts: list[str]
    private_link: bool
    models: list[str]
    secret_config_key: str | None
    workloads: list[str]
    # Its own network and security pieces a month (key secret, PrivateLink endpoint).
    fixed_monthly_usd: float


class Connection(_Out):
    """What the stack adds in one consumer VPC of this account for one service (a pool, the
    PrivateLink network or the egress network), priced once and shared equally by the workloads
    of that service that name the VPC."""

    service: str  # a pool's name, "private_link" or "egress"
    kind: str  # operations.yaml connections: self_hosted_pool, private_link, egress
    vpc: str
    subnets: list[str]
    workloads: list[str]
    monthly_cost_usd: float
    formula: str


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
    # The connections in the consumers' VPCs (Plan.connections), each once; part of the pools'
    # workloads' costs and of the API workloads' costs by the service they connect.
    connections_usd: float
    # The same workloads decided one at a time, and what planning them together saves.
    per_workload_usd: float
    saved_by_sharing_usd: float
    # The boundary the providers reached over the internet share, once.
    egress_network_usd: float
    # strategy optimal: how far above the optimum the plan may be, proven by the solver's bound
    # (0: the exact optimum); the solve stops within optimizer.yaml's gap, or at a time limit.
    optimality_gap_usd: float
    # A time limit stopped the solve first: the gap still holds, but a rerun may differ.
    optimizer_stopped_by_time_limit: bool = False
    # The node limit stopped it first: the gap still holds, and a rerun gives the same plan.
    optimizer_stopped_by_node_limit: bool = False


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
    # The API networks' ranges the plan needs ("private_link", "egress"), allocated at plan time.
    networks: dict[str, str]
    # What the stack makes in the consumers' VPCs of this account, by service and VPC.
    connections: list[Connection]
    totals: Totals
    figures: dict[str, FigureUsed]


# A provider reached over PrivateLink needs the PrivateLink network; the others the egress one.
API_NETWORK_FOR = {True: "private_link", False: "egress"}


def read_plan(path: Path, catalog: Catalog | None = None) -> Plan:
    """Load plan.json and check it whole: a missing, malformed, other-version or inconsistent
    plan (a negative cost or node count, a model or instance type the catalog does not have,
    totals that do not add up, a pool or provider and its workloads that disagree) is a
    PlannerError listing every problem with its field."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
        # NaN and Infinity are no JSON; Python's json reads them: mark them for pydantic to name.
        raw = json.loads(text, parse_constant=lambda constant: None)
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
        # Strict, from the JSON text: a count is a whole number and a flag true or false, as
        # the planner writes them ("2", 2.0 or true for a node count is refused, not converted).
        plan = Plan.model_validate_json(text, strict=True)
    except ValidationError as exc:
        seen: set[str] = set()
        problems = []
        for error in exc.errors():
            where = _field(error["loc"])
            if where not in seen:  # a union reports each of its types: one problem a field
                seen.add(where)
                problems.append(Problem(where, f"{_message(error)}: plan again"))
        raise PlannerError(file, problems) from None
    problems = plan_problems(plan, catalog or default_catalog())
    if problems:
        raise PlannerError(file, problems)
    return plan


# Parts of a pydantic error location that name a type of a union, not a field of the file.
_UNION_PARTS = {"str", "float", "int", "bool", "none", "list[int]"}


def _field(loc: tuple[int | str, ...]) -> str:
    """('workloads', 1, 'pool') -> workloads[1].pool: the field as the JSON file has it."""
    text = ""
    for part in loc:
        if isinstance(part, str) and (part in _UNION_PARTS or part.startswith("function-")):
            continue
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _json_value(value: Any) -> str:
    """A value as the plan file writes it."""
    if isinstance(value, float) and value != value:
        return "NaN"
    try:
        return json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):
        return repr(value)


# pydantic's error kinds in the plan file's words (no "Input should be ...").
_KIND_WORDS = {
    "int_type": "expected a whole number",
    "int_from_float": "expected a whole number",
    "int_parsing": "expected a whole number",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "finite_number": "expected a finite number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "string_type": "expected text",
    "list_type": "expected a list",
    "tuple_type": "expected a list",
    "dict_type": "expected an object",
    "model_type": "expected an object",
    "model_attributes_type": "expected an object",
    "dataclass_type": "expected an object",
    "dataclass_exact_type": "expected an object",
    "none_required": "expected null",
}


def _message(error: Any) -> str:
    from planner.inputs.loader import (
        did_you_mean,  # loader reads workloads files; imported when needed
    )

    kind, given = error["type"], error.get("input")
    shown = "" if isinstance(given, dict | list) else f", found {_json_value(given)}"
    if kind == "missing":
        return "missing"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind in ("enum", "literal_error"):
        choices = re.findall(r"'([^']*)'", str(error.get("ctx", {}).get("expected", "")))
        return (
            f"{_json_value(given)} is not one of {', '.join(choices)}{did_you_mean(given, choices)}"
        )
    if kind in _KIND_WORDS:
        return _KIND_WORDS[kind] + shown
    message = str(error["msg"]).removeprefix("Value error, ")
    return message.replace("Input should be ", "expected ") + shown


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
            "connection_share_usd",
        ):
            not_negative(f"{at}.{name}", getattr(w, name))
        if w.connection_share_usd and _cents(w.access_share_usd) + _cents(
            w.connection_share_usd
        ) > _cents(w.monthly_cost_usd):
            problem(
                f"{at}.connection_share_usd",
                "with access_share_usd, above the workload's monthly_cost_usd",
            )
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
        if (pool.capacity_reservation_id is None) != (pool.capacity_reservation_zone is None):
            problem(
                f"{at}.capacity_reservation_zone",
                "a capacity reservation and its availability zone go together: plan again",
            )
        for name in (
            "nodes",
            "tensor_parallel",
            "pipeline_parallel",
            "replicas_per_node",
            "max_model_len",
        ):
            if getattr(pool, name) < 1:
                problem(f"{at}.{name}", f"{getattr(pool, name)}: at least 1")
        if not 0 < pool.gpu_memory_utilization <= 1:
            problem(
                f"{at}.gpu_memory_utilization",
                f"{pool.gpu_memory_utilization}: a share of GPU memory, above 0 and at most 1",
            )
        if pool.tensor_parallel * pool.replicas_per_node > pool.gpus_per_node:
            problem(
                f"{at}.replicas_per_node",
                f"{pool.replicas_per_node} replicas of tensor parallel {pool.tensor_parallel} "
                f"need more than the node's {pool.gpus_per_node} GPUs",
            )
        if pool.pipeline_parallel > 1 and pool.replicas_per_node != 1:
            problem(
                f"{at}.replicas_per_node",
                f"{pool.replicas_per_node}, but a replica spans {pool.pipeline_parallel} nodes",
            )
        open_model = catalog.models.get(pool.model)
        if open_model is not None and pool.precision not in open_model.checkpoints:
            # The nodes load the checkpoint published at the pool's precision.
            problem(f"{at}.precision", f"{pool.model} has no checkpoint at {pool.precision!r}")
        window = catalog.context_windows.get(pool.model)
        if window is not None and pool.max_model_len > window.value:
            problem(
                f"{at}.max_model_len",
                f"{pool.max_model_len:,} tokens, over {pool.model}'s context window of "
                f"{window.value:,.0f}",
            )
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
                # The pool's own cost: its workloads' connections are priced apart.
                members.append(member.monthly_cost_usd - member.connection_share_usd)
        if len(members) == len(pool.workloads) and pool.workloads:
            adds_up(
                f"{at}.monthly_cost_usd",
                pool.monthly_cost_usd,
                members,
                "the sum of its workloads' costs less their connection shares",
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

    problems.extend(_network_problems(plan))
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
        "connections_usd",
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
        [totals.api_tokens_usd, totals.shared_access_usd]
        + [w.connection_share_usd for w in plan.workloads if w.placement == "cloud_api"],
        "api_tokens_usd + shared_access_usd + the API workloads' connection_share_usd",
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
    problems.extend(_connection_problems(plan))
    adds_up(
        "totals.connections_usd",
        totals.connections_usd,
        [c.monthly_cost_usd for c in plan.connections],
        "the sum of the connections' costs",
    )
    adds_up(
        "totals.connections_usd",
        totals.connections_usd,
        [w.connection_share_usd for w in plan.workloads],
        "the sum of the workloads' connection_share_usd",
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
    problems.extend(_place_problems(plan, catalog))
    problems.extend(_consumer_problems(plan, catalog))
    problems.extend(_perimeter_problems(plan, catalog))
    problems.extend(_node_cost_problems(plan, catalog))
    return problems


def _connection_problems(plan: Plan) -> list[Problem]:
    """Each connection names a consumer VPC of its workloads, and those workloads use its
    service; a workload sharing a connection has a share."""
    problems: list[Problem] = []
    workloads = {w.name: w for w in plan.workloads}
    for index, connection in enumerate(plan.connections):
        at = f"connections[{index}]"

        def problem(field: str, message: str) -> None:
            problems.append(Problem(field, f"{message}: plan again with `planner plan`"))

        if connection.monthly_cost_usd < 0:
            problem(f"{at}.monthly_cost_usd", f"{connection.monthly_cost_usd} is negative")
        if not connection.workloads:
            problem(f"{at}.workloads", "a connection names no workload")
        for number, name in enumerate(connection.workloads):
            member = workloads.get(name)
            if member is None:
                problem(f"{at}.workloads[{number}]", f"{name!r} is no workload of this plan")
                continue
            if connection.vpc not in {c.vpc for c in member.consumers}:
                problem(f"{at}.vpc", f"{connection.vpc!r} is no consumer VPC of {name!r}")
            if connection.monthly_cost_usd and not member.connection_share_usd:
                problem(f"{at}.workloads[{number}]", f"{name!r} has no connection_share_usd")
    return problems


def _again(field: str, message: str) -> Problem:
    return Problem(field, f"{message}: plan again with `planner plan`")


def _place_problems(plan: Plan, catalog: Catalog) -> list[Problem]:
    """The region is one AWS has (and the catalog prices, or price_region stands in), and the
    stack is a name, not a path: both name files and resources the stack makes."""
    from planner.inputs.loader import did_you_mean

    found = []
    regions = catalog.regions
    if plan.region not in regions.aws.regions:
        found.append(
            _again(
                "region",
                f"{plan.region!r} is not an AWS region"
                + did_you_mean(plan.region, regions.aws.regions),
            )
        )
    elif plan.region not in regions.priced.regions:
        stand_in = plan.assumptions.get("price_region")
        if stand_in not in regions.priced.regions:
            found.append(
                _again(
                    "assumptions.price_region",
                    f"the catalog has no prices for {plan.region}, and price_region names none "
                    f"it has ({', '.join(regions.priced.regions)}), found {stand_in!r}",
                )
            )
    if not STACK_NAME.match(plan.stack) or plan.stack in (".", ".."):
        found.append(
            _again("stack", f"{plan.stack!r} is not a stack name (letters, digits, '-', '_', '.')")
        )
    return found


def _consumer_problems(plan: Plan, catalog: Catalog) -> list[Problem]:
    """Each consumer is a CIDR block; for the data classes that need it, a private one."""
    private = catalog.private_consumers
    found = []
    for index, w in enumerate(plan.workloads):
        for number, consumer in enumerate(w.consumers):
            at = f"workloads[{index}].consumers[{number}].cidr"
            try:
                network = ipaddress.ip_network(consumer.cidr, strict=True)
            except ValueError as exc:
                found.append(_again(at, f"{consumer.cidr!r} is not a CIDR block: {exc}"))
                continue
            if network.prefixlen == 0:
                found.append(_again(at, f"{consumer.cidr} admits every address"))
            elif w.data in private.data_classes and not private.is_private(consumer.cidr):
                found.append(
                    _again(
                        at,
                        f"{consumer.cidr} is not a private range, and {w.data} data may only "
                        f"be called from private ones ({', '.join(private.ranges)})",
                    )
                )
    return found


_RANK = {perimeter: rank for rank, perimeter in enumerate(Perimeter)}  # weakest first


def _public_range(private: PrivateConsumers, cidr: str) -> bool:
    """A valid range outside private address space (a malformed one is reported elsewhere)."""
    try:
        return not private.is_private(cidr)
    except ValueError:
        return False


def _perimeter_problems(plan: Plan, catalog: Catalog) -> list[Problem]:
    """Each workload's perimeter is at least what its data class requires (the catalog's data
    classes, as answers.data_sensitivity decides it) and its placement keeps to it; each pool's
    perimeter is at least that of every workload it holds."""
    from planner.inputs.loader import did_you_mean

    found = []
    needs: dict[str, Perimeter] = {}
    for index, w in enumerate(plan.workloads):
        at = f"workloads[{index}]"
        info = catalog.data_classes.get(DataClass(w.data)) if w.data in set(DataClass) else None
        if info is None:
            classes = [c.value for c in DataClass]
            found.append(
                _again(
                    f"{at}.data",
                    f"{w.data!r} is not one of {', '.join(classes)}{did_you_mean(w.data, classes)}",
                )
            )
            continue
        stated = w.answers.data_sensitivity.perimeter
        need = max(info.perimeter, stated, key=_RANK.__getitem__)
        needs[w.name] = need
        if _RANK[stated] < _RANK[info.perimeter]:
            found.append(
                _again(
                    f"{at}.answers.data_sensitivity.perimeter",
                    f"{stated.value}, but {w.data} data needs {info.perimeter.value}",
                )
            )
        provider = catalog.providers.get(w.provider or "")
        if w.placement == "cloud_api" and provider is not None:
            if need is Perimeter.technical:
                found.append(
                    _again(
                        f"{at}.placement",
                        f"cloud_api, but the {need.value} perimeter ({w.data} data) allows no "
                        "cloud API",
                    )
                )
            elif need is Perimeter.private_link and not provider.private_link:
                found.append(
                    _again(
                        f"{at}.provider",
                        f"{w.provider} is not reachable through AWS PrivateLink, which "
                        f"{w.data} data needs",
                    )
                )
    private = catalog.private_consumers
    by_name = {w.name: w for w in plan.workloads}
    for index, pool in enumerate(plan.pools):
        # A pool admits every member's callers: where one member's data may only be called from
        # private ranges, that holds for all of them (a mixed pool keeps the strictest perimeter).
        members = [by_name[name] for name in pool.workloads if name in by_name]
        strict = [w.name for w in members if w.data in private.data_classes]
        public = sorted(
            {c.cidr for w in members for c in w.consumers if _public_range(private, c.cidr)}
        )
        if strict and public:
            found.append(
                _again(
                    f"pools[{index}].workloads",
                    f"{', '.join(strict)} may only be called from private ranges, but the pool "
                    f"also admits its other members' public callers {', '.join(public)}",
                )
            )
        weaker = [
            name
            for name in pool.workloads
            if name in needs and _RANK[pool.perimeter] < _RANK[needs[name]]
        ]
        if weaker:
            strongest = max((needs[name] for name in weaker), key=_RANK.__getitem__)
            found.append(
                _again(
                    f"pools[{index}].perimeter",
                    f"{pool.perimeter.value}, weaker than {strongest.value}, which "
                    f"{', '.join(weaker)} need(s)",
                )
            )
    return found


def _node_cost_problems(plan: Plan, catalog: Catalog) -> list[Problem]:
    """A pool's cost is its nodes at its purchase option plus its staff and network pieces, to
    the cent (as plan.py prices it); its purchase options are the same nodes priced each way. A
    node count changed alone, or an absurd one, disagrees with the costs."""
    fte, engineer = plan.assumptions.get("pool_fte"), plan.assumptions.get("engineer_usd_per_month")
    months = plan.assumptions.get("amortization_months")
    if not isinstance(fte, int | float) or not isinstance(engineer, int | float):
        return []  # plan_problems reports it
    fixed = round(
        round(fte * engineer, 2) + pieces_cost(catalog, ("self_hosted_pool",)).monthly_usd, 2
    )
    hours = catalog.pricing.hours_per_month.value
    found = []
    for index, pool in enumerate(plan.pools):
        instance = catalog.instances.get(pool.instance_type)
        if instance is None or pool.nodes < 1:
            continue  # reported by plan_problems
        at = f"pools[{index}]"
        hourly = node_hourly_usd(catalog, instance, pool.pricing)
        expected = round((nodes_monthly_usd(hourly, hours, pool.nodes) + fixed) * 100)
        if _cents(pool.monthly_cost_usd) != expected:
            found.append(
                _again(
                    f"{at}.monthly_cost_usd",
                    f"{pool.monthly_cost_usd:,.2f} USD, but {pool.nodes:,} x {pool.instance_type}"
                    f" ({pool.pricing.value}) and the pool's staff and network pieces cost "
                    f"{expected / 100:,.2f} USD: nodes and cost disagree",
                )
            )
        recomputed = {
            cost.option: cost.monthly_usd
            for cost in purchase_costs(
                catalog,
                pool.instance_type,
                pool.nodes,
                months if isinstance(months, int | float) else None,
            )
        }
        for number, purchase in enumerate(pool.purchase_options):
            price = recomputed.get(purchase.option)
            if price is None:
                found.append(
                    _again(
                        f"{at}.purchase_options[{number}].option",
                        f"{purchase.option!r} is no purchase option of {pool.instance_type}",
                    )
                )
            elif _cents(purchase.monthly_cost_usd) != _cents(price):
                found.append(
                    _again(
                        f"{at}.purchase_options[{number}].monthly_cost_usd",
                        f"{purchase.monthly_cost_usd:,.2f} USD, but {pool.nodes:,} x "
                        f"{pool.instance_type} cost {price:,.2f} USD {purchase.option}",
                    )
                )
    return found


def _network_problems(plan: Plan) -> list[Problem]:
    """Every range a valid IPv4 network, the API networks those the providers need, and no two
    of the stack's ranges overlapping each other or a consumer's."""
    problems: list[Problem] = []

    def problem(field: str, message: str) -> None:
        problems.append(Problem(field, f"{message}: plan again with `planner plan`"))

    ranges: list[tuple[str, ipaddress.IPv4Network]] = []
    named = [(f"pools[{i}].cidr", pool.cidr) for i, pool in enumerate(plan.pools)]
    named += [(f"networks.{name}", cidr) for name, cidr in sorted(plan.networks.items())]
    for field_name, cidr in named:
        try:
            network = ipaddress.ip_network(cidr, strict=True)
        except ValueError:
            problem(field_name, f"{cidr!r} is not a CIDR block")
            continue
        if not isinstance(network, ipaddress.IPv4Network):
            problem(field_name, f"{cidr} is not an IPv4 range")
            continue
        low, high = NETWORK_PREFIXES
        if not low <= network.prefixlen <= high:
            problem(field_name, f"{cidr} is a /{network.prefixlen}, not /{low} to /{high}")
        ranges.append((field_name, network))
    needed = {API_NETWORK_FOR[access.private_link] for access in plan.providers}
    for name in sorted(needed - set(plan.networks)):
        problem(f"networks.{name}", "missing: a provider of this plan needs it")
    for name in sorted(set(plan.networks) - needed):
        problem(f"networks.{name}", "no provider of this plan needs it")
    # Sorted by address, a range can only overlap ranges that start before its end.
    ranges.sort(key=lambda item: (int(item[1].network_address), item[0]))
    for number, (field_name, network) in enumerate(ranges):
        for other_field, other in ranges[number + 1 :]:
            if other.network_address > network.broadcast_address:
                break
            problem(other_field, f"{other} overlaps {field_name} {network}")
    # The consumers' IPv4 ranges by first address, each with the highest last address up to it:
    # a range overlaps some consumer iff one starting at or before its end reaches its start.
    firsts: dict[tuple[int, int], str] = {}
    for number, w in enumerate(plan.workloads):
        for index, c in enumerate(w.consumers):
            try:
                consumer = ipaddress.ip_network(c.cidr, strict=True)
            except ValueError:
                continue  # _consumer_problems reports it
            if isinstance(consumer, ipaddress.IPv4Network):
                span = (int(consumer.network_address), int(consumer.broadcast_address))
                firsts.setdefault(span, f"workloads[{number}].consumers[{index}] {c.cidr}")
    spans = sorted(firsts)
    starts = [low for low, _ in spans]
    reach: list[tuple[int, str]] = []
    for span in spans:
        here = (span[1], firsts[span])
        reach.append(max(reach[-1], here) if reach else here)
    for field_name, network in ranges:
        before = bisect.bisect_right(starts, int(network.broadcast_address))
        if before and reach[before - 1][0] >= int(network.network_address):
            problem(field_name, f"{network} overlaps consumer {reach[before - 1][1]}")
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
