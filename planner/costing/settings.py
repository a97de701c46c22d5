"""The planning assumptions in force (Settings), and the two numbers every costing module's
arithmetic shares."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from planner.catalog.vocabulary import Pricing
from planner.inputs.sites import Site

MILLION = 1_000_000
# Floating-point slack when a load is an exact multiple of a capacity (3.0000000001 nodes is 3).
EPSILON = 1e-9


@dataclass(frozen=True)
class Settings:
    """The planning assumptions in force, after the workloads file's overrides."""

    pricing: Pricing
    utilization: float
    memory_reserve: float
    request_input_tokens: int
    request_output_tokens: int
    price_date: date
    # Output tokens a second one user reads at: how many requests are in flight at a rate.
    user_output_tps: float
    # What the throughput model's answer is multiplied by: 1 as fitted; the ends of
    # throughput_range at the ends of the planning range.
    throughput_factor: float = 1.0
    # Planning ranges (low, high) of the uncertain settings; None where the value was given.
    utilization_range: tuple[float, float] | None = None
    # The throughput model's stated error (throughput.yaml fit.geometric_mean_error g): its
    # answer may be g times too high or too low, so (1/g, g).
    throughput_range: tuple[float, float] | None = None
    # Overrides of the catalog's staff and amortization figures; None keeps the catalog's.
    engineer_usd_per_month: float | None = None
    pool_fte: float | None = None
    amortization_months: float | None = None
    # The instance types pools may use (assumptions.instance_types); None: every one of the
    # catalog.
    instance_types: tuple[str, ...] | None = None
    # Where pools may run (the file's `sites`); None: AWS EC2 in the region only.
    sites: tuple[Site, ...] | None = None

    def bounds(self) -> tuple[Settings, Settings]:
        """The settings at the favourable and the unfavourable end of their ranges."""
        utilization = self.utilization_range or (self.utilization, self.utilization)
        factor = self.throughput_range or (self.throughput_factor, self.throughput_factor)
        return (
            replace(self, utilization=utilization[1], throughput_factor=factor[1]),
            replace(self, utilization=utilization[0], throughput_factor=factor[0]),
        )
