"""An API model's price at one request shape, with the figures it rests on and the parts of
its formula that do not depend on the workload's volume."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from planner import costing, formulas
from planner.catalog import ApiModel, Catalog
from planner.planning.figures import FigureBook


@dataclass(frozen=True, slots=True)
class ApiQuote:
    price: costing.ApiPrice
    figure_ids: tuple[str, ...]
    # The cache-read and cache-write prices' figure ids, recorded only when a workload uses them.
    cached_figure_id: str | None
    write_figure_id: str | None
    option_id: str
    input_text: str
    output_text: str


def api_quote(
    catalog: Catalog,
    price_date: date,
    book: FigureBook,
    api_id: str,
    api: ApiModel,
    request_in: int,
    request_out: int,
) -> ApiQuote:
    """The API's price at one request shape, with its figures recorded."""
    price = costing.api_price(catalog, api, request_in, request_out, price_date)
    shape = f"{request_in}/{request_out}"
    ids: tuple[str, ...] = (
        book.add(
            f"api.{api_id}.input_usd_per_mtok[{shape}]",
            round(price.input_usd_per_mtok, 6),
            "USD per million input tokens",
            price.source,
            price.date,
        ),
        book.add(
            f"api.{api_id}.output_usd_per_mtok[{shape}]",
            round(price.output_usd_per_mtok, 6),
            "USD per million output tokens",
            price.source,
            price.date,
        ),
    )
    ids += (
        book.add(
            f"api.{api_id}.tier",
            api.tier.value,
            "tier",
            api.tier_source.source,
            api.tier_source.date,
        ),
    )
    cached_id = write_id = None
    if price.cached_input_usd_per_mtok is not None:
        cached_id = f"api.{api_id}.cached_input_usd_per_mtok[{shape}]"
    if price.cache_write_usd_per_mtok is not None:
        write_id = f"api.{api_id}.cache_write_usd_per_mtok[{shape}]"
    return ApiQuote(
        price=price,
        figure_ids=ids,
        cached_figure_id=cached_id,
        write_figure_id=write_id,
        option_id=f"cloud_api/{api_id}",
        input_text=formulas.api_input_price_text(price.input_usd_per_mtok),
        output_text=formulas.api_output_price_text(
            price.output_usd_per_mtok, request_in, request_out
        ),
    )
