"""One workload's load as the option formulas take it: its request shape, tokens, peak and the KV
cache it keeps, and whether a candidate's replica can hold its context."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from planner import costing, formulas
from planner.catalog.vocabulary import Availability
from planner.inputs.workloads import Workload
from planner.planning.candidates import SelfHostedCandidate, Shape, ShapeLimits
from planner.planning.context import Context
from planner.planning.figures import ASSUMED_SPEED, speed_figure


class Load(NamedTuple):
    """One workload's load on a pool, as costing.unit_load takes it."""

    shape: Shape
    input_tokens: int
    output_tokens: int
    peak_output_tps: float | None
    kv_tokens: float


@dataclass(frozen=True, slots=True)
class Demand:
    """One workload's load, and the parts of its option formulas that do not depend on the option
    (formatted once per workload, not once per option)."""

    input_tokens: int
    output_tokens: int
    min_units: int
    peak_output_tps: float | None
    request_in: int
    request_out: int
    # The request shape the throughput model prices it at (request_in, request_out, cached share)
    shape: Shape
    # The KV cache its stated concurrency keeps: requests in flight x what one holds on average
    # (kv_held_tokens); 0 without one. Requests in flight that follow from its rate (its busiest
    # output rate over each user's speed) need no term of their own: the throughput model's
    # batch, which the rate load is divided by, is bounded by the same KV cache at the same
    # tokens a request (KV memory), and the engine serves a user at least that speed, so they
    # fit whenever the rate does (counting them at the target speed alone sized a unit
    # serving users faster than that for requests that had already finished: an outside
    # review found 17 nodes where 6 serve, at 10 tok/s a user and 30,000-token answers).
    kv_tokens: float
    texts: formulas.DemandTexts
    # Which API pieces the stack builds for these callers: a PrivateLink network of its own
    # (callers given as plain CIDRs), a transit gateway attachment (callers naming VPCs).
    plain_callers: bool = True
    vpc_callers: bool = False
    # Share of the input tokens read from the provider's prompt cache (cached_input_fraction),
    # and written to it (cache_write_fraction; None: the file does not say).
    cached_fraction: float = 0.0
    write_fraction: float | None = None
    # The figure of the per-user speed it is priced at (its own, or the assumption's).
    speed_figure: str = ASSUMED_SPEED

    @property
    def load(self) -> Load:
        return Load(
            self.shape, self.input_tokens, self.output_tokens, self.peak_output_tps, self.kv_tokens
        )

    @classmethod
    def of(cls, ctx: Context, workload: Workload) -> Demand:
        tokens = workload.monthly_tokens
        min_units = availability_floor(workload)
        peak = workload.peak_tokens_per_second
        request_in, request_out = request_shape(ctx, workload)
        held = kv_held_tokens(ctx, request_in, request_out)
        entries = workload.consumers
        plain = any(isinstance(c, str) or (c.vpc is None and c.account is None) for c in entries)
        vpcs = any(not isinstance(c, str) and c.vpc is not None for c in entries)
        return cls(
            plain_callers=plain,
            vpc_callers=vpcs,
            cached_fraction=workload.cached_input_fraction or 0.0,
            write_fraction=workload.cache_write_fraction,
            speed_figure=speed_figure(ctx.book, workload),
            input_tokens=tokens.input,
            output_tokens=tokens.output,
            min_units=min_units,
            peak_output_tps=peak,
            request_in=request_in,
            request_out=request_out,
            shape=shape_of(ctx, workload),
            kv_tokens=(workload.concurrency or 0) * held,
            texts=formulas.demand_texts(
                utilization=ctx.settings.utilization,
                min_units=min_units,
                availability=workload.availability.value,
                output_tps=tokens.output / ctx.seconds_per_month,
                total_tps=tokens.total / ctx.seconds_per_month,
                peak_tps=peak,
                in_flight=workload.concurrency,
                held_tokens=held,
                request_in=request_in,
                request_out=request_out,
                output_share=kv_output_share(ctx),
                input_tokens=tokens.input,
                output_tokens=tokens.output,
            ),
        )


def kv_output_share(ctx: Context) -> float:
    """Share of a request's output its KV cache holds on average over its decode, in the engine
    the stacks deploy (vLLM grows a request's cache as it writes: costing.serving), as the
    throughput model sizes a batch with."""
    return costing.deployed_throughput_data(ctx.catalog).settings.kv_reserved_output_share.value


def kv_held_tokens(ctx: Context, request_in: int, request_out: int) -> float:
    """Tokens one request in flight holds in the KV cache on average: its prompt and the share
    of its output written so far (kv_output_share). The pool's KV cache is sized for requests
    in flight x this, as the throughput model sizes a replica's batch; a request's whole context
    must still fit one replica (context_fits)."""
    return request_in + kv_output_share(ctx) * request_out


def shape_of(ctx: Context, workload: Workload) -> Shape:
    """The workload's request shape, the cached share of its prompts (prefix caching) and the
    speed its users read at (its own user_output_tps, else the assumptions')."""
    request_in, request_out = request_shape(ctx, workload)
    return Shape(
        request_in,
        request_out,
        workload.cached_input_fraction or 0.0,
        workload.user_output_tps or ctx.settings.user_output_tps,
    )


def context_fits(ctx: Context, candidate: SelfHostedCandidate, demand: Demand) -> bool:
    """One request's whole context fits the KV cache of a replica of some tensor-parallel
    group of the candidate (the throughput model's, which the plan sizes with too)."""
    return ctx.shape_limits(candidate, demand.shape) is not None


def limits_at(ctx: Context, candidate: SelfHostedCandidate, shape: Shape) -> ShapeLimits:
    """shape_limits for a shape the candidate was admitted for (context_fits)."""
    found = ctx.shape_limits(candidate, shape)
    assert found is not None, (candidate.option_id, shape)
    return found


def longest_request(ctx: Context, workloads: Sequence[Workload]) -> int:
    """The longest context (input and output tokens) of one request of these workloads."""
    return max(sum(request_shape(ctx, w)) for w in workloads)


def request_shape(ctx: Context, workload: Workload) -> tuple[int, int]:
    if workload.request is not None:
        return workload.request.input_tokens, workload.request.output_tokens
    return ctx.settings.request_input_tokens, ctx.settings.request_output_tokens


def availability_floor(workload: Workload) -> int:
    """Units a workload never goes below: two for `availability: high`, so one can fail."""
    return 2 if workload.availability is Availability.high else 1
