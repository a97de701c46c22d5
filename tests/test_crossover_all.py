"""Every crossover, not only the first: the API can win again above it, a node at a time; the
same self-hosted option and the same APIs in `planner crossover` and in the plan."""

from __future__ import annotations

import hashlib
import math
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner import costs
from planner.catalog import Catalog
from planner.cli import main
from planner.crossover import reports
from planner.loader import LoadedWorkloads, parse_workloads
from planner.model import Plan
from planner.plan import build_plan
from planner.render import plan_markdown

GENEROUS = "assumptions:\n  pricing: savings_1yr\n"


def workload(name: str, data: str, tokens: str, task: str = "chat") -> str:
    return (
        f"  - name: {name}\n    task: {task}\n    data: {data}\n    monthly_tokens: {tokens}\n"
        '    consumers: [{cidr: 10.0.0.0/16, account: "111122223333"}]\n'
    )


# A big internal FAQ self-hosts (Llama 3.1 8B), a smaller confidential one does not on its own;
# both share a pool in the optimal plan.
TEXT = (
    "organization: acme\nregion: us-east-1\n"
    + GENEROUS
    + "workloads:\n"
    + workload("big", "internal", "{input: 150B, output: 30B}", "faq")
    + workload("small", "confidential", "{input: 20B, output: 4B}", "faq")
)


def loaded(catalog: Catalog, text: str = TEXT) -> LoadedWorkloads:
    spec = parse_workloads(text, "workloads.yaml", catalog)
    return LoadedWorkloads(Path("workloads.yaml"), spec, hashlib.sha256(text.encode()).hexdigest())


def plan(catalog: Catalog, strategy: str = "per-workload") -> Plan:
    return build_plan(loaded(catalog), catalog, "dev", "workloads.yaml", strategy)  # type: ignore[arg-type]


def cost_gap(a: float, c: float, cap: float, m: int, fa: float, fs: float, v: float) -> float:
    """Self-hosted minus API at volume v."""
    return fs + c * max(m, math.ceil(v / cap - costs.EPSILON)) - (fa + a * v)


@settings(max_examples=300, deadline=None)
@given(
    a=st.floats(0.5, 2.0),
    ratio=st.floats(0.7, 1.3),
    cap=st.floats(1.0, 10.0),
    m=st.integers(1, 3),
    fa=st.floats(0.0, 20.0),
    fs=st.floats(0.0, 60.0),
)
def test_each_crossing_changes_the_cheaper_side(
    a: float, ratio: float, cap: float, m: int, fa: float, fs: float
) -> None:
    """Between two crossings the side each names is the cheaper one (checked in the middle of
    every stretch); the first is break_even_tokens; they alternate."""
    c = a * cap * ratio
    top = 60.0
    found, cut = costs.crossings(a, c, cap, m, top, fa, fs, limit=1000)
    assert not cut
    first = costs.break_even_tokens(a, c, cap, m, fa, fs)
    if found:
        assert first == pytest.approx(found[0].monthly_tokens)
        assert found[0].cheaper == "self_hosted"
    else:
        assert first is None or first > top
    sides = [x.cheaper for x in found]
    assert all(x != y for x, y in pairwise(sides))
    edges = [0.0, *[x.monthly_tokens for x in found], top]
    expected = ["cloud_api", *sides]
    for (low, high), side in zip(pairwise(edges), expected, strict=True):
        if high - low < 1e-6:
            continue  # a tie at one volume
        middle = (low + high) / 2
        gap = cost_gap(a, c, cap, m, fa, fs, middle)
        assert (gap <= 1e-9) == (side == "self_hosted"), (low, high, side, gap)


def test_the_api_wins_again_above_the_first_crossover() -> None:
    """A unit of 10 tokens costs 9, the API 1 a token, the pool 14.5 fixed: from the 15th unit
    the API has paid for the pool inside each unit's stretch, but every further node hands it the
    lead again, until its 1 a unit has paid back the fixed 14.5 (the 25th)."""
    found, cut = costs.crossings(1.0, 9.0, 10.0, 1, 200.0, 0.0, 14.5)
    assert not cut
    assert [(x.monthly_tokens, x.cheaper) for x in found] == [
        (149.5, "self_hosted"), (150.0, "cloud_api"), (158.5, "self_hosted"),
        (160.0, "cloud_api"), (167.5, "self_hosted"), (170.0, "cloud_api"),
        (176.5, "self_hosted"), (180.0, "cloud_api"), (185.5, "self_hosted"),
        (190.0, "cloud_api"), (194.5, "self_hosted"), (200.0, "cloud_api"),
    ]  # fmt: skip
    assert costs.break_even_tokens(1.0, 9.0, 10.0, 1, 0.0, 14.5) == 149.5
    # Up to just below 200 the last change is at 194.5; at 200 itself the API takes the lead
    # right above it, a crossing at the end of the range that is listed (it was not).
    below, _ = costs.crossings(1.0, 9.0, 10.0, 1, 199.9, 0.0, 14.5)
    assert below[-1] == costs.Crossing(194.5, "self_hosted")
    # From the 25th unit on self-hosting stays cheaper: nothing listed past it.
    later, _ = costs.crossings(1.0, 9.0, 10.0, 1, 1000.0, 0.0, 14.5)
    assert later[-1] == costs.Crossing(230.5, "self_hosted")


