"""The cost model: API prices per request, memory fit, node counts and self-hosting cost.

Every function returns the numbers it used, so the plan can show the formula and its sources.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache

from genai_prices import Usage, calc_price
from genai_prices import __version__ as genai_prices_version

from planner.catalog import ApiModel, Catalog, Figure, Instance, OpenModel, TextFigure
from planner.catalog.aws_prices import list_price
from planner.catalog.vocabulary import Pricing
from planner.costing.throughput import (
    Efficiencies,
    Replica,
    Serving,
    ThroughputData,
    decode_step,
    default_throughput_data,
    make_replica,
    serve,
)
from planner.errors import PlannerError

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

    def bounds(self) -> tuple[Settings, Settings]:
        """The settings at the favourable and the unfavourable end of their ranges."""
        utilization = self.utilization_range or (self.utilization, self.utilization)
        factor = self.throughput_range or (self.throughput_factor, self.throughput_factor)
        return (
            replace(self, utilization=utilization[1], throughput_factor=factor[1]),
            replace(self, utilization=utilization[0], throughput_factor=factor[0]),
        )


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


@dataclass(frozen=True)
class Fit:
    """How a model's weights fit an instance type at a precision."""

    precision: str
    weights_gb: float
    gpu_memory_gb: float
    usable_gb_per_gpu: float
    gpus_per_replica: int
    nodes_per_replica: int
    replicas_per_node: int

    @property
    def kv_room_gb(self) -> float:
        """GPU memory one replica has for the KV cache once its weights are loaded."""
        return self.gpus_per_replica * self.usable_gb_per_gpu - self.weights_gb

    @property
    def tensor_parallel(self) -> int:
        return min(self.gpus_per_replica, self.gpus_per_replica // self.nodes_per_replica)

    @property
    def pipeline_parallel(self) -> int:
        return self.nodes_per_replica

    @property
    def note(self) -> str:
        if self.nodes_per_replica > 1:
            return (
                f"{self.weights_gb:,.0f} GB of {self.precision} weights do not fit one node "
                f"({self.gpu_memory_gb:,.0f} GB GPUs, {self.usable_gb_per_gpu:,.1f} GB usable "
                f"each after the engine's reserve): {self.nodes_per_replica} nodes per replica, "
                f"tensor parallel {self.tensor_parallel} x pipeline parallel "
                f"{self.pipeline_parallel}; {self.kv_room_gb:,.1f} GB left for the KV cache"
            )
        return (
            f"{self.weights_gb:,.1f} GB of {self.precision} weights on "
            f"{self.gpus_per_replica} GPU(s) ({self.usable_gb_per_gpu:,.1f} GB usable each); "
            f"{self.replicas_per_node} replica(s) per node, {self.kv_room_gb:,.1f} GB each left "
            "for the KV cache"
        )


def _next_power_of_two(n: int) -> int:
    return 1 << max(0, n - 1).bit_length()


def memory_fit(
    catalog: Catalog, model: OpenModel, instance: Instance, precision: str, reserve: float
) -> Fit | None:
    """Smallest tensor-parallel group (a power of two) that holds the weights with room left for
    the KV cache; several nodes (pipeline parallel) only on instances with EFA. None when the
    model cannot be served there. How much KV cache a workload needs is its own (kv_load)."""
    bytes_per_param = catalog.precisions[precision].bytes_per_param.value
    weights_gb = model.total_params_b.value * bytes_per_param
    gpu_gb = instance.gpu_memory_gb.value
    # vLLM's budget (gpu_memory_utilization = 1 - reserve) holds the weights, the activations of
    # its profiling pass and CUDA graphs, then the KV cache: the engine's own share of it
    # (throughput.yaml runtime_reserve_gb, the throughput model's figure) is no KV cache either.
    # Without it a 70.6 GB model "fits" one 80 GB H100 with 1.4 GB of KV cache that vLLM's
    # start-up profiling then takes.
    runtime = default_throughput_data().settings.runtime_reserve_gb.value
    usable = gpu_gb * (1 - reserve) - runtime
    # Weights that fill the group exactly leave no KV cache: the next group size then.
    gpus_needed = max(1, math.floor(weights_gb / usable + EPSILON) + 1)
    group = _next_power_of_two(gpus_needed)
    if group <= instance.gpus:
        return Fit(precision, weights_gb, gpu_gb, usable, group, 1, instance.gpus // group)
    if not instance.efa:
        return None
    nodes = math.ceil(gpus_needed / instance.gpus)
    return Fit(precision, weights_gb, gpu_gb, usable, nodes * instance.gpus, nodes, 1)


@dataclass(frozen=True)
class Capacity:
    """A scaling unit (one node, or the nodes of one multi-node replica): its memory fit, and
    what its replicas are made of for the throughput model (planner/costing/throughput.py)."""

    fit: Fit
    nodes_per_unit: int
    # Bytes of KV cache a token of context takes at the model's KV-cache precision
    # (architectures.yaml kv_cache_precision), in GB.
    kv_gb_per_token: float
    model_id: str
    gpu: str
    kv_cache_precision: str
    # The share of GPU memory the engine may use (vLLM's gpu_memory_utilization, 1 - the
    # memory reserve), and what the replica's KV cache holds with it (throughput.kv_cache, the
    # throughput model's own figure): tokens of context, and their bytes in all its GPUs.
    memory_utilization: float
    kv_tokens_per_replica: float
    kv_gb_per_replica: float


@cache
def deployed_throughput_data() -> ThroughputData:
    """The throughput model's data with the engine the stack deploys: vLLM with
    --tensor-parallel-size and no expert or attention data parallelism (stacks/serving.py), so
    an MoE replica keeps one batch and (for MLA) a copy of the KV latent on every GPU, and its
    KV cache is vLLM's (throughput.kv_cache, with the memory utilization of the plan), filled as
    requests grow rather than reserved for their whole output. The
    calibration's MoE points ran TensorRT-LLM with attention data parallelism (throughput.yaml
    moe_parallelism): pricing that configuration would overstate what the deployed pools serve
    (about 2x for Llama 4 at 30 tok/s a user)."""
    data = default_throughput_data()
    settings = data.settings.model_copy(
        update={
            "moe_parallelism": TextFigure(
                value="tensor",
                source="stacks/serving.py serve_args: vLLM 0.33.0 with --tensor-parallel-size "
                "(and --data-parallel-size for replicas a node), no --enable-expert-parallel: "
                "MoE models run tensor parallel, as dense ones do",
                date="2026-12",
            ),
            # vLLM keeps a request's KV cache as it grows, not reserved for its whole output.
            "kv_reserved_output_share": Figure(
                value=0.5,
                source="vLLM's scheduler (vllm/v1/core/sched/scheduler.py with "
                "KVCacheManager.allocate_slots) allocates a running request's KV cache blocks "
                "as its tokens are computed and preempts a request when the cache is full, so a "
                "request holds its prompt and its output so far: on average I + O/2 over its "
                "decode (TensorRT-LLM's default scheduler reserves I + O: throughput.yaml)",
                date="2026-12",
            ),
            # vLLM gives the KV cache all of its budget (gpu_memory_utilization x memory) left
            # after the weights and the profiled activations and CUDA graphs: no further share.
            "kv_free_fraction": Figure(
                value=1.0,
                source="vllm/v1/worker/gpu_worker.py determine_available_memory: the KV cache "
                "gets gpu_memory_utilization x total GPU memory less the weights, the profiled "
                "peak activations and non-torch memory (CUDA graphs); the stack passes "
                "--gpu-memory-utilization 1 - memory_reserve (stacks/serving.py)",
                date="2026-12",
            ),
        }
    )
    return data.model_copy(update={"settings": settings})


def kv_gb_per_token(model_id: str) -> tuple[float, str]:
    """A token's KV cache at the precision the model is served with (architectures.yaml), and
    that precision."""
    data = default_throughput_data()
    arch = data.architectures[model_id]
    precision = arch.kv_cache_precision.value
    per_value = data.settings.kv_bytes_per_value[precision].value
    return arch.kv_values_per_token() * per_value / 1e9, precision


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
    data = deployed_throughput_data()
    model_id = _model_id(catalog, model)
    if fit is None or model_id not in data.architectures or instance.gpu not in data.gpus:
        return ()
    kv_gb, kv_precision = kv_gb_per_token(model_id)
    utilization = 1 - settings.memory_reserve

    def unit(fit: Fit) -> Capacity:
        replica = _replica(model_id, instance.gpu, fit, utilization)
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
class UnitThroughput:
    """What one unit serves for one request shape at one per-user speed (the throughput model's
    answer for one replica, times the unit's replicas)."""

    output_tps: float
    total_tps: float
    replica_output_tps: float
    batch: int
    # What bounds the batch (KV memory, engine batch limit, per-user speed) and what bounds the
    # step time (bandwidth, compute, overhead)
    limit: str
    time_bound: str
    tokens_per_user: float
    target_met: bool
    # The fastest a user reads on this unit: one request alone, a decode step at its average
    # context a token (every stage's, under pipeline parallelism). Bandwidth and the step's
    # overheads bound it; a prompt's prefill does not (it comes before the first token).
    max_user_tps: float
    input_tokens: int
    output_tokens: int
    user_output_tps: float
    cached_input_fraction: float

    @property
    def bound(self) -> str:
        """One word for what limits the unit: the per-user speed or KV memory where they bound
        the batch, else what bounds the step time."""
        if self.limit in ("per-user speed", "KV memory"):
            return self.limit
        return self.time_bound

    @property
    def delivers_user_speed(self) -> bool:
        """Whether a user can read at user_output_tps at all: else the unit cannot serve the
        workload (answers.decide leaves it out). The throughput model's own per-user speed
        (tokens_per_user, target_met) averages a request's output over the whole cycle, its
        prefill included, which a one-token answer never brings to a reading speed."""
        return self.max_user_tps >= self.user_output_tps * (1 - EPSILON)


def _stage(data: ThroughputData, model_id: str, pipeline: int) -> ThroughputData:
    """The data with the model cut into one pipeline stage: 1/pipeline of its layers and
    parameters (experts, attention weights and KV cache follow the layers). An unknown model is
    left to make_replica to name."""
    if pipeline == 1 or model_id not in data.architectures:
        return data
    arch = data.architectures[model_id]

    def part(figure: Figure) -> Figure:
        return figure.model_copy(update={"value": figure.value / pipeline})

    stage = arch.model_copy(
        update={
            "layers": part(arch.layers),
            "total_params_b": part(arch.total_params_b),
            "active_params_b": part(arch.active_params_b),
            "attention_params_b": None
            if arch.attention_params_b is None
            else part(arch.attention_params_b),
        }
    )
    return data.model_copy(update={"architectures": {**data.architectures, model_id: stage}})


def _replica(model_id: str, gpu: str, fit: Fit, memory_utilization: float) -> Replica:
    return serving_replica(
        deployed_throughput_data(),
        model_id,
        gpu,
        fit.tensor_parallel,
        fit.pipeline_parallel,
        fit.precision,
        memory_utilization,
    )


def serving_replica(
    data: ThroughputData,
    model_id: str,
    gpu: str,
    tensor_parallel: int,
    pipeline_parallel: int,
    precision: str | None,
    memory_utilization: float = 1.0,
) -> Replica:
    """One replica of tensor_parallel GPUs a node on pipeline_parallel nodes, as the throughput
    model takes it: one pipeline stage (the whole replica on one node). Plans and `planner
    throughput --nodes` both make theirs here."""
    return make_replica(
        _stage(data, model_id, pipeline_parallel),
        model_id,
        gpu,
        tensor_parallel,
        precision,
        memory_utilization,
    )


def serve_replica(
    stage: Replica,
    pipeline_parallel: int,
    input_tokens: int,
    output_tokens: int,
    *,
    tokens_per_user: float | None = None,
    concurrency: int | None = None,
    cached_input_fraction: float = 0.0,
) -> Serving:
    """What a replica of pipeline_parallel stages (serving_replica) serves: with as many
    micro-batches in flight every stage works all the time, so the replica serves what a stage
    does; a token passes every stage, so a stage must reach PP times the per-user speed, a user
    reads 1/PP of a stage's speed and a first token comes after every stage. The hop between
    nodes (EFA) is not modelled: an optimistic simplification for multi-node replicas."""
    served = serve(
        stage,
        Efficiencies.of(deployed_throughput_data().fit),
        input_tokens,
        output_tokens,
        tokens_per_user=None if tokens_per_user is None else tokens_per_user * pipeline_parallel,
        concurrency=concurrency,
        cached_input_fraction=cached_input_fraction,
    )
    if pipeline_parallel == 1:
        return served
    return replace(
        served,
        tokens_per_user=served.tokens_per_user / pipeline_parallel,
        time_to_first_token_s=served.time_to_first_token_s * pipeline_parallel,
    )


@cache
def unit_throughput(
    capacity: Capacity,
    input_tokens: int,
    output_tokens: int,
    user_output_tps: float,
    cached_input_fraction: float = 0.0,
) -> UnitThroughput:
    """The throughput model (planner/costing/throughput.py serve) for one unit and one request
    shape, at the per-user speed: the largest batch whose every user reads user_output_tps.

    A replica is tensor parallel within a node; one of several nodes (DeepSeek V3.2 on 2x
    p5.48xlarge) is pipeline parallel across them: each node is a stage holding 1/PP of the
    layers, and with PP micro-batches in flight every stage works all the time. The replica
    then serves what one stage does (each token passes every stage), and a user reads a token
    per PP stage steps, so a stage must meet PP times the per-user speed. The hop between
    nodes (EFA) is not modelled: an optimistic simplification for multi-node replicas.

    MoE models are served as the stack deploys them (deployed_throughput_data): vLLM tensor
    parallel, not the attention data parallelism of the TensorRT-LLM runs the fit was made on."""
    fit = capacity.fit
    pipeline = fit.pipeline_parallel
    served = serve_replica(
        _replica(capacity.model_id, capacity.gpu, fit, capacity.memory_utilization),
        pipeline,
        input_tokens,
        output_tokens,
        tokens_per_user=user_output_tps,
        cached_input_fraction=cached_input_fraction,
    )
    replicas = fit.replicas_per_node
    alone = decode_step(
        served.replica,
        Efficiencies.of(deployed_throughput_data().fit),
        1,
        input_tokens + output_tokens / 2,
    )
    return UnitThroughput(
        output_tps=served.output_tokens_per_second * replicas,
        total_tps=served.total_tokens_per_second * replicas,
        replica_output_tps=served.output_tokens_per_second,
        batch=served.batch,
        limit=served.limit,
        time_bound=served.time_bound,
        tokens_per_user=served.tokens_per_user,
        target_met=served.target_met,
        max_user_tps=1 / (alone.seconds * pipeline),
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        user_output_tps=user_output_tps,
        cached_input_fraction=cached_input_fraction,
    )


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


def in_flight(
    settings: Settings,
    concurrency: int | None,
    output_tokens: int,
    peak_output_tps: float | None,
    seconds_per_month: float,
    user_output_tps: float | None = None,
) -> int:
    """Requests in flight at the busiest time: as given, or the busiest output rate (the peak,
    else the average over the utilization) over what one user reads a second (the workload's
    own speed where it has one, else the settings')."""
    if concurrency is not None:
        return concurrency
    busiest = busiest_output_tps(settings, output_tokens, peak_output_tps, seconds_per_month)
    speed = user_output_tps or settings.user_output_tps
    return max(1, math.ceil(busiest / speed - EPSILON))


def busiest_output_tps(
    settings: Settings,
    output_tokens: int,
    peak_output_tps: float | None,
    seconds_per_month: float,
) -> float:
    """The busiest output rate: the peak where given, else the average over the utilization."""
    if peak_output_tps is not None:
        return peak_output_tps
    return output_tokens / seconds_per_month / settings.utilization


@dataclass(frozen=True, slots=True)
class NodeRate:
    """One node an hour under a purchase option, its planning range, and what it rests on: a
    published rate of the instance type, or the on-demand price times an inferred multiplier."""

    usd_per_hour: float
    low: float
    high: float
    published: bool
    basis: str


# The Instance field that holds a purchase option's published rate, and how a basis names it:
# a new published option is a data field (catalog.Instance, instances.yaml) and an entry here.
PUBLISHED_RATES: dict[Pricing, tuple[str, str]] = {
    Pricing.spot: ("spot_usd_per_hour", "spot"),
    Pricing.savings_1yr: ("savings_1yr_usd_per_hour", "1-year rate"),
    Pricing.savings_3yr: ("savings_3yr_usd_per_hour", "3-year rate"),
}


@dataclass(frozen=True, slots=True)
class PublishedRate:
    """A published rate an instance type's node is priced at under a purchase option: the
    Instance field it comes from (the plan's figure is instance.<type>.<field>) and the figure."""

    field: str
    label: str
    figure: Figure


def published_rate(catalog: Catalog, instance: Instance, pricing: Pricing) -> PublishedRate | None:
    """The published figure behind a node's price under the option, or None where the instance
    type has none (the option's multiplier of on-demand then applies). A spot price counts only
    with the premium pricing.yaml adds to it for interruptions and the on-demand fallback."""
    entry = PUBLISHED_RATES.get(pricing)
    if entry is None:
        return None
    field, label = entry
    figure = getattr(instance, field)
    if not isinstance(figure, Figure):
        return None
    if pricing is Pricing.spot and catalog.pricing.options[pricing].premium is None:
        return None
    return PublishedRate(field, label, figure)


def node_rate(catalog: Catalog, instance: Instance, pricing: Pricing) -> NodeRate:
    option = catalog.pricing.options[pricing]
    on_demand = instance.on_demand_usd_per_hour.value
    published = published_rate(catalog, instance, pricing)
    if published is not None:
        figure = published.figure
        if option.premium is not None and pricing is Pricing.spot:
            premium = option.premium

            def with_premium(price: float | None, share: float | None) -> float:
                # An end the spot price has no range for takes its value: the premium's range.
                # Above on-demand no one buys spot: the fallback is on-demand itself.
                return min(
                    on_demand,
                    (figure.value if price is None else price)
                    * (1 + (premium.value if share is None else share)),
                )

            high = with_premium(figure.high, premium.high)
            capped = f", at most on-demand {on_demand:,.4g} USD/h" if high >= on_demand else ""
            return NodeRate(
                with_premium(figure.value, premium.value),
                with_premium(figure.low, premium.low),
                high,
                True,
                f"published spot {figure.value:,.4g} USD/h ({figure.date}) x (1 + "
                f"{premium.value:g} interruption and fallback premium){capped}",
            )
        return NodeRate(
            figure.value,
            figure.value if figure.low is None else figure.low,
            figure.value if figure.high is None else figure.high,
            True,
            f"published {published.label} {figure.value:,.4g} USD/h ({figure.date})",
        )
    multiplier = option.multiplier
    low = multiplier.value if multiplier.low is None else multiplier.low
    high = multiplier.value if multiplier.high is None else multiplier.high
    inferred = "" if pricing == Pricing.on_demand else ", inferred: no published rate found"
    return NodeRate(
        on_demand * multiplier.value,
        on_demand * low,
        on_demand * high,
        pricing == Pricing.on_demand,
        f"on-demand {on_demand:,.4g} USD/h x {multiplier.value:g}{inferred}",
    )


def node_hourly_usd(catalog: Catalog, instance: Instance, pricing: Pricing) -> float:
    return node_rate(catalog, instance, pricing).usd_per_hour


def nodes_monthly_usd(node_hourly_usd: float, hours_per_month: float, nodes: int) -> float:
    """Nodes a month: a node-month in whole cents, times the nodes. The one price the plan's
    pools and `planner preview`'s auto-scaling groups both use; rounding each node-month (not
    each group) makes a pool cost the same however its nodes are grouped (one group per
    multi-node replica in the stack)."""
    return nodes * round(node_hourly_usd * hours_per_month * 100) / 100


def usd_per_million_tokens(
    hourly_usd: float, tokens_per_second: float, utilization: float
) -> float:
    """The article's formula: hourly price / (tokens per second x utilization x 3600) x 1e6."""
    return hourly_usd / (tokens_per_second * utilization * 3600) * MILLION


def break_even_tokens(
    api_usd_per_token: float,
    unit_monthly_usd: float,
    unit_capacity_tokens: float,
    min_units: int,
    api_fixed_usd: float = 0.0,
    own_fixed_usd: float = 0.0,
) -> float | None:
    """Smallest monthly volume at which self-hosting costs no more than the API.

    The API costs Fa + a*v; self-hosting costs Fs + c*max(m, ceil(v/C)). Within the first m units
    self-hosting is flat, so the crossing is at v = (Fs + m*c - Fa)/a if that is at most m*C.
    Past them each unit adds c and the API a*C: if a*C < c the API only pulls ahead, so there
    is no break-even; otherwise the first unit k whose end the API reaches, k >= (Fs - Fa) /
    (a*C - c), holds the crossing.
    """
    a, c, capacity, m = api_usd_per_token, unit_monthly_usd, unit_capacity_tokens, min_units
    if a <= 0:
        return None
    first = (own_fixed_usd + m * c - api_fixed_usd) / a
    if first <= m * capacity + EPSILON:
        return max(0.0, first)
    slope = a * capacity - c
    if slope <= 0:
        return None
    k = max(m + 1, math.ceil((own_fixed_usd - api_fixed_usd) / slope - EPSILON))
    return max((k - 1) * capacity, (own_fixed_usd + k * c - api_fixed_usd) / a)


@dataclass(frozen=True, slots=True)
class Crossing:
    """From this monthly volume on (up to the next crossing) `cheaper` costs less: the self-hosted
    pool (it costs no more than the API at the volume itself) or the API (from just above it)."""

    monthly_tokens: float
    cheaper: str  # "self_hosted" or "cloud_api"


def crossings(
    api_usd_per_token: float,
    unit_monthly_usd: float,
    unit_capacity_tokens: float,
    min_units: int,
    max_volume: float,
    api_fixed_usd: float = 0.0,
    own_fixed_usd: float = 0.0,
    limit: int = 100,
) -> tuple[list[Crossing], bool]:
    """Every volume up to max_volume at which the cheaper of self-hosting and the API changes, and
    whether the list stops at `limit` crossings before max_volume.

    Self-hosting is a staircase, Fs + c*max(m, ceil(v/C)); the API a line, Fa + a*v. Within the
    k-th unit's stretch ((k-1)C, kC] (the first m units: [0, mC]) self-hosting is flat and the API
    rises, so self-hosting starts to win inside it at v = (Fs + k*c - Fa)/a when it is not already
    winning; at the next unit it jumps by c, which can hand the API the lead again: right above
    (k-1)C when D(k) = Fs + k*c - Fa - a*(k-1)*C > 0. The first crossing is break_even_tokens.
    """
    a, c, cap, m = api_usd_per_token, unit_monthly_usd, unit_capacity_tokens, min_units
    found: list[Crossing] = []
    if a <= 0 or cap <= 0:
        return found, False
    base = own_fixed_usd - api_fixed_usd
    slope = a * cap - c  # how much a unit's capacity is worth more through the API than the unit

    def end_gap(k: int) -> float:  # self-hosted minus API at the end of the k-th stretch
        return base + k * c - a * k * cap

    def wins_at(k: int) -> float:
        return (base + k * c) / a

    # The stretches in which self-hosting wins somewhere, end_gap(k) <= 0 for k from first to
    # last, with break_even_tokens' tolerance of EPSILON tokens.
    tolerance = a * EPSILON
    last: float = math.inf
    if end_gap(m) <= tolerance:
        first = m
        if slope < 0:
            last = max(m, math.floor((base - tolerance) / slope + EPSILON))
    elif slope > 0:
        first = max(m + 1, math.ceil(base / slope - EPSILON))
    else:
        return found, False
    if (first - 1) * cap > max_volume:
        return found, False
    # The last stretch whose start (where the API may take the lead back) is within max_volume:
    # a crossing exactly at max_volume (10 units' capacity, the horizon of a small workload) is
    # listed too.
    top = math.floor(max_volume / cap + EPSILON) + 1
    k = first
    # The stretch self-hosting first wins in: from its start (volume 0) or inside it.
    start_gap = base + k * c - (0.0 if k == m else a * (k - 1) * cap)
    found.append(Crossing(0.0 if start_gap <= 0 else wins_at(k), "self_hosted"))
    if slope < 0:
        # The API gains a unit at a time: skip the stretches self-hosting wins from their start
        # (end_gap(j) + c <= 0 up to j = calm).
        calm = math.floor((-base - c) / -slope + EPSILON)
        k = max(k, min(calm, int(min(last, top))))
    while k < min(last, top):
        k += 1
        if end_gap(k - 1) + c > EPSILON:  # the API is cheaper right above (k-1)C
            if len(found) + 2 > limit:
                return found, True
            found.append(Crossing((k - 1) * cap, "cloud_api"))
            found.append(Crossing(wins_at(k), "self_hosted"))
        elif slope >= 0:
            break  # self-hosting wins from here on
    if last < math.inf and last * cap < max_volume:
        found.append(Crossing(last * cap, "cloud_api"))  # past it the API wins for good
    return [x for x in found if x.monthly_tokens <= max_volume + EPSILON], False


@dataclass(frozen=True, slots=True)
class FixedCost:
    """A monthly cost that does not grow with volume, and how it is made up."""

    monthly_usd: float
    formula: str


def pieces_cost(catalog: Catalog, kinds: tuple[str, ...]) -> FixedCost:
    """The list price a month of the network and security pieces of these kinds
    (planner/data/operations.yaml, priced from aws_prices.yaml); usage charges aside."""
    total, parts = 0.0, []
    for kind in kinds:
        for piece in catalog.operations.pieces[kind]:
            price = list_price(catalog, piece.resource, piece.count, piece.what)
            if price is not None:
                total += price.monthly_usd
                parts.append(f"{price.monthly_usd:,.2f} ({piece.what})")
    if not parts:
        return FixedCost(0.0, "nothing of its own in this stack = 0.00 USD")
    return FixedCost(round(total, 2), " + ".join(parts) + f" = {total:,.2f} USD")


def component_monthly_usd(
    catalog: Catalog, pieces: tuple[str, ...], connections: list[tuple[str, int]]
) -> float:
    """What a stack component costs a month, usage charges aside, from the same operations.yaml
    pieces and connections the plan prices: its own pieces (pieces_cost) and what it makes in
    consumer VPCs, each (kind, subnets) priced as connection_cost does. The stacks report it as
    the component's `monthly_cost_usd`, so the two cannot drift apart."""
    cents = round(pieces_cost(catalog, pieces).monthly_usd * 100) if pieces else 0
    for kind, subnets in connections:
        cents += connection_cost(catalog, kind, subnets)[0]
    return cents / 100


def connection_cost(catalog: Catalog, kind: str, subnets: int) -> tuple[int, str, list[str]]:
    """What the stack adds in one consumer VPC for one service of this kind
    (operations.yaml connections, priced from aws_prices.yaml): whole cents a month, the formula,
    and the resource types priced. Each resource is rounded to the cent as `planner preview`
    prices it, so the plan and the preview agree to the cent."""
    cents, parts, tokens = 0, [], []
    for piece in catalog.operations.connections.get(kind, []):
        count = subnets if piece.per == "subnet" else 1
        price = list_price(catalog, piece.resource, count, piece.what)
        if price is None or not count:
            continue
        cents += round(price.monthly_usd * 100)
        parts.append(f"{price.monthly_usd:,.2f} USD: {price.quantity}")
        tokens.append(piece.resource)
    return cents, "; ".join([*parts, f"together {cents / 100:,.2f} USD"]), tokens


def _staff(catalog: Catalog, settings: Settings | None) -> tuple[float, float]:
    """A pool's share of an engineer and the engineer's monthly cost, as the file sets them."""
    staff = catalog.operations.staff
    fte = staff.pool_fte.value
    engineer = staff.engineer_usd_per_month.value
    if settings is not None:
        fte = fte if settings.pool_fte is None else settings.pool_fte
        engineer = (
            engineer if settings.engineer_usd_per_month is None else settings.engineer_usd_per_month
        )
    return fte, engineer


def pool_staff_usd(catalog: Catalog, settings: Settings | None = None) -> float:
    """A pool's staff a month, in whole cents: the one figure the plan's pool costs, its staff
    total and `planner preview`'s staff line all use."""
    fte, engineer = _staff(catalog, settings)
    return round(fte * engineer, 2)


def pool_fixed_cost(catalog: Catalog, settings: Settings | None = None) -> FixedCost:
    """What a self-hosted pool costs besides its nodes: a share of an engineer to run it, and
    its network and security pieces (the staff figures as the workloads file sets them)."""
    fte, engineer = _staff(catalog, settings)
    people = pool_staff_usd(catalog, settings)
    pieces = pieces_cost(catalog, ("self_hosted_pool",))
    total = round(people + pieces.monthly_usd, 2)
    return FixedCost(
        total,
        f"operations {fte:g} engineer x {engineer:,.0f} USD = {people:,.2f} USD; network and "
        f"security {pieces.formula}",
    )


def api_fixed_kinds(catalog: Catalog, provider_id: str) -> tuple[str, ...]:
    """The pieces a provider's access needs: its boundary (PrivateLink, else the shared egress
    network) and, unless reached with an IAM role (Bedrock), a secret for its API key."""
    boundary = "private_link" if catalog.providers[provider_id].private_link else "egress_network"
    return (boundary,) if provider_id == "bedrock" else (boundary, "api_key")


@dataclass(frozen=True)
class PurchaseCost:
    option: str
    monthly_usd: float
    formula: str
    comparison_only: bool


def purchase_costs(
    catalog: Catalog, instance_type: str, nodes: int, horizon_months: float | None = None
) -> list[PurchaseCost]:
    """A pool's nodes under every purchase option, and bought outright where the catalog has a
    server price (capital over the horizon, plus power): the last as a comparison only."""
    instance = catalog.instances[instance_type]
    hours = catalog.pricing.hours_per_month.value
    found = []
    for option in Pricing:
        rate = node_rate(catalog, instance, option)
        hourly = rate.usd_per_hour
        # As the pool's own cost is priced: each node-month in whole cents.
        monthly = nodes_monthly_usd(hourly, hours, nodes)
        found.append(
            PurchaseCost(
                option.value,
                round(monthly, 2),
                f"{nodes} x {hourly:,.4g} USD/h ({rate.basis}) x {hours:,.0f} h = "
                f"{monthly:,.2f} USD",
                False,
            )
        )
    hardware = catalog.pricing.hardware
    server = hardware.servers.get(instance_type)
    if server is not None:
        horizon = horizon_months or hardware.horizon_months.value
        capital = server.capital_usd.value / horizon
        power = hardware.power_kw.value * hardware.pue.value * hardware.usd_per_kwh.value * hours
        monthly = nodes * (capital + power)
        found.append(
            PurchaseCost(
                "buy",
                round(monthly, 2),
                f"{nodes} x ({server.capital_usd.value:,.0f} USD ({server.capital_usd.date}) / "
                f"{horizon:g} months + {hardware.power_kw.value} kW x "
                f"PUE {hardware.pue.value} x {hardware.usd_per_kwh.value} USD/kWh x {hours:,.0f} h)"
                f" = {monthly:,.2f} USD, before hosting, staff and networking",
                True,
            )
        )
    return found
