"""A Kubernetes cluster the organization runs (issue 16): the second deployment target. Its GPU
nodes are bought hardware, so a node costs the same whatever the purchase option: power (draw x
PUE x electricity x hours) and hosting a month, and, for a purchase, the capital over the
amortization horizon. Each term is the workloads file's (`sites[i].cost`) or the catalog's
default (pricing.yaml hardware), and the figures the plan cites say which.

A site offers one kind of node, named by the site: its GPUs (gpus.yaml, the throughput model's
figures) and how many a node has. Its nodes are joined by the cluster's network, so a model
too large for one node is served across several (a LeaderWorkerSet in the stack)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

from planner import costing, formulas
from planner.catalog import Catalog, Figure, Instance
from planner.catalog.vocabulary import Ownership, PaidAs, Pricing
from planner.costing import FixedCost, NodeRate, PurchaseCost, Settings
from planner.costing.throughput_data import throughput_data
from planner.inputs.sites import COST_FIGURES, KubernetesSite
from planner.targets.base import Cited, Offer

# Which value of a catalog figure a node's cost takes: its value, or an end of its range.
End = Literal["value", "low", "high"]
# The end of a figure that costs less the larger it is (the amortization horizon).
_INVERSE: dict[End, End] = {"value": "value", "low": "high", "high": "low"}


class Term(NamedTuple):
    """A figure of a node's cost: its value and where it comes from, cited by key."""

    value: float
    cited: Cited


@dataclass(frozen=True)
class NodeCost:
    """One node a month, the figures it is made of, and its formula's terms."""

    terms: tuple[Term, ...]
    basis: formulas.SiteNodeBasis

    @property
    def monthly_usd(self) -> float:
        return self.basis.monthly_usd


