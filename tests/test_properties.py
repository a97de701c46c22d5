"""Rules that hold for every workload, checked on generated organizations."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.catalog import Catalog, default_catalog
from planner.catalog.vocabulary import Availability, DataClass, Task, Tier
from planner.inputs.loader import LoadedWorkloads, parse_workloads
from planner.planfile import Plan
from planner.planning.build import build_plan
from planner.render.plan_files import plan_json, plan_markdown
from tests.helpers import plan_text

CATALOG: Catalog = default_catalog()

volumes = st.integers(min_value=0, max_value=200_000_000_000)


@st.composite
def workload(draw: st.DrawFn, name: str) -> dict[str, object]:
    item: dict[str, object] = {
        "name": name,
        "task": draw(st.sampled_from(list(Task))).value,
        "data": draw(st.sampled_from(list(DataClass))).value,
        "monthly_tokens": {"input": draw(volumes), "output": draw(volumes) // 4},
        "consumers": ["10.0.0.0/16"],
        "availability": draw(st.sampled_from(list(Availability))).value,
    }
    if draw(st.booleans()):
        item["quality"] = draw(st.sampled_from(list(Tier))).value
    if draw(st.booleans()):
        item["peak_tokens_per_second"] = draw(st.integers(min_value=1, max_value=200_000))
    if draw(st.booleans()):
        item["request"] = {
            "input_tokens": draw(st.integers(min_value=1, max_value=400_000)),
            "output_tokens": draw(st.integers(min_value=1, max_value=8_000)),
        }
    return item


@st.composite
def organization(draw: st.DrawFn) -> str:
    count = draw(st.integers(min_value=1, max_value=4))
    doc = {
        "organization": "acme",
        "region": "us-east-1",
        "assumptions": {"pricing": draw(st.sampled_from(["on_demand", "spot", "savings_3yr"]))},
        "workloads": [draw(workload(f"w{i}")) for i in range(count)],
    }
    return yaml.safe_dump(doc, sort_keys=False)


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(organization())
def test_regulated_data_never_lands_on_a_cloud_api(text: str) -> None:
    plan = plan_text(text, CATALOG)
    for w in plan.workloads:
        if w.data == "regulated":
            assert w.placement == "self_hosted"
            assert all(o.placement == "self_hosted" for o in w.answers.volume_economics.options)
        if w.answers.data_sensitivity.perimeter == "private_link" and w.provider is not None:
            assert CATALOG.providers[w.provider].private_link


@SETTINGS
@given(organization())
def test_every_dollar_is_allocated(text: str) -> None:
    plan = plan_text(text, CATALOG)
    cents = sum(round(w.monthly_cost_usd * 100) for w in plan.workloads)
    assert round(plan.totals.monthly_cost_usd * 100) == cents
    pools = sum(round(p.monthly_cost_usd * 100) for p in plan.pools)
    assert round(plan.totals.self_hosted_usd * 100) == pools


@SETTINGS
@given(organization())
def test_outputs_are_deterministic(text: str) -> None:
    first, second = plan_text(text, CATALOG), plan_text(text, CATALOG)
    assert plan_json(first) == plan_json(second)
    assert plan_markdown(first) == plan_markdown(second)


@SETTINGS
@given(workload("w"), st.floats(min_value=1.0, max_value=50.0))
def test_cost_never_falls_when_volume_rises(item: dict[str, object], factor: float) -> None:
    def cost(scale: float) -> float:
        tokens = item["monthly_tokens"]
        assert isinstance(tokens, dict)
        scaled = {key: int(value * scale) for key, value in tokens.items()}
        doc = {"organization": "a", "region": "us-east-1", "workloads": [
            {**item, "monthly_tokens": scaled}
        ]}  # fmt: skip
        return plan_text(yaml.safe_dump(doc), CATALOG).totals.monthly_cost_usd

    assert cost(factor) >= cost(1.0)


def plan_with(text: str, strategy: str) -> Plan:
    spec = parse_workloads(text, "workloads.yaml", CATALOG)
    loaded = LoadedWorkloads(Path("workloads.yaml"), spec, "0" * 64)
    return build_plan(loaded, CATALOG, "dev", "workloads.yaml", strategy)  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(organization())
def test_sharing_never_costs_more(text: str) -> None:
    alone = plan_with(text, "per-workload")
    shared = plan_with(text, "optimal")
    # The optimizer compares exact costs; the plan rounds each node, pool and workload to the
    # cent, so equal-cost choices (one p5.48xlarge or eight p5.4xlarge at an eighth of its price)
    # can differ by a cent per rounded part.
    slack = 0.01 * (len(alone.workloads) + len(alone.pools) + len(shared.pools) + 1)
    assert shared.totals.monthly_cost_usd <= alone.totals.monthly_cost_usd + slack
    assert shared.totals.per_workload_usd == alone.totals.monthly_cost_usd
    assert shared.totals.saved_by_sharing_usd == round(
        alone.totals.monthly_cost_usd - shared.totals.monthly_cost_usd, 2
    )
    # No pool member pays more for sharing than in the per-workload plan, and every dollar is
    # allocated. (A workload left on an API can pay a larger share of its provider's access
    # when others leave it for a pool; the total still falls.)
    by_name = {w.name: w for w in alone.workloads}
    for workload in shared.workloads:
        if workload.pool is not None:
            assert workload.monthly_cost_usd <= by_name[workload.name].monthly_cost_usd + slack
        if workload.data == "regulated":
            assert workload.placement == "self_hosted"
    cents = sum(round(w.monthly_cost_usd * 100) for w in shared.workloads)
    assert round(shared.totals.monthly_cost_usd * 100) == cents
    for pool in shared.pools:
        members = [w for w in shared.workloads if w.pool == pool.name]
        assert sorted(w.name for w in members) == sorted(pool.workloads)
        assert round(sum(w.monthly_cost_usd for w in members), 2) == pool.monthly_cost_usd
        # The range holds the expected cost, and the members' ranges split the pool's.
        assert pool.monthly_cost_low_usd <= pool.monthly_cost_usd <= pool.monthly_cost_high_usd
        low = sum(w.monthly_cost_low_usd for w in members)
        assert abs(low - pool.monthly_cost_low_usd) <= 0.01 * len(members)


@SETTINGS
@given(organization())
def test_every_cost_lies_within_its_range(text: str) -> None:
    plan = plan_text(text, CATALOG)
    for w in plan.workloads:
        assert w.monthly_cost_low_usd <= w.monthly_cost_usd + 0.01
        assert w.monthly_cost_usd <= w.monthly_cost_high_usd + 0.01
    for p in plan.pools:
        assert p.monthly_cost_low_usd <= p.monthly_cost_usd <= p.monthly_cost_high_usd
    totals = plan.totals
    assert totals.monthly_cost_low_usd <= totals.monthly_cost_usd + 0.01
    assert totals.monthly_cost_usd <= totals.monthly_cost_high_usd + 0.01


def test_a_published_rate_without_a_range_prices_the_range_as_the_cost() -> None:
    """Hypothesis found it: a published 3-year rate has no range, and a node-month in whole
    cents (2.97216 x 730 = 2,169.6768 -> 2,169.68) put the pool's cost a cent above a high end
    computed without that rounding. With the node count pinned (availability high, no load),
    low, cost and high are now the same cents."""
    text = (
        "organization: acme\nregion: us-east-1\nassumptions:\n  pricing: savings_3yr\n"
        "workloads:\n- name: w0\n  task: classification\n  data: regulated\n"
        "  monthly_tokens:\n    input: 0\n    output: 0\n  consumers:\n  - 10.0.0.0/16\n"
        "  availability: high\n"
    )
    plan = plan_text(text, CATALOG)
    [pool] = plan.pools
    assert pool.instance_type == "p5.4xlarge" and pool.nodes == 2
    assert pool.monthly_cost_low_usd == pool.monthly_cost_usd == pool.monthly_cost_high_usd
    [w] = plan.workloads
    assert w.monthly_cost_low_usd == w.monthly_cost_usd == w.monthly_cost_high_usd


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workload("w"), st.integers(min_value=1, max_value=2_000))
def test_more_requests_in_flight_never_cost_less(item: dict[str, object], concurrency: int) -> None:
    """The KV cache only adds load: raising a workload's concurrency never lowers its cost."""
    item = {**item, "data": "regulated"}  # self-hosted only, so the KV cache is priced

    def cost(flying: int) -> float:
        doc = {"organization": "acme", "region": "us-east-1",
               "workloads": [{**item, "concurrency": flying}]}  # fmt: skip
        return plan_text(yaml.safe_dump(doc), CATALOG).totals.monthly_cost_usd

    assert cost(concurrency) <= cost(concurrency * 10) + 0.01
