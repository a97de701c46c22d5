"""Capacity: the units a model can be served in on an instance type, the one that serves a
workload best, and how many units a load needs (its volume, its peak and its KV cache)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from planner.catalog import Catalog, Instance, OpenModel
from planner.costing.serving import (
    UnitThroughput,
    deployed_throughput_data,
    kv_gb_per_token,
    unit_replica,
    unit_throughput,
)
from planner.costing.settings import EPSILON, Settings
from planner.costing.units import Capacity, Fit, memory_fit
from planner.errors import PlannerError


def unit_options(
    catalog: Catalog,
    model: OpenModel,
    instance: Instance,
    settings: Settings,
    precision: str | None = None,
) -> tuple[Capacity, ...]:
    """Every unit the model can be served in on the instance, at its own precision or another:
    one per tensor-parallel group (a power of two, from the smallest that holds the weights up
    to the node's GPUs, each node full of replicas), or the one multi-node replica (its group
    is the nodes' GPUs). Empty where the weights do not fit or the throughput model knows
    neither the model nor the GPU. Which of them serves a workload best depends on its request
    shape and per-user speed (best_unit)."""
    precision = precision or model.default_precision
    fit = memory_fit(catalog, model, instance, precision, settings.memory_reserve)
    data = deployed_throughput_data(catalog)
    model_id = _model_id(catalog, model)
    if fit is None or model_id not in data.architectures or instance.gpu not in data.gpus:
        return ()
    kv_gb, kv_precision = kv_gb_per_token(catalog, model_id)
    utilization = 1 - settings.memory_reserve

    def unit(fit: Fit) -> Capacity:
        replica = unit_replica(catalog.directory, model_id, instance.gpu, fit, utilization)
        return Capacity(
            fit=fit,
            nodes_per_unit=fit.nodes_per_replica,
            kv_gb_per_token=kv_gb,
            model_id=model_id,
            gpu=instance.gpu,
            kv_cache_precision=kv_precision,
            memory_utilization=utilization,
            kv_tokens_per_replica=replica.kv_capacity_tokens,
            kv_gb_per_replica=replica.kv_capacity_tokens
            * replica.kv_bytes_per_token
            * fit.pipeline_parallel
            / 1e9,
            catalog_directory=catalog.directory,
        )

    if fit.nodes_per_replica > 1:
        return (unit(fit),)
    groups = []
    group = fit.gpus_per_replica
    while group <= instance.gpus:
        groups.append(
            unit(replace(fit, gpus_per_replica=group, replicas_per_node=instance.gpus // group))
        )
        group *= 2
    return tuple(groups)


def best_unit(
    units: tuple[Capacity, ...],
    input_tokens: int,
    output_tokens: int,
    user_output_tps: float,
    cached_input_fraction: float = 0.0,
) -> tuple[Capacity, UnitThroughput] | None:
    """The unit that serves a workload of this request shape and per-user speed best: among the
    units whose replica holds the weights, the engine's reserve and one request's KV cache,
    those that reach the per-user speed, and of them the one whose node serves the most output
    tokens (a larger group reads a replica's weights faster, so at a per-user speed it can
    batch more: Llama 3.3 70B on a p5en.48xlarge serves about 3,170 output tok/s at 30 tok/s a
    user as eight one-GPU replicas, 3,570 as two of four GPUs; a long request may fit only a
    larger group's KV cache). Where none delivers the speed, the fastest (the plan leaves the
    option out: UnitThroughput.delivers_user_speed). Ties keep the smaller group, so the answer
    does not depend on float noise. None where no unit holds one request."""
    best: tuple[Capacity, UnitThroughput] | None = None
    for unit in units:
        try:
            served = unit_throughput(
                unit, input_tokens, output_tokens, user_output_tps, cached_input_fraction
            )
        except PlannerError:  # no room for one request of this shape in this group's KV cache
            continue
        if best is None or _serves_better(served, best[1]):
            best = (unit, served)
    return best


def _serves_better(new: UnitThroughput, old: UnitThroughput) -> bool:
    """Delivering the per-user speed first (else the fastest), then reaching it with a batch,
    then the most output."""
    if new.delivers_user_speed != old.delivers_user_speed:
        return new.delivers_user_speed
    if not new.delivers_user_speed:
        return new.max_user_tps > old.max_user_tps * (1 + EPSILON)
    if new.target_met != old.target_met:
        return new.target_met
    return new.output_tps > old.output_tps * (1 + EPSILON)


def unit_capacity(
    catalog: Catalog,
    model: OpenModel,
    instance: Instance,
    settings: Settings,
    precision: str | None = None,
) -> Capacity | None:
    """The unit that serves the settings' request shape and per-user speed best (best_unit), or
    the smallest group where no group holds one such request; None where the weights do not
    fit or the throughput model knows neither the model nor the GPU."""
    units = unit_options(catalog, model, instance, settings, precision)
    if not units:
        return None
    found = best_unit(
        units,
        settings.request_input_tokens,
        settings.request_output_tokens,
        settings.user_output_tps,
    )
    return units[0] if found is None else found[0]


def _model_id(catalog: Catalog, model: OpenModel) -> str:
    return next(key for key, value in catalog.models.items() if value == model)


@dataclass(frozen=True, slots=True)
class UnitLimits:
    """What one unit serves at one request shape: tokens a month (its throughput x utilization,
    within the throughput model's range), output tokens per second at peak (the throughput at
    the per-user speed), and the tokens of context its KV cache holds (in one replica, and in
    all of the unit's replicas)."""

    output_tokens_per_month: float
    total_tokens_per_month: float
    peak_output_tps: float
    kv_tokens_per_replica: float
    kv_tokens_per_unit: float


def unit_limits(
    capacity: Capacity,
    throughput: UnitThroughput | None,
    seconds_per_month: float,
    settings: Settings,
) -> UnitLimits:
    """The unit's limits; throughput None gives the KV limits alone (the rates infinite). The
    KV cache is the throughput model's (throughput.kv_cache), so the context a unit admits and
    holds in flight is the one its batch is limited by."""
    per_replica = capacity.kv_tokens_per_replica
    if throughput is None:
        rate = total = float("inf")
    else:
        rate = throughput.output_tps * settings.throughput_factor
        total = throughput.total_tps * settings.throughput_factor
    return UnitLimits(
        output_tokens_per_month=rate * settings.utilization * seconds_per_month,
        total_tokens_per_month=total * settings.utilization * seconds_per_month,
        peak_output_tps=rate,
        kv_tokens_per_replica=per_replica,
        kv_tokens_per_unit=per_replica * capacity.fit.replicas_per_node,
    )


Load = tuple[float, float, float]


def unit_load(
    limits: UnitLimits,
    input_tokens: int,
    output_tokens: int,
    peak_output_tps: float | None,
    kv_tokens: float = 0.0,
) -> Load:
    """A workload's load in units, three ways that each add up in a pool: the larger of its
    output and total-token shares of what a unit serves a month at its request shape; its peak
    as a share of a unit's throughput at the per-user speed; and the context it keeps in flight
    (kv_tokens: concurrent requests x context length) as a share of a unit's KV cache."""
    load = max(
        output_tokens / limits.output_tokens_per_month,
        (input_tokens + output_tokens) / limits.total_tokens_per_month,
    )
    peak = peak_output_tps / limits.peak_output_tps if peak_output_tps is not None else 0.0
    return load, peak, kv_tokens / limits.kv_tokens_per_unit


def units_for_load(load: Load, min_units: int) -> int:
    ceil = math.ceil
    return max(min_units, ceil(load[0] - EPSILON), ceil(load[1] - EPSILON), ceil(load[2] - EPSILON))


def units_needed(
    limits: UnitLimits,
    input_tokens: int,
    output_tokens: int,
    peak_output_tps: float | None,
    min_units: int,
    kv_tokens: float = 0.0,
) -> int:
    """Units needed so that both the output rate and the total token rate stay within what the
    units serve at the utilization, the peak within their throughput, and the context in flight
    within the KV cache."""
    return units_for_load(
        unit_load(limits, input_tokens, output_tokens, peak_output_tps, kv_tokens), min_units
    )