def test_a_long_alternation_is_cut_short_and_says_so() -> None:
    found, cut = costs.crossings(1.0, 9.999, 10.0, 1, 1e9, 0.0, 15.0, limit=5)
    assert cut and len(found) <= 5


def test_crossover_and_plan_compare_the_same_option_and_api(catalog: Catalog) -> None:
    """Per workload, `planner crossover` and the plan's break-even compare the same self-hosted
    option against the same API, with the same crossings at the plan's purchase option; a pool of
    one workload lists the same crossings as the command, for every purchase option."""
    alone = plan(catalog)
    found = {r.workload: r for r in reports(loaded(catalog), catalog, None)}
    assert set(found) == {"big", "small"}
    for w in alone.workloads:
        report, break_even = found[w.name], w.answers.volume_economics.break_even
        assert break_even is not None
        assert break_even.self_hosted_option == report.self_hosted
        [row] = [r for r in report.rows if r.purchase == "savings_1yr"]
        assert break_even.api_option == f"cloud_api/{row.api_id}"
        assert [(c.monthly_tokens, c.cheaper) for c in break_even.crossings] == [
            (round(c.monthly_tokens), c.placement) for c in row.crossings
        ]
        assert len(break_even.crossings) >= 3  # the API wins again above the first crossover
        assert "is cheaper again from" in break_even.explanation
    [pool] = [p for p in alone.pools if p.workloads == ["big"]]
    assert {
        (c.api_option, c.purchase): [(x.monthly_tokens, x.cheaper) for x in c.crossings]
        for c in pool.crossover
    } == {
        (f"cloud_api/{r.api_id}", r.purchase): [
            (round(x.monthly_tokens), x.placement) for x in r.crossings
        ]
        for r in found["big"].rows
    }


def test_only_apis_the_workloads_may_use_are_compared(catalog: Catalog) -> None:
    """A confidential workload is compared with the APIs its perimeter admits, not with a closed
    frontier API it may not use; a shared pool with the APIs all of its members may use."""
    alone = plan(catalog)
    allowed = {
        w.name: {o.model for o in w.answers.volume_economics.options if o.placement == "cloud_api"}
        for w in alone.workloads
    }
    assert allowed["small"] < allowed["big"]  # the confidential one may use fewer
    for report in reports(loaded(catalog), catalog, None):
        assert report.apis and {a.api_id for a in report.apis} <= allowed[report.workload]
    shared = plan(catalog, "optimal")
    [pool] = [p for p in shared.pools if len(p.workloads) == 2]
    compared = {c.api_option.removeprefix("cloud_api/") for c in pool.crossover}
    assert compared and compared <= allowed["small"] & allowed["big"]


def test_plan_md_lists_the_later_crossings(catalog: Catalog) -> None:
    text = plan_markdown(plan(catalog))
    assert "again from" in text and "is cheaper again from" in text
    # Under each workload's chart: its purchase option, every crossing and its own volume.
    assert (
        "(savings_1yr); they cross at 69.9B tokens a month, again at 79.7B, again at 90.8B" in text
    )
    assert "this workload: 180B tokens a month." in text


def test_the_chart_draws_the_plans_purchase_option_and_the_volume(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "workloads.yaml").write_text(TEXT)
    assert main(["crossover", "workloads.yaml", "big", "--chart", "big.svg"]) == 0
    out = capsys.readouterr().out
    assert "savings_1yr" in out and "API from" in out
    svg = (project / "big.svg").read_text()
    # The plan buys savings_1yr: that staircase is drawn, no other purchase option's.
    assert "(savings_1yr)" in svg and "(on_demand)" not in svg
    # The workload's own volume is marked and named, with thousands separators on the axes.
    assert "this workload: 180,000M tokens a month" in svg
    assert "100,000" in svg


