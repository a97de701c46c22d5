"""A self-hosted pool of the plan: its nodes, how they follow from its members' loads, its cost
under every purchase option and where it starts to beat the APIs."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import Field

from planner.catalog.vocabulary import PaidAs, Perimeter
from planner.planfile.base import _Out
from planner.planfile.workload import Crossing


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
    # Where it runs: "aws" (EC2 in the plan's region) or a site of the workloads file.
    site: str = "aws"
    # Its kind of node: an EC2 instance type, or a cluster site's name.
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
    # What its nodes are paid as: on EC2 the plan's purchase option (on_demand, spot,
    # savings_1yr, savings_3yr); on a cluster site its bought hardware, owned or bought as the
    # site's cost says (no EC2 purchase option applies to it). The plan-file checks refuse an
    # EC2 option on a cluster pool and owned or bought on an EC2 pool.
    pricing: PaidAs = Field(
        description="What the pool's nodes are paid as: on EC2 (site aws) the plan's purchase "
        "option; on a cluster site (a site of the plan's sites) owned or bought, its hardware's "
        "(never an EC2 purchase option)."
    )
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
