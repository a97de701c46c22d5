"""The catalog's types: models, instances, prices, defaults and the stack's pieces, as the data
files in planner/data state them (load.py reads and checks them).

Every number here comes from a data file with its source and date; nothing is a Python literal.

About 530 lines on purpose: one pydantic model per section of the data files and the Catalog
that holds them, read together by load.py, which checks the ids one section gives another (a
model's precisions, an API model's provider and open model) across them.
"""

from __future__ import annotations

import ipaddress
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from planner.catalog.base import _Data
from planner.catalog.providers import (
    Provider,
)
from planner.catalog.vocabulary import DataClass, Perimeter, Pricing, Task, Tier

TIER_ORDER = {Tier.small: 0, Tier.capable: 1, Tier.frontier: 2}
DATA_ORDER = {
    DataClass.public: 0,
    DataClass.internal: 1,
    DataClass.confidential: 2,
    DataClass.regulated: 3,
}


class Figure(_Data):
    """A number with the source it comes from and the date it was read."""

    value: float
    source: str
    date: str
    # The planning range of an uncertain figure, where the source gives one.
    low: float | None = None
    high: float | None = None

    @field_validator("date", mode="before")
    @classmethod
    def _date_text(cls, value: Any) -> str:
        return str(value)


class TextFigure(_Data):
    value: str
    source: str
    date: str


class Instance(_Data):
    description: str
    gpu: str
    gpus: int
    gpu_memory_gb: Figure
    efa: bool
    efa_interfaces: Figure | None = None
    # How fast a node fetches its weights, and the local NVMe it stages them on (stacks/boot.py).
    s3_download_gbps: Figure | None = None
    instance_store_gb: Figure | None = None
    on_demand_usd_per_hour: Figure
    # A published spot price (low and high of the observations), where one was found.
    spot_usd_per_hour: Figure | None = None
    # Published 1-year and 3-year commitment rates, where one was found
    # (costing.node_prices.PUBLISHED_RATES maps each purchase option to its field).
    savings_1yr_usd_per_hour: Figure | None = None
    savings_3yr_usd_per_hour: Figure | None = None


class PricingOption(_Data):
    multiplier: Figure
    # Spot: what interruptions and on-demand fallback add on top of a published spot price.
    premium: Figure | None = None
    inferred: bool
    note: str


class Server(_Data):
    capital_usd: Figure


class Hardware(_Data):
    horizon_months: Figure
    power_kw: Figure
    pue: Figure
    usd_per_kwh: Figure
    # Colocation of one GPU node a month (space, cooling capacity, network), without its power.
    hosting_usd_per_node_month: Figure
    servers: dict[str, Server]


class PricingData(_Data):
    hours_per_month: Figure
    options: dict[Pricing, PricingOption]
    hardware: Hardware


class Precision(_Data):
    bytes_per_param: Figure
    quality_note: str


class Throughput(_Data):
    """A measured serving point of a model: an anchor the throughput model is checked against
    (tests/test_capacity_model.py), not a planning figure."""

    gpu: str
    gpus: int
    output_tokens_per_second: float
    total_tokens_per_second: float
    input_tokens: int
    output_tokens: int
    # Requests in flight where the run fixed them; None: maximum load.
    concurrency: int | None = None
    shape: str
    source: str
    date: str
    # Why the throughput model misses this point by more than its stated error, where it does.
    known_miss: str | None = None

    @property
    def output_per_gpu(self) -> float:
        return self.output_tokens_per_second / self.gpus

    @property
    def total_per_gpu(self) -> float:
        return self.total_tokens_per_second / self.gpus


class Checkpoint(_Data):
    """A published checkpoint of a model at one precision (a Hugging Face repository)."""

    repo: str
    source: str
    date: str