def test_published_spot_price_where_the_catalog_has_one(catalog: Catalog) -> None:
    """p5en.48xlarge has a published spot price: spot is that price plus the premium, with its
    observations as the range; the others keep the inferred multiplier, and the formulas say
    which."""
    from planner.workloads import Pricing

    h200 = catalog.instances["p5en.48xlarge"]
    spot = costs.node_rate(catalog, h200, Pricing.spot)
    assert spot.published and spot.usd_per_hour == pytest.approx(27.1958 * 1.15)
    assert (spot.low, spot.high) == (pytest.approx(27.1928 * 1.10), pytest.approx(27.1988 * 1.20))
    assert "published spot" in spot.basis
    h100 = costs.node_rate(catalog, catalog.instances["p5.48xlarge"], Pricing.spot)
    assert not h100.published and "inferred: no published rate" in h100.basis
    assert h100.usd_per_hour == pytest.approx(55.04 * 0.5175)
    formulas = {c.option: c.formula for c in costs.purchase_costs(catalog, "p5en.48xlarge", 2)}
    assert "published spot 27.2 USD/h" in formulas["spot"]
    assert "inferred: no published rate" in formulas["savings_3yr"]
    text = (
        "organization: acme\nregion: us-east-1\nassumptions:\n  pricing: spot\n"
        "  instance_types: [p5en.48xlarge]\nworkloads:\n"
        + workload("big", "internal", "{input: 150B, output: 30B}")
    )
    spot_plan = build_plan(loaded(catalog, text), catalog, "dev", "workloads.yaml")
    assert "instance.p5en.48xlarge.spot_usd_per_hour" in spot_plan.figures
    assert "pricing.spot.multiplier" not in spot_plan.figures


def test_published_one_year_rates_replace_the_multiplier(catalog: Catalog) -> None:
    """The P5-class types have a published 1-year commitment rate (instances.yaml, dated, with
    its source): savings_1yr prices a node at that rate with no range, the formula and the
    plan's figures say so; savings_3yr has none and keeps the inferred multiplier."""
    from planner.workloads import Pricing

    for name, rate in (
        ("p5.48xlarge", 38.14272),
        ("p5.4xlarge", 4.76784),
        ("p5en.48xlarge", 43.86413),
    ):
        instance = catalog.instances[name]
        committed = costs.node_rate(catalog, instance, Pricing.savings_1yr)
        assert committed.published and committed.usd_per_hour == rate
        assert committed.low == committed.high == rate
        assert "published 1-year rate" in committed.basis
        # The published rate sits below on-demand, as a commitment does.
        assert rate < instance.on_demand_usd_per_hour.value
        three = costs.node_rate(catalog, instance, Pricing.savings_3yr)
        assert not three.published and "inferred: no published rate" in three.basis
    formulas = {c.option: c.formula for c in costs.purchase_costs(catalog, "p5.48xlarge", 1)}
    assert "published 1-year rate 38.14 USD/h" in formulas["savings_1yr"]
    text = (
        "organization: acme\nregion: us-east-1\nassumptions:\n  pricing: savings_1yr\n"
        "  instance_types: [p5en.48xlarge]\nworkloads:\n"
        + workload("big", "regulated", "{input: 150B, output: 30B}")
    )
    committed_plan = build_plan(loaded(catalog, text), catalog, "dev", "workloads.yaml")
    assert committed_plan.pools
    assert "instance.p5en.48xlarge.savings_1yr_usd_per_hour" in committed_plan.figures
    assert "pricing.savings_1yr.multiplier" not in committed_plan.figures


def test_chart_axis_labels_have_separators_not_exponents(catalog: Catalog) -> None:
    """plan.md's chart labels its volumes in billions: three significant figures below 100,
    whole billions with thousands separators above (1,234, never %g's 1.23e+03), each quoted
    so mermaid does not split a label at its comma."""
    from planner.render import billions_label

    assert billions_label(58.5e9) == '"58.5"'
    assert billions_label(1_234.4e9) == '"1,234"'
    assert billions_label(0) == '"0"'
    text = "organization: acme\nregion: us-east-1\nworkloads:\n" + workload(
        "huge", "internal", "{input: 900B, output: 180B}"
    )
    markdown = plan_markdown(build_plan(loaded(catalog, text), catalog, "dev", "workloads.yaml"))
    axes = [line for line in markdown.splitlines() if line.strip().startswith("x-axis [")]
    assert axes and all("e+" not in line for line in axes)
    assert any('"1,' in line or '"2,' in line for line in axes)
