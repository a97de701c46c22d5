"""The deployment-target seam (issue 15): planning asks the targets for candidates and prices,
and never names one; the stack builds a pool with its target's builder. A second target
registered here (a cluster of owned nodes priced flat, nothing like EC2) must flow through the
planning without any planning code knowing it."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from planner import costing, formulas
from planner.catalog import Catalog, default_catalog
from planner.catalog.vocabulary import Ownership, PaidAs, Pricing
from planner.costing import FixedCost, NodeRate, PurchaseCost, Settings
from planner.planning import candidates as candidates_module
from planner.planning import context as context_module
from planner.targets import TARGET_KINDS, Cited, Offer, Target, pool_targets
from planner.targets.aws_ec2 import AWS_EC2
from stacks.targets import POOL_BUILDERS
from tests.helpers import plan_text
from tests.test_optimize import CONTEXT

RATE = formulas.PublishedBasis("rack rate", 20.0, "2026-12-02")


@dataclass(frozen=True)
class OwnedRack:
    """A test target: owned 8x H100 servers at a flat 20 USD a node-hour, 1,000 USD a pool."""

    kind: str = "rack"
    name: str = "rack1"
    reached_from_outside: bool = True
    reached_by_range: bool = True
    max_nodes: int | None = None

    def offers(self, catalog: Catalog, settings: Settings) -> list[Offer]:
        return [Offer(self, "rack-h100", catalog.instances["p5.48xlarge"])]

    def purchase_label(self, pricing: Pricing) -> PaidAs:
        return Ownership.owned

    def node_rate(self, catalog: Catalog, offer: Offer, pricing: Pricing) -> NodeRate:
        return NodeRate(20.0, 20.0, 20.0, True, RATE)

    def price_figures(self, catalog: Catalog, offer: Offer, pricing: Pricing) -> list[Cited]:
        return [Cited("rack.usd_per_node_hour", 20.0, "USD/hour", "test rack", "2026-12-02")]

    def memory_figure(self, catalog: Catalog, offer: Offer) -> Cited:
        return Cited("rack.gpu_memory_gb", 80.0, "GB per GPU", "test rack", "2026-12-02")

    def pool_fixed_cost(self, catalog: Catalog, settings: Settings) -> FixedCost:
        return FixedCost(
            1000.0, formulas.PoolFixedTerms(0.5, 2000.0, 1000.0, formulas.PiecesTerms((), 0.0))
        )

    def purchase_costs(
        self, catalog: Catalog, offer: Offer, nodes: int, horizon_months: float | None
    ) -> list[PurchaseCost]:
        monthly = nodes * 20.0 * 730
        terms = formulas.RentedNodesTerms(nodes, 20.0, RATE, 730, monthly)
        return [PurchaseCost("owned", monthly, terms, False)]


WORKLOADS = """
organization: acme
region: us-east-1
workloads:
  - name: notes
    task: summarization
    data: regulated
    monthly_tokens: {input: 6B, output: 1.2B}
    consumers: [{cidr: 10.50.0.0/16}]