class OpenModel(_Data):
    name: str
    tier: Tier
    quality_rank: int
    # Where the tier and rank come from (the benchmark that places the model) and when it was
    # read: required, a rank decides which model a quality ceiling calls the top one.
    quality_source: str
    quality_date: str
    # precision -> the checkpoint served at it: a pool loads it as published, never quantizing
    # a larger one online (which loads the larger one first).
    checkpoints: dict[str, Checkpoint]
    total_params_b: Figure
    active_params_b: Figure
    # Bytes of KV cache one token of context takes, all layers, at 16-bit cache precision.
    kv_bytes_per_token: Figure
    # Tokens of one request's context (prompt and completion) the model was built to take.
    context_window: Figure
    default_precision: str
    throughput: list[Throughput]

    @property
    def weights(self) -> str:
        """The checkpoint of its own precision (load_catalog checks there is one)."""
        return self.checkpoints[self.default_precision].repo


class PriceRef(_Data):
    model: str
    provider: str


class InferenceProfile(_Data):
    """A provider's cross-region inference profile (Amazon Bedrock's): the only way some models
    are served. A request made in one of its regions may be processed in any of its destination
    regions. Its id is the model's provider_model_id with the profile's geography in front
    (us., eu., global. ...; load_catalog checks it)."""

    id: str
    # geo: the regions of one geography (us.*); global: any commercial region (global.*), which
    # an IAM policy grants through the foundation model's region-less ARN.
    scope: Literal["geo", "global"] = "geo"
    destination_regions: list[str]
    source: str
    date: str


class Basis(_Data):
    """Whose judgement a non-numeric figure (a model's tier) is, and when it was read."""

    source: str
    date: str


class ApiModel(_Data):
    provider: str
    tier: Tier
    price_ref: PriceRef
    # Whose judgement the tier is and when it was read: required, the tier decides which tasks
    # the model may serve.
    tier_source: Basis
    # False: kept as a named option (a workload may pin it) but never chosen or compared unpinned.
    current: bool = True
    open_model: str | None = None
    # The provider's own id of the model, where the stack names the model (an `iam_role`
    # provider's model ARNs; load_catalog requires it there).
    provider_model_id: str | None = None
    # Set where the provider serves the model only through a cross-region inference profile.
    inference_profile: InferenceProfile | None = None
    # Where genai-prices has no context window for the model (it is read from there otherwise).
    context_window: Figure | None = None


class PriceOverride(_Data):
    price_ref: PriceRef
    input_usd_per_mtok: float
    output_usd_per_mtok: float
    cache_read_usd_per_mtok: float | None = None
    cache_write_usd_per_mtok: float | None = None
    source: str
    date: str


class TaskInfo(_Data):
    tier: Tier
    reason: str


class DataClassInfo(_Data):
    perimeter: Perimeter
    reason: str
    # The data must be processed in the stack's region: no cross-region inference profile.
    stays_in_region: bool = False


class Defaults(_Data):
    pricing: TextFigure
    utilization: Figure
    memory_reserve: Figure
    user_output_tps: Figure
    request_input_tokens: Figure
    request_output_tokens: Figure
    price_date: TextFigure
    warn_nodes_per_workload: Figure
    warn_usd_per_workload: Figure


# The HiGHS options the catalog may set (optimizer.yaml solver_options): type and range as the
# HiGHS documentation lists them ("List of options", ergo-code.github.io/HiGHS/stable/options/
# definitions). A name HiGHS does not know is only a warning there, and a fraction for an integer
# option a TypeError from scipy's wrapper: both are refused when the catalog loads.
HIGHS_OPTIONS: dict[str, tuple[type, float, float]] = {
    "mip_pscost_minreliable": (int, 0, 2_147_483_647),
    "mip_heuristic_effort": (float, 0.0, 1.0),
}


