"""API prices: one request of a workload's shape priced by genai-prices (or the catalog's override),
per million tokens, and the shares of its input the provider's prompt cache charges apart."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache

from genai_prices import Usage, calc_price
from genai_prices import __version__ as genai_prices_version

from planner.catalog import ApiModel, Catalog
from planner.costing.settings import MILLION


@dataclass(frozen=True)
class ApiPrice:
    """USD per million tokens for one API model at one request shape."""

    input_usd_per_mtok: float
    output_usd_per_mtok: float
    source: str
    date: str
    # Input tokens read from the provider's prompt cache; None where it prices no cache reads.
    cached_input_usd_per_mtok: float | None = None
    # Input tokens written to the prompt cache; None where writing is charged as plain input.
    cache_write_usd_per_mtok: float | None = None


@cache
def _genai_price(
    model: str, provider: str, input_tokens: int, output_tokens: int, when: date
) -> tuple[Decimal, Decimal, Decimal | None, Decimal | None]:
    """Input and output price of one request, and its input price when all of it is read from
    the prompt cache and when all of it is written to the cache (None where the model has no
    cache-read, or no cache-write, price)."""
    timestamp = datetime(when.year, when.month, when.day, tzinfo=UTC)
    result = calc_price(
        Usage(input_tokens=input_tokens, output_tokens=output_tokens),
        model,
        provider_id=provider,
        genai_request_timestamp=timestamp,
    )
    prices = result.model.get_prices(timestamp)

    def all_input_as(kind: str) -> Decimal:
        usage = Usage(input_tokens=input_tokens, output_tokens=0, **{kind: input_tokens})
        return calc_price(
            usage, model, provider_id=provider, genai_request_timestamp=timestamp
        ).input_price

    return (
        result.input_price,
        result.output_price,
        None if prices.cache_read_mtok is None else all_input_as("cache_read_tokens"),
        None if prices.cache_write_mtok is None else all_input_as("cache_write_tokens"),
    )


def api_price(
    catalog: Catalog, api: ApiModel, request_in: int, request_out: int, when: date
) -> ApiPrice:
    """Price one request of the given shape, then express it per million tokens.

    Pricing a whole request (not a month of tokens at once) is what makes tiered prices right:
    gemini-2.5-pro charges more per token for prompts above 200k tokens.
    """
    override = catalog.override_for(api.price_ref)
    if override is not None:
        return ApiPrice(
            override.input_usd_per_mtok,
            override.output_usd_per_mtok,
            f"api_price_overrides.yaml: {override.source}",
            override.date,
            override.cache_read_usd_per_mtok,
            override.cache_write_usd_per_mtok,
        )
    input_price, output_price, cached_price, write_price = _genai_price(
        api.price_ref.model, api.price_ref.provider, request_in, request_out, when
    )
    return ApiPrice(
        float(input_price * MILLION / request_in),
        float(output_price * MILLION / request_out),
        f"genai-prices {genai_prices_version} ({api.price_ref.provider}/{api.price_ref.model}),"
        f" one request of {request_in:,} input and {request_out:,} output tokens",
        when.isoformat(),
        None if cached_price is None else float(cached_price * MILLION / request_in),
        None if write_price is None else float(write_price * MILLION / request_in),
    )


@dataclass(frozen=True)
class LaterPrice:
    """A price the pinned snapshot gives an API model from a date after the plan's."""

    start: date
    input_usd_per_mtok: float
    output_usd_per_mtok: float
    cached_input_usd_per_mtok: float | None = None
    cache_write_usd_per_mtok: float | None = None


def _figures(price: ApiPrice) -> tuple[float | None, ...]:
    """What a request is charged by: input, output, cache-read and cache-write prices."""
    return (
        price.input_usd_per_mtok,
        price.output_usd_per_mtok,
        price.cached_input_usd_per_mtok,
        price.cache_write_usd_per_mtok,
    )


@cache
def _start_dates(model: str, provider: str, when: date) -> tuple[date, ...]:
    """The dates from which the snapshot prices this model anew (its prices' start-date
    constraints, genai-prices ConditionalPrice), looked up as of `when`, never today."""
    info = calc_price(
        Usage(input_tokens=1, output_tokens=1),
        model,
        provider_id=provider,
        genai_request_timestamp=datetime(when.year, when.month, when.day, tzinfo=UTC),
    ).model
    prices = info.prices if isinstance(info.prices, list) else []
    starts = {
        start
        for conditional in prices
        if isinstance(start := getattr(conditional.constraint, "start_date", None), date)
    }
    return tuple(sorted(starts))


def later_prices(
    catalog: Catalog, api: ApiModel, request_in: int, request_out: int, when: date
) -> list[LaterPrice]:
    """The prices the pinned genai-prices snapshot already gives this model from dates after
    `when` (an introductory price that ends, an announced rise), where they differ from the
    price at `when`: a plan priced at its price_date says so rather than quoting a price that
    has ended. No later price for one the catalog overrides (api_price_overrides.yaml): the
    snapshot does not set it."""
    if catalog.override_for(api.price_ref) is not None:
        return []
    now = api_price(catalog, api, request_in, request_out, when)
    found = []
    for start in _start_dates(api.price_ref.model, api.price_ref.provider, when):
        if start <= when:
            continue
        then = api_price(catalog, api, request_in, request_out, start)
        if _figures(then) != _figures(now):
            found.append(
                LaterPrice(
                    start,
                    then.input_usd_per_mtok,
                    then.output_usd_per_mtok,
                    then.cached_input_usd_per_mtok,
                    then.cache_write_usd_per_mtok,
                )
            )
            now = then
    return found


def cache_shares(
    price: ApiPrice, cached_fraction: float = 0.0, write_fraction: float = 0.0
) -> tuple[float, float, float]:
    """The shares of the input charged at the input, cache-read and cache-write prices, of
    which `cached_fraction` is read from the provider's prompt cache and, of the rest (the
    cache's misses), `write_fraction` written to it. A share the provider has no price for is
    charged as input: a provider that caches implicitly charges no premium for writing, and
    one without a read price saves nothing."""
    cached = cached_fraction if price.cached_input_usd_per_mtok is not None else 0.0
    written = (
        (1 - cached_fraction) * write_fraction
        if price.cache_write_usd_per_mtok is not None
        else 0.0
    )
    return 1 - cached - written, cached, written


def api_input_usd_per_mtok(
    price: ApiPrice, cached_fraction: float = 0.0, write_fraction: float = 0.0
) -> float:
    """The price of a million input tokens with these cache shares (cache_shares)."""
    plain, cached, written = cache_shares(price, cached_fraction, write_fraction)
    return (
        plain * price.input_usd_per_mtok
        + cached * (price.cached_input_usd_per_mtok or 0.0)
        + written * (price.cache_write_usd_per_mtok or 0.0)
    )


def api_monthly_cost(
    price: ApiPrice,
    input_tokens: int,
    output_tokens: int,
    cached_fraction: float = 0.0,
    write_fraction: float = 0.0,
) -> float:
    """A month of tokens at the price, the input's cached and written shares as
    api_input_usd_per_mtok prices them."""
    return (
        input_tokens * api_input_usd_per_mtok(price, cached_fraction, write_fraction)
        + output_tokens * price.output_usd_per_mtok
    ) / MILLION