"""


def test_every_target_has_a_stack_builder() -> None:
    assert set(TARGET_KINDS) == set(POOL_BUILDERS) == {"aws", "kubernetes"}
    rack: Target = OwnedRack()  # the protocol is what a target implements (mypy checks it)
    assert rack.kind == "rack"


def test_aws_ec2_offers_the_file_s_instance_types_and_prices_them_as_costing_does() -> None:
    catalog = default_catalog()
    # The settings of the optimizer's tests: which figures they hold does not matter here.
    settings = CONTEXT.settings
    offers = AWS_EC2.offers(catalog, settings)
    assert [o.node_type for o in offers] == sorted(catalog.instances)
    assert pool_targets(settings) == [AWS_EC2]
    chosen = replace(settings, instance_types=("p5en.48xlarge",))
    assert [o.node_type for o in AWS_EC2.offers(catalog, chosen)] == ["p5en.48xlarge"]
    for offer in offers:
        for pricing in Pricing:
            assert AWS_EC2.node_rate(catalog, offer, pricing) == costing.node_rate(
                catalog, offer.instance, pricing
            )
        cited = AWS_EC2.price_figures(catalog, offer, Pricing.savings_1yr)
        assert cited[0].key == f"instance.{offer.node_type}.on_demand_usd_per_hour"
        assert cited[-1].key == "pricing.hours_per_month"


def test_a_second_target_flows_through_planning_without_planning_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    catalog = default_catalog()
    baseline = plan_text(WORKLOADS, catalog)
    assert [p.instance_type for p in baseline.pools] != ["rack-h100"]

    rack = OwnedRack()
    both = lambda settings: [AWS_EC2, rack]  # noqa: E731
    monkeypatch.setattr(candidates_module, "pool_targets", both)
    monkeypatch.setattr(context_module, "pool_targets", both)
    plan = plan_text(WORKLOADS, catalog)

    # The rack's flat price beats EC2's on-demand: the pool is placed there, priced by it.
    (pool,) = plan.pools
    assert pool.instance_type == "rack-h100"
    assert [(p.option, p.monthly_cost_usd) for p in pool.purchase_options] == [
        ("owned", pool.nodes * 20.0 * 730)
    ]
    assert pool.monthly_cost_usd == pytest.approx(pool.nodes * 20.0 * 730 + 1000.0, abs=0.01)
    economics = plan.workloads[0].answers.volume_economics
    chosen = next(o for o in economics.options if o.id == economics.chosen)
    assert chosen.id.endswith("/rack-h100")
    assert "operations 0.5 engineer x 2,000 USD = 1,000.00 USD" in chosen.formula
    assert "published rack rate 20 USD/h (2026-12-02)" in chosen.formula
    assert {"rack.usd_per_node_hour", "rack.gpu_memory_gb"} <= set(chosen.figures)
    # EC2's candidates are still priced beside it.
    assert any(o.instance_type == "p5.48xlarge" for o in economics.options)


def test_every_target_kind_has_a_network_model_for_verify() -> None:
    from planner.verification.verdicts import NETWORK_MODELS

    assert set(TARGET_KINDS) <= set(NETWORK_MODELS)


def test_a_second_network_model_serves_its_pools_in_verify(monkeypatch: pytest.MonkeyPatch) -> None:
    """verify composes the network models of every target: a model registered beside AWS's
    (here a test one that holds every pool of the plan, on a graph with no AWS network) gives
    the networks of those pools and proves their workloads' ways in, so none is reported as a
    pool with no network or a workload no network serves."""
    from planner.graph.resources import Graph
    from planner.verification import verdicts
    from planner.verification.expectations import Expectations
    from planner.verification.registry import Subject, WorkloadVerdict
    from planner.verification.run import verify

    catalog = default_catalog()
    plan = plan_text(WORKLOADS, catalog)
    expect = Expectations.of(plan, catalog)

    @dataclass(frozen=True)
    class Racks:
        network: object
        kind: str = "rack"

        def subjects(self, expect: Expectations) -> list[Subject]:
            return [
                Subject("pool", f"pool {pool}", perimeter, list(members), blocks=["racked"])
                for pool, (perimeter, members, _) in sorted(expect.pools.items())
            ]

        def served_elsewhere(
            self, subjects: list[Subject], workload: str, expect: Expectations
        ) -> Subject | None:
            return None

        def prove_ways_in(
            self, expect: Expectations, verdict: WorkloadVerdict, subjects: list[Subject]
        ) -> None:
            verdict.ways_in.append(f"rack path to {verdict.name}")

    empty = Graph.of([])
    alone = verify(empty, expect)
    assert [f.message for f in alone.failures() if f.resource == "pool notes-pool"] == [
        "the plan's pool has no network in the graph: nothing to verify it against"
    ]
    monkeypatch.setitem(verdicts.NETWORK_MODELS, "rack", Racks)
    report = verify(empty, expect)
    [pool] = [s for s in report.subjects if s.name == "pool notes-pool"]
    assert pool.failures == [] and pool.blocks == ["racked"]
    [notes] = [w for w in report.workloads if w.name == "notes"]
    assert (notes.served_by, notes.ways_in) == ("pool notes-pool", ["rack path to notes"])