class OptimizerSettings(_Data):
    """When the shared-pool optimizer stops: a proven relative gap, or a time limit first."""

    gap: Figure
    node_limit: Figure
    time_limit_s: Figure
    # HiGHS options passed on verbatim (scipy.optimize.milp options), each with why it is set.
    solver_options: dict[str, Figure] = Field(default_factory=dict)

    @field_validator("solver_options")
    @classmethod
    def _known_options(cls, options: dict[str, Figure]) -> dict[str, Figure]:
        for name, figure in options.items():
            if name not in HIGHS_OPTIONS:
                raise ValueError(
                    f"{name}: not a HiGHS option the planner sets (known: "
                    f"{', '.join(sorted(HIGHS_OPTIONS))}; add one to catalog.HIGHS_OPTIONS with "
                    "its type and range from the HiGHS documentation)"
                )
            kind, low, high = HIGHS_OPTIONS[name]
            value = figure.value
            if kind is int and not float(value).is_integer():
                raise ValueError(f"{name}: {value} is not a whole number (an integer option)")
            if not low <= value <= high:
                raise ValueError(f"{name}: {value} is outside HiGHS's range {low:g} to {high:g}")
        return options

    def highs_options(self) -> dict[str, int | float]:
        """solver_options as HiGHS takes them: each value of its option's type."""
        return {
            name: int(figure.value) if HIGHS_OPTIONS[name][0] is int else float(figure.value)
            for name, figure in sorted(self.solver_options.items())
        }


# Why a cluster's weights' store must be the organization's own (PrivateConsumers.range_problem).
_WEIGHTS_INSIDE = "a sealed pool's pods reach only the organization's own store"


class PrivateConsumers(_Data):
    """Data classes whose consumers must be in private address space, and that space."""

    data_classes: list[DataClass]
    ranges: list[str]
    source: str
    date: str

    @field_validator("date", mode="before")
    @classmethod
    def _date_text(cls, value: Any) -> str:
        return str(value)

    def networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return _networks(tuple(self.ranges))

    def range_problem(self, cidr: object, why: str = _WEIGHTS_INSIDE) -> str | None:
        """Why this is no range of the organization's own network (a Kubernetes site's weights'
        store, which a sealed pool's pods may reach; `why` says what needs it so): not a CIDR
        block, or not wholly inside the private ranges; None where it is one."""
        try:
            network = ipaddress.ip_network(str(cidr), strict=True)
        except ValueError as exc:
            return f"{cidr!r} is not a CIDR block: {exc}"
        if not self.is_private(str(network)):
            return f"{cidr} is not inside the private ranges ({', '.join(self.ranges)}): {why}"
        return None

    def is_private(self, cidr: str) -> bool:
        """The block lies wholly inside one of the private ranges."""
        network = ipaddress.ip_network(cidr)
        return any(
            network.version == space.version and network.subnet_of(space)  # type: ignore[arg-type]
            for space in self.networks()
        )


@cache
def _networks(ranges: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(cidr) for cidr in ranges)


class RegionList(_Data):
    regions: list[str]
    source: str
    date: str


class Regions(_Data):
    priced: RegionList
    aws: RegionList


class Staff(_Data):
    engineer_usd_per_month: Figure
    pool_fte: Figure


class Piece(_Data):
    resource: str
    count: int
    what: str


class ConnectionPiece(_Data):
    resource: str
    # "subnet": one resource whose units are the consumer VPC's subnets (an interface endpoint's
    # network interfaces); "vpc": one resource a consumer VPC
    per: Literal["subnet", "vpc"]
    what: str


class Operations(_Data):
    staff: Staff
    # self_hosted_pool, api_key, egress_network, private_link -> the resources each adds
    pieces: dict[str, list[Piece]]
    # self_hosted_pool, private_link, egress -> what the stack adds in each consumer VPC of this
    # account that a service of that kind reaches (connections, priced per service and VPC)
    connections: dict[str, list[ConnectionPiece]] = Field(default_factory=dict)


class FlagValues(_Data):
    """What the serving release accepts for one flag: a list of choices or a number's range,
    or none at all (`switch`: a flag on its own, followed by no value)."""

    choices: list[str] | None = None
    type: Literal["int", "float", "switch"] | None = None
    minimum: float | None = None
    exclusive_minimum: bool = False
    maximum: float | None = None
    source: str


class ReleaseFlags(_Data):
    names: list[str]
    source: str
    date: str


class ModelFlags(_Data):
    flags: list[str]
    source: str


class ServingRelease(_Data):
    version: str
    image: str
    tag: str
    commit: str
    source: str
    date: str


