"""A workload's part of the plan: its answers (task quality, data sensitivity, volume economics
with every option priced and the break-even), its consumers and its warnings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from planner.catalog.vocabulary import PaidAs, Perimeter, Tier
from planner.planfile.base import Placement


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
    # The plan's purchase option (on_demand, spot, ...), or owned / bought for a cluster
    # site's node (bought hardware); None for an API.
    pricing: PaidAs | None = None
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


class GivenConsumer(Protocol):
    """A consumer as the workloads file gives it (planner.inputs.workloads.Consumer), which the
    plan file's package does not import."""

    @property
    def cidr(self) -> str | None: ...
    @property
    def vpc(self) -> str | None: ...
    @property
    def subnets(self) -> Sequence[str]: ...
    @property
    def account(self) -> str | None: ...
    @property
    def namespace(self) -> str | None: ...
    @property
    def site(self) -> str | None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Consumer:
    """Callers of a workload. `vpc` (with `subnets`): their VPC in this account, where the stack
    makes their endpoint; `account`: another account, which makes its own; neither: callers
    inside the stack's own network. `namespace` (with `site`, no `cidr`): the pods of that
    namespace of a Kubernetes site's cluster, admitted by the namespace's name."""

    cidr: str | None = None
    vpc: str | None = None
    subnets: tuple[str, ...] = ()
    account: str | None = None
    namespace: str | None = None
    site: str | None = None

    @classmethod
    def of(cls, given: GivenConsumer) -> Consumer:
        """The plan's record of a workloads file's consumer (planner.inputs.workloads.Consumer):
        what the plan copies and check_fresh compares."""
        return cls(
            cidr=given.cidr,
            vpc=given.vpc,
            subnets=tuple(given.subnets),
            account=given.account,
            namespace=given.namespace,
            site=given.site,
        )

    def text(self) -> str:
        if self.namespace is not None:
            return f"namespace {self.namespace} on site {self.site}"
        if self.vpc is not None:
            return f"{self.cidr} in {self.vpc} ({len(self.subnets)} subnet(s))"
        if self.account is not None:
            return f"{self.cidr} in account {self.account}"
        return str(self.cidr)


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
