"""The formula writers (planner/formulas.py) and the amount formats (planner/fmt.py): each term
record gives the exact text plans have shown, and no module of planner/ writes a USD amount,
rate or share inline again (issue 15: one home for the text)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from planner import costing, fmt, formulas
from planner.catalog import default_catalog
from planner.catalog.vocabulary import Pricing

REPO = Path(__file__).resolve().parent.parent


def test_amount_formats() -> None:
    assert fmt.usd(1234.564) == "1,234.56 USD"
    assert fmt.usd_cents(0.0) == "0.00"
    assert fmt.usd_signed(12.5) == "+12.50 USD" and fmt.usd_signed(-3) == "-3.00 USD"
    assert fmt.usd_cents_signed(-1234.5) == "-1,234.50"
    assert fmt.usd_whole(285_000) == "285,000 USD" and fmt.usd_dollars(50_000.4) == "50,000"
    assert (
        fmt.usd_per_hour(98.3216) == "98.3216 USD/h" and fmt.usd_per_hour(1234.5) == "1,234.5 USD/h"
    )
    assert fmt.usd_per_mtok(15) == "15 USD/M" and fmt.usd_per_mtok(0.075) == "0.075 USD/M"
    assert fmt.tokens_count(128_000) == "128,000"
    assert fmt.tokens_per_second(1234.56) == "1,234.6"
    assert fmt.tokens_per_second(2673.554, 2) == "2,673.55"
    assert fmt.percent(0.1234) == "12.3%" and fmt.percent(0.05, 0) == "5%"
    assert fmt.percent(0.000123, 3) == "0.012%"
    assert fmt.usd_range(1.0, 1.004) == "" and fmt.usd_range(1, 2) == "1.00 USD to 2.00 USD"


@pytest.mark.parametrize("amount", [0.0, 0.005, 7.3, 1234.5, 98_765_432.109, -12.345])
def test_a_column_of_cents_aligns_as_before(amount: float) -> None:
    """`planner preview` right-aligns usd_cents in 12 characters: the bytes of the old format."""
    assert f"{fmt.usd_cents(amount):>12}" == f"{amount:>12,.2f}"


def test_fixed_pieces() -> None:
    pieces = formulas.PiecesTerms(
        (formulas.PiecePrice(32.85, "NAT gateway"), formulas.PiecePrice(1234.5, "endpoints")),
        1267.35,
    )
    assert formulas.pieces_formula(pieces) == (
        "32.85 (NAT gateway) + 1,234.50 (endpoints) = 1,267.35 USD"
    )
    nothing = formulas.PiecesTerms((), 0.0)
    assert formulas.fixed_formula(nothing) == "nothing of its own in this stack = 0.00 USD"
    pool = formulas.PoolFixedTerms(0.25, 16_000, 4000, pieces)
    assert formulas.fixed_formula(pool) == (
        "operations 0.25 engineer x 16,000 USD = 4,000.00 USD; network and security "
        "32.85 (NAT gateway) + 1,234.50 (endpoints) = 1,267.35 USD"
    )


def test_costing_returns_terms_and_its_formula_is_the_writers() -> None:
    catalog = default_catalog()
    fixed = costing.pool_fixed_cost(catalog)
    assert isinstance(fixed.terms, formulas.PoolFixedTerms)
    assert fixed.formula == formulas.pool_fixed_formula(fixed.terms)
    assert fixed.formula.startswith(f"operations {fixed.terms.fte:g} engineer x ")
    pieces = fixed.terms.pieces.pieces
    assert pieces and round(sum(p.monthly_usd for p in pieces), 2) == round(
        fixed.terms.pieces.total_usd, 2
    )
    rate = costing.node_rate(catalog, catalog.instances["p5.48xlarge"], Pricing.on_demand)
    assert rate.terms == formulas.MultiplierBasis(rate.usd_per_hour, 1.0, False)
    for cost in costing.purchase_costs(catalog, "p5.48xlarge", 2):
        assert cost.formula == formulas.purchase_formula(cost.terms)
        assert cost.formula.endswith(f"{fmt.usd(cost.terms.monthly_usd)}") or cost.comparison_only


def test_rate_bases() -> None:
    spot = formulas.SpotBasis(26.9, "2026-10-05", 0.15, None)
    assert formulas.rate_basis(spot) == (
        "published spot 26.9 USD/h (2026-10-05) x (1 + 0.15 interruption and fallback premium)"
    )
    capped = formulas.SpotBasis(26.9, "2026-10-05", 0.15, 98.32)
    assert formulas.rate_basis(capped).endswith(", at most on-demand 98.32 USD/h")
    published = formulas.PublishedBasis("3-year rate", 23.777, "2026-10")
    assert formulas.rate_basis(published) == "published 3-year rate 23.777 USD/h (2026-10)"
    assert formulas.rate_basis(formulas.MultiplierBasis(98.32, 1, False)) == (
        "on-demand 98.32 USD/h x 1"
    )
    assert formulas.rate_basis(formulas.MultiplierBasis(98.32, 0.6, True)) == (
        "on-demand 98.32 USD/h x 0.6, inferred: no published rate found"
    )


def test_purchase_options() -> None:
    basis = formulas.MultiplierBasis(98.32, 1, False)
    rented = formulas.RentedNodesTerms(2, 98.32, basis, 730, 143_547.2)
    assert formulas.purchase_formula(rented) == (
        "2 x 98.32 USD/h (on-demand 98.32 USD/h x 1) x 730 h = 143,547.20 USD"
    )
    bought = formulas.BoughtNodesTerms(2, 285_000, "2026-05", 18, 10.2, 1.3, 0.12, 730, 34_990.1)
    assert formulas.purchase_formula(bought) == (
        "2 x (285,000 USD (2026-05) / 18 months + 10.2 kW x PUE 1.3 x 0.12 USD/kWh x 730 h) = "
        "34,990.10 USD, before hosting, staff and networking"
    )


def test_connection_and_quantities() -> None:
    quantity = formulas.hourly_quantity(2, 0.01, 730.0, "interface endpoints")
    assert quantity == "2 x 0.01 USD/h x 730 h (interface endpoints)"
    assert formulas.monthly_quantity(1, 0.4, "secret") == "1 x 0.40 USD/month (secret)"
    terms = formulas.ConnectionTerms((formulas.PricedResource(14.6, quantity),), 1460)
    assert formulas.connection_formula(terms) == (
        "14.60 USD: 2 x 0.01 USD/h x 730 h (interface endpoints); together 14.60 USD"
    )


def _demand(peak: float | None, in_flight: int | None = 100) -> formulas.DemandTexts:
    return formulas.demand_texts(
        utilization=0.6,
        min_units=2,
        availability="high",
        output_tps=123.45,
        total_tps=1234.56,
        peak_tps=peak,
        in_flight=in_flight,
        held_tokens=32_500.0,
        request_in=32_000,
        request_out=1_000,
        output_share=0.5,
        input_tokens=400_000_000,
        output_tokens=50_000_000,
    )


def test_a_self_hosted_formula() -> None:
    shape = formulas.shape_texts(
        output_tps=2000.0,
        total_tps=10_000.0,
        utilization=0.6,
        input_tokens=2000,
        output_tokens=400,
        user_output_tps=30,
        bound="memory",
        kv_tokens_per_unit=946_000,
        kv_gb_per_unit=123.456,
        kv_kib_per_token=320.0,
        kv_cache_precision="fp8",
    )
    tail = formulas.self_hosted_tail(3, 1, 3, " x 98.32 USD/h (...) x 730 h = ", 215_320.8, "F", 1)
    assert tail == (
        "))) = 3; nodes = 3 x 1 = 3; cost = 3 x 98.32 USD/h (...) x 730 h = 215,320.80 USD; "
        "plus per pool F; total 1.00 USD"
    )
    with_peak = formulas.self_hosted_formula(_demand(500), shape, tail)
    assert with_peak == (
        "load / what a unit serves at this request shape (throughput model) x utilization 0.6: "
        "units = max(2 (high availability), ceil(max(output 123.5 tok/s / 1,200.0 (2,000.0 "
        "output tok/s a unit at 2,000/400 tokens and 30 tok/s per user, bound: memory, x "
        "utilization), total 1,234.6 tok/s / 6,000.0, peak 500 tok/s / 2,000.0, KV cache 100 "
        "request(s) in flight (its concurrency) x 32,500 tokens held (prompt 32,000 + 0.5 x "
        "output 1,000) / 946k tokens a unit holds (123.5 GB / 320.0 KiB a token at fp8)" + tail
    )
    # Without a peak, no peak term; without a stated concurrency, no KV term (the throughput
    # model's batch holds the requests in flight its rate brings).
    without = formulas.self_hosted_formula(_demand(None, None), shape, tail)
    assert ", peak" not in without and "KV cache" not in without
    assert without == (
        "load / what a unit serves at this request shape (throughput model) x utilization 0.6: "
        "units = max(2 (high availability), ceil(max(output 123.5 tok/s / 1,200.0 (2,000.0 "
        "output tok/s a unit at 2,000/400 tokens and 30 tok/s per user, bound: memory, x "
        "utilization), total 1,234.6 tok/s / 6,000.0" + tail
    )
    assert _demand(None, None).api_head_in == "400M input x "


def test_an_api_formula_with_the_prompt_cache() -> None:
    terms = [
        formulas.CacheTerm(0.75, "cached", "cached_input", None, 0.2, "read"),
        formulas.CacheTerm(0.1, "written", "cache_write", (0.4, 0.25), 3.75, "write"),
    ]
    notes = [formulas.uncounted_cache_writes_note("m", 3.75)]
    head = formulas.cache_input_text(1_000_000_000, 0.15, 2, terms, notes)
    assert head == (
        "1B input x (0.15 x 2 USD/M + 0.75 cached (cached_input_fraction) x 0.2 USD/M cache read"
        " + 0.1 written (cache_write_fraction 0.4 of the uncached 0.25) x 3.75 USD/M cache write)"
        " (cache writes not counted: m charges them 3.75 USD/M, and the file gives no "
        "cache_write_fraction) + "
    )
    assert formulas.no_cache_price_note("m", "read", "cached", 0.5) == (
        "no cache-read price for m: its cached share 0.5 is charged as input"
    )
    out = formulas.api_output_price_text(15, 2000, 400)
    assert formulas.api_formula("x + ", "5M output x ", out, 1000, "F", 73) == (
        "x + 5M output x 15 USD/M (prices for a request of 2,000 input / 400 output tokens) = "
        "1,000.00 USD; plus, standing alone, its access: F; total 1,073.00 USD"
    )


def test_pool_sizing() -> None:
    terms = formulas.PoolSizingTerms(2, 1.23456, 0.5, 0.25, 2, 3, "p5.48xlarge", 1, 2)
    assert formulas.pool_sizing_formula(terms) == (
        "units = max(largest minimum 2, ceil(volume 1.2346), ceil(peak 0.5000), ceil(KV cache "
        "0.2500)) = 2, the sums of 3 member(s)' loads in units of one p5.48xlarge node; "
        "nodes = 2 x 1 = 2"
    )
    replica = formulas.PoolSizingTerms(1, 3, 0, 0, 3, 1, "p4d.24xlarge", 2, 6)
    # No member states a concurrency: no KV term (Demand.kv_tokens).
    assert formulas.pool_sizing_formula(replica) == (
        "units = max(largest minimum 1, ceil(volume 3.0000), ceil(peak 0.0000)) = 3, the sums "
        "of 1 member(s)' loads in units of one p4d.24xlarge 2-node replica; nodes = 3 x 2 = 6"
    )


def test_tco_formula() -> None:
    plain = formulas.TcoTerms(98.32, 2673.55, 0.6, 17.0263, "output tokens", None)
    assert formulas.tco_formula(plain) == (
        "98.32 USD/h / (2,673.55 tok/s x 0.6 x 3600 s) x 1e6 = 17.0263 USD per million "
        "output tokens"
    )
    shape = formulas.TotalConversion(1000, 2000, 400, measured=False)
    total = formulas.TcoTerms(98.32, 6000, 0.6, 7.5, "tokens (input and output)", shape)
    assert formulas.tco_formula(total).endswith(
        " (1,000.00 output tok/s x (2,000 + 400) / 400 tokens a request)"
    )
    measured = formulas.TotalConversion(1000, 1000, 500, measured=True)
    text = formulas.tco_formula(formulas.TcoTerms(1, 3000, 0.5, 1, "tokens", measured))
    assert text.endswith(
        " (3,000.00 total tok/s of the measured run at about 1,000 input / 500 output tokens "
        "a request, models.yaml, for its 1,000.00 output tok/s)"
    )
    assert formulas.usd_per_million_line(1234.5) == "1234.50"


# An amount written inline: a USD amount, hourly or per-million price, or a share as percent.
# `{x:,.2f} USD`, `{x:.2f} USD`, `{x:.1f} %`, `{x:.1%}`: an amount or a share written inline.
INLINE = re.compile(r"\{[^{}]*:[^{}]*(,?\.[0-9][fg]\} ?(USD|%)|\.[0-9]%\})")


def inline_amounts(text: str) -> list[str]:
    return [m.group(0) for m in INLINE.finditer(text)]


def test_inline_amounts_are_found() -> None:
    """The check below is not vacuous: each old inline format is caught."""
    for line in (
        'f"{total:,.2f} USD a month"',
        'f"{hourly:,.4g} USD/h"',
        'f"{price:,.4g} USD/M"',
        'f"{engineer:,.0f} USD"',
        'f"({share:.3%})"',
        'f"{x:+,.2f} USD"',
        'f"{x:.2f} USD"',  # review of issue 15: without a thousands separator
        'f"{pct:.1f} %"',
    ):
        assert inline_amounts(line), line
    assert not inline_amounts('f"{usd(total)} a month, {tokens_text(n)} tokens"')


def test_no_planner_module_writes_an_amount_inline() -> None:
    found = {
        str(path.relative_to(REPO)): hits
        for path in sorted((REPO / "planner").rglob("*.py"))
        if path.name not in ("fmt.py", "formulas.py")
        and (hits := inline_amounts(path.read_text(encoding="utf-8")))
    }
    assert found == {}
