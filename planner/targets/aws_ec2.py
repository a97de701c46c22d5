"""AWS EC2, the first deployment target: a node is an instance type of instances.yaml, priced
on demand, at a published spot or commitment rate, or at a purchase option's multiplier of on
demand (costing.node_rate); a pool pays a share of an engineer and its network and security
pieces (operations.yaml self_hosted_pool, priced from aws_prices.yaml: costing.pool_fixed_cost).
The stack's components are stacks/aws/ and verify's network model planner/verification/
aws_network.py."""

from __future__ import annotations

from dataclasses import dataclass

from planner import costing
from planner.catalog import Catalog
from planner.catalog.vocabulary import PaidAs, Pricing
from planner.costing import FixedCost, NodeRate, PurchaseCost, Settings
from planner.targets.base import Cited, Offer


@dataclass(frozen=True)
class AwsEc2:
    kind: str = "aws"
    # The site's name in the workloads file (`sites`), "aws" without one.
    name: str = "aws"
    # EC2 sells as many nodes as the account's quotas allow (checked at deploy: aws_limits.yaml).
    max_nodes: int | None = None
    # Callers in other VPCs and accounts reach a pool through its endpoint service.
    reached_from_outside: bool = True
    # Callers by range only are inside the stack's own network (the plan warns of them).
    reached_by_range: bool = True
    # A public range too: taken as inside the stack's network, like any range (warned of).
    reached_by_public_range: bool = True

    def offers(self, catalog: Catalog, settings: Settings) -> list[Offer]:
        """The instance types pools may use: the file's `assumptions.instance_types`, or every
        one of the catalog."""
        return [
            Offer(self, instance_type, catalog.instances[instance_type])
            for instance_type in sorted(settings.instance_types or catalog.instances)
        ]

    def purchase_label(self, pricing: Pricing) -> PaidAs:
        return pricing

    def node_rate(self, catalog: Catalog, offer: Offer, pricing: Pricing) -> NodeRate:
        return costing.node_rate(catalog, offer.instance, pricing)

    def price_figures(self, catalog: Catalog, offer: Offer, pricing: Pricing) -> list[Cited]:
        """The on-demand price, what the option's price rests on (a published rate of the
        instance type, a spot price with its premium, or the option's multiplier of on-demand:
        costing.published_rate) and the hours a month."""
        instance, name = offer.instance, offer.node_type
        on_demand = instance.on_demand_usd_per_hour
        found = [
            Cited(
                f"instance.{name}.on_demand_usd_per_hour",
                on_demand.value,
                "USD/hour",
                on_demand.source,
                on_demand.date,
            )
        ]
        option = catalog.pricing.options[pricing]
        published = costing.published_rate(catalog, instance, pricing)
        if published is not None:
            figure = published.figure
            found.append(
                Cited(
                    f"instance.{name}.{published.field}",
                    figure.value,
                    "USD/hour",
                    figure.source,
                    figure.date,
                )
            )
            if pricing is Pricing.spot and option.premium is not None:
                premium = option.premium
                found.append(
                    Cited(
                        "pricing.spot.premium",
                        premium.value,
                        "share of the spot price",
                        premium.source,
                        premium.date,
                    )
                )
        else:
            multiplier = option.multiplier
            found.append(
                Cited(
                    f"pricing.{pricing.value}.multiplier",
                    multiplier.value,
                    "x on-demand",
                    multiplier.source,
                    multiplier.date,
                )
            )
        hours = catalog.pricing.hours_per_month
        found.append(
            Cited("pricing.hours_per_month", hours.value, "hours", hours.source, hours.date)
        )
        return found

    def memory_figure(self, catalog: Catalog, offer: Offer) -> Cited:
        memory = offer.instance.gpu_memory_gb
        return Cited(
            f"instance.{offer.node_type}.gpu_memory_gb",
            memory.value,
            "GB per GPU",
            memory.source,
            memory.date,
        )

    def pool_fixed_cost(self, catalog: Catalog, settings: Settings) -> FixedCost:
        return costing.pool_fixed_cost(catalog, settings)

    def purchase_costs(
        self, catalog: Catalog, offer: Offer, nodes: int, horizon_months: float | None
    ) -> list[PurchaseCost]:
        return costing.purchase_costs(catalog, offer.node_type, nodes, horizon_months)


AWS_EC2 = AwsEc2()