@dataclass(frozen=True)
class KubernetesTarget:
    site: KubernetesSite
    # The site's position in the workloads file (sites[i]), for the figures it sets.
    index: int
    # assumptions.amortization_months, where the file sets one.
    amortization_months: float | None = None
    kind: str = "kubernetes"

    @property
    def name(self) -> str:
        return self.site.name

    @property
    def reached_from_outside(self) -> bool:
        """Callers naming a VPC or an account ask for a PrivateLink endpoint, which a cluster
        does not make: never."""
        return False

    @property
    def reached_by_range(self) -> bool:
        """Callers given by their range are outside the cluster: reached through the site's
        internal load balancer (a Service of type LoadBalancer), so only where it has one."""
        return self.site.load_balancer is not None

    @property
    def reached_by_public_range(self) -> bool:
        """Its load balancer is internal (the site's annotations make it so: README, Cluster
        sites), reached from no public address: never."""
        return False

    @property
    def max_nodes(self) -> int:
        """The GPU nodes pools may use: every pool on the site shares them."""
        return self.site.nodes

    def _term(self, field: str, given: float | None, default: Figure, unit: str, end: End) -> Term:
        """The file's figure where it sets one (exact: no range), else the catalog's, at the
        range's end asked for where the catalog gives one (pricing.yaml `low` / `high`)."""
        key = f"site.{self.site.name}.{field}"
        if given is not None:
            where = f"set in the workloads file: sites[{self.index}].cost.{field}"
            return Term(given, Cited(key, given, unit, where, ""))
        at = getattr(default, end) if end != "value" else None
        value = default.value if at is None else at
        return Term(value, Cited(key, default.value, unit, default.source, default.date))

    def node_cost(self, catalog: Catalog, end: End = "value") -> NodeCost:
        """A node a month, at the catalog figures' values or at the low or high end of their
        ranges (the figures the file sets are exact)."""
        hardware, cost = catalog.pricing.hardware, self.site.cost
        hours = catalog.pricing.hours_per_month
        power = self._term(
            "power_kw_per_node", cost.power_kw_per_node, hardware.power_kw, "kW", end
        )
        pue = self._term("pue", cost.pue, hardware.pue, "PUE", end)
        kwh = self._term("usd_per_kwh", cost.usd_per_kwh, hardware.usd_per_kwh, "USD/kWh", end)
        hosting = self._term(
            "hosting_usd_per_node_month",
            cost.hosting_usd_per_node_month,
            hardware.hosting_usd_per_node_month,
            "USD a node-month",
            end,
        )
        hours_term = Term(
            hours.value,
            Cited("pricing.hours_per_month", hours.value, "hours", hours.source, hours.date),
        )
        terms = [power, pue, kwh, hours_term, hosting]
        capital_usd = horizon_months = None
        if not cost.owned:
            default = catalog.server_price(self.site.gpu, self.site.gpus_per_node)
            if cost.capital_usd_per_node is None and default is None:
                raise ValueError(f"site {self.site.name}: no capital figure (the loader checks)")
            capital = self._term(
                "capital_usd_per_node",
                cost.capital_usd_per_node,
                default or Figure(value=0, source="", date=""),
                "USD",
                end,
            )
            horizon = self._term(
                "amortization_months",
                cost.amortization_months,
                hardware.horizon_months,
                "months",
                # A longer horizon costs less a month: the cost's low end is its long end.
                _INVERSE[end],
            )
            if cost.amortization_months is None and self.amortization_months is not None:
                # The file's assumptions.amortization_months, cited as what set it.
                key = f"site.{self.site.name}.amortization_months"
                where = "set in the workloads file: assumptions.amortization_months"
                months = self.amortization_months
                horizon = Term(months, Cited(key, months, "months", where, ""))
            capital_usd, horizon_months = capital.value, horizon.value
            terms += [capital, horizon]
        basis = costing.site_node_basis(
            owned=cost.owned,
            power_kw=power.value,
            pue=pue.value,
            usd_per_kwh=kwh.value,
            hours=hours.value,
            hosting_usd=hosting.value,
            capital_usd=capital_usd,
            horizon_months=horizon_months,
        )
        return NodeCost(tuple(terms), basis)

    def from_file(self) -> list[str]:
        """The cost figures the workloads file sets for this site (sites[i].cost), in the
        order the plan lists them; the others are the catalog's (or the horizon the
        assumptions')."""
        cost = self.site.cost
        return [name for name in COST_FIGURES if getattr(cost, name) is not None]

    def offers(self, catalog: Catalog, settings: Settings) -> list[Offer]:
        gpu = throughput_data(catalog).gpus[self.site.gpu]
        hourly = self.node_cost(catalog).monthly_usd / catalog.pricing.hours_per_month.value
        instance = Instance(
            description=f"GPU node of site {self.site.name}: {self.site.gpus_per_node} x "
            f"{gpu.name}",
            gpu=self.site.gpu,
            gpus=self.site.gpus_per_node,
            gpu_memory_gb=gpu.memory_gb,
            efa=True,  # the cluster's network joins its nodes (a LeaderWorkerSet spans them)
            on_demand_usd_per_hour=Figure(
                value=hourly,
                source=f"site {self.site.name}: its node-month over the hours of a month",
                date="",
            ),
        )
        return [Offer(self, self.site.name, instance)]

    def purchase_label(self, pricing: Pricing) -> PaidAs:
        """Bought hardware: the plan's purchase option does not apply to it."""
        return Ownership.owned if self.site.cost.owned else Ownership.bought

    def node_rate(self, catalog: Catalog, offer: Offer, pricing: Pricing) -> NodeRate:
        """Bought hardware costs the same under every purchase option. Its range is the
        catalog figures' ranges (hosting, a server's price: pricing.yaml hardware) where the
        file leaves them to the catalog; a figure the file sets is exact."""
        hours = catalog.pricing.hours_per_month.value
        node = self.node_cost(catalog)
        low, high = (self.node_cost(catalog, end).monthly_usd / hours for end in ("low", "high"))
        return NodeRate(node.monthly_usd / hours, low, high, True, node.basis)

    def price_figures(self, catalog: Catalog, offer: Offer, pricing: Pricing) -> list[Cited]:
        return [term.cited for term in self.node_cost(catalog).terms]

    def memory_figure(self, catalog: Catalog, offer: Offer) -> Cited:
        memory = offer.instance.gpu_memory_gb
        return Cited(
            f"gpu.{self.site.gpu}.memory_gb", memory.value, "GB per GPU", memory.source, memory.date
        )

    def pool_fixed_cost(self, catalog: Catalog, settings: Settings) -> FixedCost:
        """A pool's share of an engineer; its network is the cluster's (NetworkPolicy, a
        Service), which costs nothing a month of its own."""
        return costing.pool_fixed_cost(catalog, settings, kinds=())

    def purchase_costs(
        self, catalog: Catalog, offer: Offer, nodes: int, horizon_months: float | None
    ) -> list[PurchaseCost]:
        node = self.node_cost(catalog)
        option = "owned" if self.site.cost.owned else "buy"
        monthly = round(nodes * round(node.monthly_usd, 2), 2)
        return [
            PurchaseCost(
                option, monthly, formulas.SiteNodesTerms(nodes, node.basis, monthly), False
            )
        ]
