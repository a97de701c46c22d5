"""What a deployment target is: the kinds of node it offers, and how it prices them (the
Target protocol; planner/targets/__init__.py says how targets plug in)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol

from planner.catalog import Catalog, Instance
from planner.catalog.vocabulary import PaidAs, Pricing
from planner.costing import FixedCost, NodeRate, PurchaseCost, Settings


class Cited(NamedTuple):
    """A figure a price rests on, as the plan cites it (planning's FigureBook.add takes these)."""

    key: str
    value: float
    unit: str
    source: str
    date: str


class Target(Protocol):
    """What a deployment target provides the planning."""

    @property
    def kind(self) -> str:
        """What it is (its stack builder is registered under this: stacks/targets.py)."""
        ...

    @property
    def name(self) -> str:
        """Which one it is: "aws" for EC2 in the plan's region, a site's name."""
        ...

    @property
    def reached_from_outside(self) -> bool:
        """Its pools can be called from a VPC or an account the workloads file names (AWS: an
        endpoint service); False: a cluster, which makes no PrivateLink endpoint."""
        ...

    @property
    def reached_by_range(self) -> bool:
        """Its pools can be called by consumers the workloads file gives by their range only
        (AWS: callers inside the stack's own network; a cluster: callers outside it, through
        the site's internal load balancer, so only a site that states one)."""
        ...

    @property
    def reached_by_public_range(self) -> bool:
        """Its pools can be called by consumers given by a public range (one outside the
        catalog's private ranges, data_classes.yaml private_consumers); False: a cluster, whose
        load balancer is internal, reached from no address on the internet."""
        ...

    @property
    def max_nodes(self) -> int | None:
        """The nodes all its pools together may use (a cluster's); None: no such limit."""
        ...

    def offers(self, catalog: Catalog, settings: Settings) -> list[Offer]:
        """The kinds of node pools may use, in a stable order."""
        ...

    def node_rate(self, catalog: Catalog, offer: Offer, pricing: Pricing) -> NodeRate:
        """One node an hour under the purchase option, with its range and basis."""
        ...

    def purchase_label(self, pricing: Pricing) -> PaidAs:
        """What a node is paid as under the plan's purchase option, as its formula and the
        plan's pool and options name it (on_demand, spot, ...; a cluster's node: owned or
        bought, whatever the option)."""
        ...

    def price_figures(self, catalog: Catalog, offer: Offer, pricing: Pricing) -> list[Cited]:
        """The figures node_rate rests on under the option, and the hours a month."""
        ...

    def memory_figure(self, catalog: Catalog, offer: Offer) -> Cited:
        """The figure of a node's GPU memory that the memory fit reads."""
        ...

    def pool_fixed_cost(self, catalog: Catalog, settings: Settings) -> FixedCost:
        """What a pool on this target costs a month whatever its size."""
        ...

    def purchase_costs(
        self, catalog: Catalog, offer: Offer, nodes: int, horizon_months: float | None
    ) -> list[PurchaseCost]:
        """A pool's nodes under every purchase option (and any comparison-only ones)."""
        ...


@dataclass(frozen=True, slots=True)
class Offer:
    """A kind of node a target offers pools: the target, the node's name there (the option id's
    last part and the pool's `instance_type`) and its hardware (GPU, GPUs a node, memory), which
    the throughput model and the memory fit read."""

    target: Target
    node_type: str
    instance: Instance
