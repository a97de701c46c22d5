"""Self-hosted candidates: a model on an instance type, what one scaling unit costs and serves
whatever the workload's volume.
"""

from __future__ import annotations

from dataclasses import dataclass

from planner.catalog import Catalog
from planner.catalog.vocabulary import Tier
from planner.costing import costs
from planner.costing.costs import Capacity
from planner.planfile.schema import MemoryFit


@dataclass(frozen=True)
class SelfHostedCandidate:
    """A model on an instance type: what one scaling unit costs and serves (volume-independent)."""

    model_id: str
    instance_type: str
    # The unit at the settings' request shape and per-user speed (what a workload without its
    # own is served with); a workload's own is the best of `units` for its shape (shape_limits).
    capacity: Capacity
    # Every tensor-parallel group the weights fit (costs.unit_options): the same node price.
    units: tuple[Capacity, ...]
    unit_monthly_usd: float
    # One node an hour at the plan's purchase option (what costs.nodes_monthly_usd prices).
    node_hourly_usd: float
    # Paid once per pool whatever its size: staff and network pieces (costs.pool_fixed_cost).
    fixed_usd: float
    # At the favourable and the unfavourable ends of the purchase rate's range (costs.node_rate),
    # a node-month in whole cents as costs.nodes_monthly_usd prices it.
    range_unit_usd: tuple[float, float]
    figure_ids: tuple[str, ...]
    # capacity's memory fit; a workload's own is its shape's (ShapeLimits.memory_fit).
    memory_fit: MemoryFit
    option_id: str
    tier: Tier
    # Volume-independent parts of the option's formula, formatted once.
    cost_text: str

    def nodes_monthly_usd(self, catalog: Catalog, nodes: int) -> float:
        return costs.nodes_monthly_usd(
            self.node_hourly_usd, catalog.pricing.hours_per_month.value, nodes
        )


# A request shape as the throughput model takes it: input and output tokens of one request, the
# share of the input that is a cached prefix, and the output tokens a second each user reads.
Shape = tuple[int, int, float, float]


@dataclass(frozen=True, slots=True)
class ShapeLimits:
    """What a unit of a candidate serves at one request shape, at the expected settings and at
    both ends of their ranges (favourable first), with the formula's texts formatted once: the
    unit is the tensor-parallel group that serves this shape best (costs.best_unit)."""

    capacity: Capacity
    memory_fit: MemoryFit
    kv_ceiling_text: str
    throughput: costs.UnitThroughput
    limits: costs.UnitLimits
    range_limits: tuple[costs.UnitLimits, costs.UnitLimits]
    output_text: str
    total_text: str
    peak_text: str


def memory_fit_of(capacity: Capacity) -> MemoryFit:
    fit = capacity.fit
    return MemoryFit(
        precision=fit.precision,
        weights_gb=round(fit.weights_gb, 1),
        gpu_memory_gb=fit.gpu_memory_gb,
        gpus_per_replica=fit.gpus_per_replica,
        tensor_parallel=fit.tensor_parallel,
        pipeline_parallel=fit.pipeline_parallel,
        replicas_per_node=fit.replicas_per_node,
        fits_one_node=fit.nodes_per_replica == 1,
        note=fit.note,
    )