class ServingEnvironment(_Data):
    """vllm.yaml `environment`: variables every serving process runs with, on both targets."""

    values: dict[str, str]
    source: str
    date: str


class Serving(_Data):
    """vllm.yaml: the pinned vLLM release, the flags it defines and what each model needs."""

    release: ServingRelease
    flags: ReleaseFlags
    environment: ServingEnvironment
    values: dict[str, FlagValues]
    max_model_len_margin: Figure
    models: dict[str, ModelFlags]


class ClusterAssumption(_Data):
    """What a Kubernetes cluster must provide for a pool's technical perimeter that the stack
    cannot make or check (kubernetes.yaml)."""

    id: str
    text: str
    source: str
    date: str


class NodeServer(_Data):
    """A GPU node's CPUs and memory, by the GPU it holds and how many (kubernetes.yaml)."""

    gpus: int
    cpus: Figure
    memory_gib: Figure


class ReserveTier(_Data):
    """A tier of the kubelet's reserve: `share` of the next `size` CPUs or GiB (None: the rest)."""

    size: float | None
    share: float


class KubeletReserve(_Data):
    source: str
    date: str
    cpu_tiers: list[ReserveTier]
    memory_gib_tiers: list[ReserveTier]
    eviction_mib: float

    @field_validator("date", mode="before")
    @classmethod
    def _date_text(cls, value: Any) -> str:
        return str(value)


class DaemonSetHeadroom(_Data):
    cpus: Figure
    memory_gib: Figure


class NodeResources(_Data):
    """What a cluster pool's pod requests besides GPUs is sized from (kubernetes.yaml
    node_resources): a node's CPUs and memory by GPU, the kubelet's reserve, the DaemonSets'
    headroom and vLLM's shared memory."""

    servers: dict[str, NodeServer]
    kubelet_reserve: KubeletReserve
    daemonset_headroom: DaemonSetHeadroom
    shm_gib: Figure

    def server(self, gpu: str, gpus: int) -> NodeServer | None:
        """The catalog's node of these GPUs, or None where it has none."""
        server = self.servers.get(gpu)
        return server if server is not None and server.gpus == gpus else None


class Catalog(_Data):
    instances: dict[str, Instance]
    pricing: PricingData
    precisions: dict[str, Precision]
    models: dict[str, OpenModel]
    providers: dict[str, Provider]
    api_models: dict[str, ApiModel]
    price_overrides: list[PriceOverride]
    tasks: dict[Task, TaskInfo]
    data_classes: dict[DataClass, DataClassInfo]
    defaults: Defaults
    operations: Operations
    private_consumers: PrivateConsumers
    regions: Regions
    serving: Serving
    optimizer: OptimizerSettings
    cluster_assumptions: list[ClusterAssumption]
    node_resources: NodeResources
    # What a site's internal load balancer must do (kubernetes.yaml), stated where a site has one.
    load_balancer_assumptions: list[ClusterAssumption]
    # What admitting its health checks' ranges takes (kubernetes.yaml), where a site gives them.
    health_check_assumptions: list[ClusterAssumption]
    # Every model id (open and API) -> its context window, read once when the catalog loads.
    context_windows: dict[str, Figure]
    # The AWS list prices of the resource types the stacks create (aws_prices.yaml: resources).
    aws_prices: dict[str, dict[str, Any]]
    # The directory the catalog was read from (load_catalog sets it): what plan.catalog_sha256
    # hashes, and where the throughput model's data of this catalog is read.
    directory: Path

    def override_for(self, ref: PriceRef) -> PriceOverride | None:
        for override in self.price_overrides:
            if override.price_ref == ref:
                return override
        return None

    def server_price(self, gpu: str, gpus: int) -> Figure | None:
        """The price of a server with these GPUs (pricing.yaml servers, by the instance type
        that has that hardware), or None where the catalog has none."""
        for instance_type, instance in sorted(self.instances.items()):
            server = self.pricing.hardware.servers.get(instance_type)
            if server is not None and (instance.gpu, instance.gpus) == (gpu, gpus):
                return server.capital_usd
        return None
