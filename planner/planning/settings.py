"""The plan's settings: the catalog's defaults, overridden by the workloads file, each recorded
with its source."""

from __future__ import annotations

from datetime import date

from planner.catalog import Catalog, Figure
from planner.catalog.vocabulary import Pricing
from planner.costing import Settings
from planner.costing.throughput_data import throughput_data
from planner.inputs.workloads import WorkloadsFile
from planner.planning.figures import FigureBook


def settings_for(catalog: Catalog, spec: WorkloadsFile, book: FigureBook) -> Settings:
    """Catalog defaults, overridden by the workloads file; each recorded with its source."""
    defaults = catalog.defaults
    given = spec.assumptions
    request = given.request
    settings = Settings(
        pricing=given.pricing or Pricing(defaults.pricing.value),
        utilization=given.utilization or defaults.utilization.value,
        memory_reserve=(
            given.memory_reserve
            if given.memory_reserve is not None
            else defaults.memory_reserve.value
        ),
        request_input_tokens=(
            request.input_tokens if request else int(defaults.request_input_tokens.value)
        ),
        request_output_tokens=(
            request.output_tokens if request else int(defaults.request_output_tokens.value)
        ),
        price_date=given.price_date or date.fromisoformat(defaults.price_date.value),
        user_output_tps=given.user_output_tps or defaults.user_output_tps.value,
        engineer_usd_per_month=given.engineer_usd_per_month,
        pool_fte=given.pool_fte,
        amortization_months=given.amortization_months,
        instance_types=tuple(sorted(set(given.instance_types))) if given.instance_types else None,
        sites=tuple(spec.sites) if spec.sites else None,
        utilization_range=_range(defaults.utilization) if not given.utilization else None,
        throughput_range=throughput_range(catalog),
    )
    overridden = "set in the workloads file (assumptions)"
    for key, unit, value, default in (
        ("utilization", "share of capacity", given.utilization, defaults.utilization),
        ("memory_reserve", "share of GPU memory", given.memory_reserve, defaults.memory_reserve),
        (
            "user_output_tps",
            "output tokens/s per user",
            given.user_output_tps,
            defaults.user_output_tps,
        ),
    ):
        if value is None:
            book.add(f"assumption.{key}", default.value, unit, default.source, default.date)
        else:
            book.add(f"assumption.{key}", value, unit, overridden, "")
    return settings


def throughput_range(catalog: Catalog) -> tuple[float, float]:
    """The planning range of every throughput: the fit's typical error either way."""
    error = throughput_data(catalog).fit.geometric_mean_error
    return 1 / error, error


def _range(figure: Figure) -> tuple[float, float] | None:
    if figure.low is None or figure.high is None:
        return None
    return figure.low, figure.high
