"""The cost formulas: API prices per request, memory fit, node counts, break-even, TCO."""

from __future__ import annotations

import json
import math
from datetime import date

import pytest

from planner import costing
from planner.catalog import Catalog
from planner.catalog import default_catalog as catalog_default
from planner.catalog.vocabulary import Pricing
from planner.cli import main
from planner.costing import Settings
from planner.costing.throughput_data import default_throughput_data

WHEN = date(2026, 11, 1)


def settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "pricing": Pricing.on_demand,
        "utilization": 0.4,
        "memory_reserve": 0.1,
        "user_output_tps": 30.0,
        "request_input_tokens": 2000,
        "request_output_tokens": 400,
        "price_date": WHEN,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def test_tco_reproduces_the_articles_deepseek_figure(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "tco", "deepseek-v3.2", "--instance", "p5.48xlarge", "--pricing", "on_demand",
            "--utilization", "1.0", "--tokens-per-second", "2673.55", "--json",
        ]
    )  # fmt: skip
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["usd_per_million_tokens"] == 5.72
    # ... and says that the FP8 weights need two H100 nodes, which the article leaves out.
    assert result["memory_fit"]["nodes_per_replica"] == 2


def test_tco_scales_with_utilization_and_pricing(capsys: pytest.CaptureFixture[str]) -> None:
    def tco(*extra: str) -> float:
        assert main(["tco", "llama-4-maverick", "--instance", "p5.48xlarge", "--json", *extra]) == 0
        return float(json.loads(capsys.readouterr().out)["usd_per_million_tokens"])

    full = tco("--utilization", "1", "--tokens-per-second", "9677")
    given = ["--tokens-per-second", "9677"]
    assert tco("--utilization", "0.5", *given) == pytest.approx(2 * full, abs=0.01)
    # Three years: the published rate of p5.48xlarge, 23.77728 of 55.04 USD/h.
    assert tco("--utilization", "1", "--pricing", "savings_3yr", *given) == pytest.approx(
        23.77728 / 55.04 * full, abs=0.01
    )
    # 55.04 / (9677 x 3600) x 1e6
    assert full == pytest.approx(1.58, abs=0.005)


def test_tco_per_output_or_total_tokens(capsys: pytest.CaptureFixture[str]) -> None:
    """Per million output tokens by default; --per total spreads the same cost over input and
    output tokens at the request shape (2,000 + 400 tokens a request: 6x as many)."""

    def tco(*extra: str) -> dict[str, object]:
        args = ["tco", "deepseek-v3.2", "--instance", "p5.48xlarge", "--utilization", "1"]
        assert main([*args, "--tokens-per-second", "2673.55", "--json", *extra]) == 0
        result: dict[str, object] = json.loads(capsys.readouterr().out)
        return result

    output = tco()
    total = tco("--per", "total", "--input-tokens", "2000", "--output-tokens", "400")
    assert output["per"] == "output" and output["usd_per_million_tokens"] == 5.72
    assert total["usd_per_million_tokens"] == pytest.approx(5.72 / 6, abs=0.01)
    assert "per million tokens (input and output)" in str(total["formula"])


def test_tco_applies_the_throughput_model(capsys: pytest.CaptureFixture[str]) -> None:
    """Without --tokens-per-second the node's throughput is the model's at the request shape
    and per-user speed: a long prompt or a faster user costs more per output token."""

    def tco(*extra: str) -> float:
        args = ["tco", "llama-3.3-70b", "--instance", "p5en.48xlarge", "--utilization", "1"]
        assert main([*args, "--json", *extra]) == 0
        result = json.loads(capsys.readouterr().out)
        assert result["tokens_per_second_source"].startswith("throughput model")
        return float(result["usd_per_million_tokens"])

    short = tco("--input-tokens", "500", "--output-tokens", "500")
    long = tco("--input-tokens", "8000", "--output-tokens", "500")
    fast = tco("--input-tokens", "500", "--output-tokens", "500", "--tokens-per-user", "60")
    assert long > short and fast > short
    # No default throughput: the model's figure per node (63.296 USD/h over its tok/s), with
    # the tensor-parallel group that serves most at this shape.
    node = costing.unit_capacity(
        catalog_default(), catalog_default().models["llama-3.3-70b"],
        catalog_default().instances["p5en.48xlarge"],
        settings(request_input_tokens=500, request_output_tokens=500),
    )  # fmt: skip
    assert node is not None
    served = costing.unit_throughput(node, 500, 500, 30.0)
    assert short == pytest.approx(63.296 / (served.output_tps * 3600) * 1e6, abs=0.01)


