"""The costing: what self-hosting and the APIs cost, from the catalog's figures.

One module per idea: settings.py (the planning assumptions), api_prices.py (API token prices and
the prompt cache's shares), units.py (how weights fit a node: the scaling unit), serving.py (the
throughput model as the stack deploys it), capacity.py (the unit that serves a workload best and
the units a load needs), node_prices.py (nodes under each purchase option), fixed.py (staff and
network pieces, and a stack component's monthly cost), breakeven.py (where self-hosting and an
API change places); the throughput model itself is throughput.py, its data throughput_data.py
and its report throughput_report.py. Every function returns the numbers it used, so the plan can
show the formula and its sources. The package's public names are these
(`from planner import costing`).
"""

from planner.costing.api_prices import (
    ApiPrice,
    LaterPrice,
    api_input_usd_per_mtok,
    api_monthly_cost,
    api_price,
    cache_shares,
    later_prices,
)
from planner.costing.breakeven import Crossing, break_even_tokens, crossings
from planner.costing.capacity import (
    Load,
    UnitLimits,
    best_unit,
    unit_capacity,
    unit_limits,
    unit_load,
    unit_options,
    units_for_load,
    units_needed,
)
from planner.costing.fixed import (
    FixedCost,
    api_fixed_kinds,
    component_monthly_usd,
    connection_cost,
    pieces_cost,
    pool_fixed_cost,
    pool_staff_usd,
)
from planner.costing.node_prices import (
    PUBLISHED_RATES,
    NodeRate,
    PublishedRate,
    PurchaseCost,
    node_hourly_usd,
    node_rate,
    nodes_monthly_usd,
    published_rate,
    purchase_costs,
    site_node_basis,
    usd_per_million_tokens,
)
from planner.costing.serving import (
    UnitThroughput,
    deployed_throughput_data,
    kv_gb_per_token,
    serve_replica,
    serving_replica,
    unit_replica,
    unit_throughput,
)
from planner.costing.settings import EPSILON, MILLION, Settings
from planner.costing.units import Capacity, Fit, memory_fit

__all__ = [
    "EPSILON",
    "MILLION",
    "PUBLISHED_RATES",
    "ApiPrice",
    "Capacity",
    "Crossing",
    "Fit",
    "FixedCost",
    "LaterPrice",
    "Load",
    "NodeRate",
    "PublishedRate",
    "PurchaseCost",
    "Settings",
    "UnitLimits",
    "UnitThroughput",
    "api_fixed_kinds",
    "api_input_usd_per_mtok",
    "api_monthly_cost",
    "api_price",
    "best_unit",
    "break_even_tokens",
    "cache_shares",
    "component_monthly_usd",
    "connection_cost",
    "crossings",
    "deployed_throughput_data",
    "kv_gb_per_token",
    "later_prices",
    "memory_fit",
    "node_hourly_usd",
    "node_rate",
    "nodes_monthly_usd",
    "pieces_cost",
    "pool_fixed_cost",
    "pool_staff_usd",
    "published_rate",
    "purchase_costs",
    "serve_replica",
    "serving_replica",
    "site_node_basis",
    "unit_capacity",
    "unit_limits",
    "unit_load",
    "unit_options",
    "unit_replica",
    "unit_throughput",
    "units_for_load",
    "units_needed",
    "usd_per_million_tokens",
]