def test_tco_refuses_what_does_not_fit(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tco", "llama-4-scout", "--instance", "p5.4xlarge", "--utilization", "1"]) == 2
    err = capsys.readouterr().err
    assert "cannot be served on p5.4xlarge" in err and "Traceback" not in err
    args = ["tco", "llama-4-scout", "--instance", "p5.4xlarge", "--utilization", "1"]
    assert main([*args, "--precision", "int4"]) == 0


@pytest.mark.parametrize(
    ("model", "instance", "gpus", "nodes", "replicas"),
    [
        ("deepseek-v3.2", "p5.48xlarge", 16, 2, 1),  # 671 GB FP8 > 8 x 80 GB
        ("deepseek-v3.2", "p5en.48xlarge", 8, 1, 1),  # 8 x 141 GB holds it
        ("llama-4-maverick", "p5.48xlarge", 8, 1, 1),
        ("llama-4-scout", "p5.48xlarge", 2, 1, 4),  # FP8 wants 2-4 GPUs
        ("qwen3-235b-a22b", "p5.48xlarge", 4, 1, 2),
        ("llama-3.1-8b", "p5.48xlarge", 1, 1, 8),
        ("llama-3.1-8b", "p5.4xlarge", 1, 1, 1),
    ],
)
def test_memory_fit(
    catalog: Catalog, model: str, instance: str, gpus: int, nodes: int, replicas: int
) -> None:
    fit = costing.memory_fit(
        catalog, catalog.models[model], catalog.instances[instance], "fp8", 0.2
    )
    assert fit is not None
    assert (fit.gpus_per_replica, fit.nodes_per_replica, fit.replicas_per_node) == (
        gpus,
        nodes,
        replicas,
    )
    assert fit.tensor_parallel * fit.pipeline_parallel == fit.gpus_per_replica


def test_memory_fit_without_efa_stays_on_one_node(catalog: Catalog) -> None:
    one_gpu = catalog.instances["p5.4xlarge"]
    assert costing.memory_fit(catalog, catalog.models["llama-4-scout"], one_gpu, "fp8", 0.2) is None
    fit = costing.memory_fit(catalog, catalog.models["llama-4-scout"], one_gpu, "int4", 0.2)
    assert fit is not None and fit.gpus_per_replica == 1


def test_deepseek_int4_fits_one_h100_node(catalog: Catalog) -> None:
    fit = costing.memory_fit(
        catalog, catalog.models["deepseek-v3.2"], catalog.instances["p5.48xlarge"], "int4", 0.2
    )
    assert fit is not None and fit.nodes_per_replica == 1


def test_api_price_is_per_request_so_tiers_apply(catalog: Catalog) -> None:
    pro = catalog.api_models["gemini-2.5-pro"]
    short = costing.api_price(catalog, pro, 2_000, 400, WHEN)
    long = costing.api_price(catalog, pro, 300_000, 2_000, WHEN)
    assert (short.input_usd_per_mtok, short.output_usd_per_mtok) == (1.25, 10.0)
    assert (long.input_usd_per_mtok, long.output_usd_per_mtok) == (2.5, 15.0)
    assert "genai-prices" in short.source


def test_price_override_replaces_known_error(catalog: Catalog) -> None:
    api = catalog.api_models["deepseek-v3.2-api"]
    price = costing.api_price(catalog, api, 2_000, 400, WHEN)
    assert (price.input_usd_per_mtok, price.output_usd_per_mtok) == (0.28, 0.42)
    assert "api_price_overrides.yaml" in price.source


@pytest.mark.parametrize(
    ("api", "input_price", "output_price"),
    [
        ("gpt-4.1", 2.0, 8.0),
        ("gpt-4.1-mini", 0.4, 1.6),
        ("claude-opus-4", 15.0, 75.0),
        ("claude-sonnet-4", 3.0, 15.0),
        ("gemini-2.5-flash", 0.3, 2.5),
        ("bedrock-llama-4-scout", 0.17, 0.66),
        ("bedrock-llama-4-maverick", 0.24, 0.97),
    ],
)
def test_api_list_prices_match_cost_facts(
    catalog: Catalog, api: str, input_price: float, output_price: float
) -> None:
    price = costing.api_price(catalog, catalog.api_models[api], 2_000, 400, WHEN)
    assert price.input_usd_per_mtok == pytest.approx(input_price)
    assert price.output_usd_per_mtok == pytest.approx(output_price)


def test_api_monthly_cost() -> None:
    price = costing.ApiPrice(2.0, 8.0, "s", "d")
    assert costing.api_monthly_cost(price, 400_000_000, 80_000_000) == pytest.approx(1440.0)


def _capacity(catalog: Catalog, model: str, instance: str) -> costing.Capacity:
    capacity = costing.unit_capacity(
        catalog, catalog.models[model], catalog.instances[instance], settings()
    )
    assert capacity is not None
    return capacity


def test_units_follow_the_binding_constraint(catalog: Catalog) -> None:
    capacity = _capacity(catalog, "llama-4-maverick", "p5.48xlarge")
    seconds = 730 * 3600
    served = costing.unit_throughput(capacity, 2000, 400, 30.0)
    limits = costing.unit_limits(capacity, served, seconds, settings())
    # No serving-efficiency derate any more: the model's throughput x utilization.
    exact = round(served.output_tps * 0.4 * seconds)
    assert limits.output_tokens_per_month == pytest.approx(exact, abs=1)
    # Exactly one unit of output, no input: one unit, not two (floating-point slack).
    assert costing.units_needed(limits, 0, exact, None, 1) == 1
    assert costing.units_needed(limits, 0, exact + 10_000, None, 1) == 2
    # Input-heavy load is bound by the total-token rate.
    total = round(served.total_tps * 0.4 * seconds * 2.5)
    assert costing.units_needed(limits, total, 0, None, 1) == 3


def test_units_honour_peak_and_availability(catalog: Catalog) -> None:
    capacity = _capacity(catalog, "llama-4-maverick", "p5.48xlarge")
    seconds = 730 * 3600
    served = costing.unit_throughput(capacity, 2000, 400, 30.0)
    limits = costing.unit_limits(capacity, served, seconds, settings())
    # The peak is held by the throughput at the per-user speed, not derated further.
    assert limits.peak_output_tps == pytest.approx(served.output_tps)
    peak = served.output_tps * 3.5
    assert costing.units_needed(limits, 0, 0, peak, 1) == 4
    assert costing.units_needed(limits, 0, 0, None, 2) == 2


def test_throughput_range_is_the_fits_error(catalog: Catalog) -> None:
    """The planning range of a unit's throughput is the fit's stated error either way."""
    capacity = _capacity(catalog, "llama-4-maverick", "p5.48xlarge")
    served = costing.unit_throughput(capacity, 2000, 400, 30.0)
    error = default_throughput_data().fit.geometric_mean_error
    best, worst = settings(throughput_range=(1 / error, error)).bounds()
    high = costing.unit_limits(capacity, served, 3600.0, best)
    low = costing.unit_limits(capacity, served, 3600.0, worst)
    assert high.peak_output_tps == pytest.approx(served.output_tps * error)
    assert low.peak_output_tps == pytest.approx(served.output_tps / error)


def test_multi_node_unit_counts_both_nodes(catalog: Catalog) -> None:
    capacity = _capacity(catalog, "deepseek-v3.2", "p5.48xlarge")
    assert capacity.nodes_per_unit == 2
    assert (capacity.fit.tensor_parallel, capacity.fit.pipeline_parallel) == (8, 2)


def test_break_even_formula() -> None:
    # API 10 USD per million tokens; a unit costs 40,000 and serves 10B tokens.
    a = 10 / 1e6
    assert costing.break_even_tokens(a, 40_000, 10e9, 1) == pytest.approx(4e9)
    assert costing.break_even_tokens(a, 40_000, 10e9, 2) == pytest.approx(8e9)
    # The unit's capacity is worth less through the API than the unit costs: never.
    assert costing.break_even_tokens(a, 40_000, 3e9, 1) is None
    assert costing.break_even_tokens(0.0, 40_000, 3e9, 1) is None


def test_usd_per_million_tokens() -> None:
    value = costing.usd_per_million_tokens(55.04, 2673.55, 1.0)
    assert math.isclose(value, 55.04 / (2673.55 * 3600) * 1e6)
    assert round(value, 2) == 5.72


def test_purchase_options_of_a_pool(catalog: Catalog) -> None:
    by_option = {c.option: c for c in costing.purchase_costs(catalog, "p5.48xlarge", 2)}
    assert by_option["on_demand"].monthly_usd == pytest.approx(2 * 55.04 * 730)
    # Published rates: the 3-year EC2 Instance Savings Plan, the spot price plus its premium.
    assert by_option["savings_3yr"].monthly_usd == pytest.approx(2 * 23.77728 * 730, abs=0.01)
    assert by_option["spot"].monthly_usd == pytest.approx(2 * 26.904583 * 1.15 * 730, abs=0.01)
    # Bought: 285k USD (a 2026-05 market estimate) over 18 months, plus 7 kW x PUE 1.3 at
    # 0.10 USD/kWh, per node.
    buy = by_option["buy"]
    assert buy.comparison_only and not by_option["on_demand"].comparison_only
    assert buy.monthly_usd == pytest.approx(2 * (285_000 / 18 + 7 * 1.3 * 0.10 * 730), abs=0.01)
    assert "before hosting, staff and networking" in buy.formula
    assert buy.formula.startswith("2 x (285,000 USD (2026-05) / 18 months")
    # H200 nodes have their own server price (an HGX H200 estimate), not the H100's.
    [h200] = [c for c in costing.purchase_costs(catalog, "p5en.48xlarge", 1) if c.option == "buy"]
    assert h200.monthly_usd == pytest.approx(370_000 / 18 + 7 * 1.3 * 0.10 * 730, abs=0.01)
    # No server price for the one-GPU type: no purchase line rather than a made-up one.
    assert "buy" not in {c.option for c in costing.purchase_costs(catalog, "p5.4xlarge", 1)}
