"""Throughput of one serving replica from physics: a model a reviewer can check.

One replica is N GPUs of one type serving one model together. Requests of one shape
(input tokens I, output tokens O) run in a continuous batch of B requests. Per batch of requests:

    cycle(B) = O x decode_step(B) + B x prefill(I)
    output tokens/s = B x O / cycle(B)        per-user tokens/s = O / cycle(B)

decode_step(B) is the time of one decode step: the bytes it reads (weights, and the KV cache of
the batch) over HBM bandwidth, or its FLOPS over the GPUs' dense FLOPS, whichever is longer, plus
a per-step and a per-request overhead and the collectives between the GPUs (tensor parallel
all-reduces; the all-gather and reduce-scatter of MoE layers under attention data parallelism).
prefill(I) is FLOPS bound (2 x active parameters x I, plus attention growing with I squared). In
MoE models every token also passes the MoE dispatch of every MoE layer on every GPU (routing,
permutation to its experts and back), a per-token cost weighed by the fitted MoE factor, in decode
and prefill alike. Dense models run tensor parallel, MoE models attention data parallel (each GPU
attends its own requests and keeps its own copy of every weight but the routed experts). The
batch is bounded by the KV cache memory the weights leave (each request holding the KV cache of
its prompt and of its whole output from admission, as TensorRT-LLM's default scheduler reserves
it), by a concurrency, or by a per-user speed target. Every figure comes from planner/data
(gpus.yaml, architectures.yaml, precisions.yaml, throughput.yaml); the efficiencies are fitted on
the calibration points (bench/throughput_bench.py) and checked on held-out ones
(throughput_holdout.yaml). Those figures' types and reading are throughput_data.py, the answer as
`planner throughput --json` reports it throughput_report.py, and the model as the stack deploys
it (vLLM, pipeline stages, a plan's units) costing/serving.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from planner.costing.throughput_data import (
    Architecture,
    CalibrationPoint,
    Fit,
    Gpu,
    ThroughputData,
)
from planner.errors import PlannerError

Limit = Literal["KV memory", "engine batch limit", "concurrency", "per-user speed"]
TimeBound = Literal["bandwidth", "compute", "overhead"]


@dataclass(frozen=True)
class Efficiencies:
    """The fitted figures as plain numbers (the fit varies them)."""

    bandwidth: float
    compute: float
    step_overhead_s: float
    request_overhead_s: float
    allreduce_latency_s: float
    moe_factor: float

    @classmethod
    def of(cls, fit: Fit) -> Efficiencies:
        return cls(
            bandwidth=fit.bandwidth_efficiency.value,
            compute=fit.compute_efficiency.value,
            step_overhead_s=fit.step_overhead_ms.value / 1e3,
            request_overhead_s=fit.request_overhead_us.value / 1e6,
            allreduce_latency_s=fit.allreduce_latency_us.value / 1e6,
            moe_factor=fit.moe_factor.value,
        )


@dataclass(frozen=True)
class Replica:
    """One model on N GPUs of one type at one precision: the numbers the step times use."""

    model: str
    arch: Architecture
    gpu_name: str
    gpu: Gpu
    gpus: int
    precision: str
    bytes_per_param: float
    kv_bytes_per_token: float  # in all the replica's memory, copies included
    flops_per_second: float  # all GPUs, dense, at the compute precision
    bandwidth_bytes_per_second: float  # all GPUs
    memory_bytes: float  # all GPUs
    weight_bytes: float
    kv_capacity_tokens: float
    max_batch: int
    # GPUs that share the per-request work of a step: N under attention data parallelism (each GPU
    # schedules and attends its own requests), 1 under tensor parallelism (every GPU does it all).
    request_parallelism: int
    # Weights every GPU holds a copy of under attention data parallelism (N - 1 extra copies of
    # all but the routed experts), read by each GPU every step.
    replicated_weight_bytes: float
    prefill_chunk_tokens: float
    kv_reserved_output_share: float


def _choices(kind: str, names: list[str]) -> str:
    return f"the catalog has {kind}: " + ", ".join(sorted(names))


def kv_cache(
    data: ThroughputData,
    arch: Architecture,
    card: Gpu,
    gpus: int,
    bytes_per_param: float,
    memory_utilization: float = 1.0,
) -> tuple[float, float, float, float]:
    """A replica's memory: (weight bytes, of them the copies attention data parallelism keeps,
    KV bytes a token of context takes in all its GPUs, tokens of context its KV cache holds).
    The one source of the KV cache for `planner throughput` and for plans (costing.unit_capacity,
    the batch limit, the KV ceiling and the context a replica admits).

        KV bytes = kv_free_fraction x (memory_utilization x N x memory - weights - N x reserve)

    which is both engines' rule, each with its own two figures: TensorRT-LLM (the calibration
    points) may use all of the memory (utilization 1) and gives the KV cache 0.9 of what is left
    after weights and its workspace (free_gpu_memory_fraction); vLLM (the deployed pools) may use
    gpu_memory_utilization of it and gives the KV cache all that is left after the weights and
    its profiled activations and CUDA graphs (kv_free_fraction 1: costing.deployed_throughput_data).
    A replica's cache is what the engine that serves it allocates, so neither rule is applied to
    the other engine. Copies are counted where the engine keeps them: tensor parallelism splits
    the KV heads over the GPUs and keeps a head shared by several GPUs on each (max(1, N / KV
    heads) copies; MLA's one latent on every GPU), vLLM as TensorRT-LLM; under attention data
    parallelism (MoE models in TensorRT-LLM) each GPU caches all heads of its own requests, no
    copies, but holds a copy of all weights except the routed experts."""
    attention_dp = arch.is_moe and data.settings.moe_parallelism.value == "attention-dp"
    replication = 1.0 if attention_dp else max(1.0, gpus / arch.kv_heads.value)
    kv_precision = arch.kv_cache_precision.value
    kv_bytes = (
        arch.kv_values_per_token() * data.settings.kv_bytes_per_value[kv_precision].value
    ) * replication
    memory = gpus * card.memory_gb.value * 1e9
    # Under attention data parallelism TensorRT-LLM splits only the routed experts over the GPUs:
    # attention, dense MLP layers, shared experts and embeddings are replicated (tp size 1).
    copies = (gpus - 1) * arch.unrouted_params() * bytes_per_param if attention_dp else 0.0
    weights = arch.total_params_b.value * 1e9 * bytes_per_param + copies
    reserve = gpus * data.settings.runtime_reserve_gb.value * 1e9
    free = memory * memory_utilization - weights - reserve
    capacity = max(free, 0.0) * data.settings.kv_free_fraction.value / kv_bytes
    return weights, copies, kv_bytes, capacity


def make_replica(
    data: ThroughputData,
    model: str,
    gpu: str,
    gpus: int,
    precision: str | None = None,
    memory_utilization: float = 1.0,
) -> Replica:
    """The replica, or a PlannerError naming the argument that is wrong. memory_utilization: the
    share of the GPUs' memory the engine may use (kv_cache)."""
    if model not in data.architectures:
        raise PlannerError.single(
            "MODEL",
            "",
            f"unknown model {model!r}; " + _choices("architectures of", list(data.architectures)),
        )
    if gpu not in data.gpus:
        raise PlannerError.single(
            "--gpu", "", f"unknown GPU {gpu!r}; " + _choices("GPUs", [*data.gpus])
        )
    if gpus < 1:
        raise PlannerError.single("--gpus", "", f"must be at least 1, not {gpus}")
    arch = data.architectures[model]
    precision = precision or "fp8"
    if precision not in data.precisions or precision not in data.settings.compute_precision:
        raise PlannerError.single(
            "--precision",
            "",
            f"unknown precision {precision!r}; "
            + _choices(
                "precisions", [p for p in data.precisions if p in data.settings.compute_precision]
            ),
        )
    card = data.gpus[gpu]
    compute = data.settings.compute_precision[precision].value
    bytes_per_param = data.precisions[precision].bytes_per_param.value
    attention_dp = arch.is_moe and data.settings.moe_parallelism.value == "attention-dp"
    weights, copies, kv_bytes, capacity = kv_cache(
        data, arch, card, gpus, bytes_per_param, memory_utilization
    )
    return Replica(
        model=model,
        arch=arch,
        gpu_name=gpu,
        gpu=card,
        gpus=gpus,
        precision=precision,
        bytes_per_param=bytes_per_param,
        kv_bytes_per_token=kv_bytes,
        flops_per_second=gpus * card.dense_tflops[compute].value * 1e12,
        bandwidth_bytes_per_second=gpus * card.bandwidth_tb_per_s.value * 1e12,
        memory_bytes=gpus * card.memory_gb.value * 1e9,
        weight_bytes=weights,
        kv_capacity_tokens=capacity,
        # Each attention data parallel rank schedules its own batch of up to max_batch requests.
        max_batch=int(data.settings.max_batch.value) * (gpus if attention_dp else 1),
        request_parallelism=gpus if attention_dp else 1,
        replicated_weight_bytes=copies,
        prefill_chunk_tokens=data.settings.prefill_chunk_tokens.value,
        kv_reserved_output_share=data.settings.kv_reserved_output_share.value,
    )


def experts_touched(arch: Architecture, batch: float) -> float:
    """The expected share of routed experts a batch of tokens reads (each picks top-k of E)."""
    if arch.experts is None or arch.experts_per_token is None:
        return 0.0
    miss = 1 - arch.experts_per_token.value / arch.experts.value
    return float(1 - miss**batch)


def _collectives_s(r: Replica, eff: Efficiencies, tokens: float, passes: float = 1.0) -> float:
    """The GPUs' collectives of a forward pass of `tokens` tokens, ring, each with a latency per
    pass (a share of one when prompts share a pass). Tensor parallel: two all-reduces a layer
    (attention and MLP outputs), 2 (N-1)/N of the payload each. Attention data parallel: no
    all-reduce (each GPU holds whole attention and dense layers); each MoE layer all-gathers the
    replica's tokens to every GPU and reduce-scatters the experts' outputs, (N-1)/N each."""
    if r.gpus == 1:
        return 0.0
    payload = tokens * r.arch.hidden_size.value * 2  # BF16 activations
    link = r.gpu.nvlink_gb_per_s.value * 1e9
    share = (r.gpus - 1) / r.gpus
    if r.request_parallelism > 1 and r.arch.moe_layers is not None:
        return (
            r.arch.moe_layers.value
            * 2
            * (eff.allreduce_latency_s * passes + share * payload / link)
        )
    return r.arch.layers.value * 2 * (eff.allreduce_latency_s * passes + 2 * share * payload / link)


def moe_dispatch_s(r: Replica, eff: Efficiencies, tokens: float) -> float:
    """The MoE layers' per-token work for `tokens` tokens: every GPU routes every token of the
    replica in every MoE layer, permutes it to its experts' order and weighs and sums their
    outputs back (TensorRT-LLM all-gathers the tokens of all attention data parallel ranks to
    each GPU; under tensor parallelism every GPU holds them all anyway). Counted as the MoE
    factor times one pass of each token's hidden state (BF16) through a GPU's HBM per MoE layer;
    the factor is fitted (the kernels' several passes, the collectives' wait, the padding of
    ranks to the largest)."""
    if r.arch.moe_layers is None:
        return 0.0
    per_token = r.arch.moe_layers.value * r.arch.hidden_size.value * 2
    return tokens * per_token * eff.moe_factor / (r.gpu.bandwidth_tb_per_s.value * 1e12)


@dataclass(frozen=True)
class StepTime:
    seconds: float
    memory_s: float
    compute_s: float
    overhead_s: float


def decode_step(r: Replica, eff: Efficiencies, batch: float, context: float) -> StepTime:
    """One decode step of `batch` requests with `context` tokens each on average."""
    arch = r.arch
    expert = arch.expert_params()
    dense = arch.total_params_b.value * 1e9 - expert
    # Weights are read at the memory's speed whatever routes them: the routed experts a batch
    # touches, once a step. What makes an MoE decode step slower than its roofline is per token:
    # each token is dispatched to its experts and gathered again on every GPU (moe_dispatch_s),
    # a cost that grows with the batch (TPOT(B) = a + b B) and is not shared by the attention
    # data parallel ranks, so small batches at a fast per-user speed are not slowed as if every
    # weight were read m times.
    expert_read = expert * experts_touched(arch, batch)
    weight_read = (dense + expert_read) * r.bytes_per_param + r.replicated_weight_bytes
    kv_read = batch * context * r.kv_bytes_per_token
    memory_s = (weight_read + kv_read) / (r.bandwidth_bytes_per_second * eff.bandwidth)
    attention = 4 * arch.layers.value * arch.query_heads.value * arch.head_dim.value * context
    flops = batch * (2 * arch.active_params_b.value * 1e9 + attention)
    compute_s = flops / (r.flops_per_second * eff.compute)
    per_request = batch * eff.request_overhead_s / r.request_parallelism
    overhead = (
        eff.step_overhead_s
        + per_request
        + _collectives_s(r, eff, batch)
        + moe_dispatch_s(r, eff, batch)
    )
    return StepTime(
        seconds=max(memory_s, compute_s) + overhead,
        memory_s=memory_s,
        compute_s=compute_s,
        overhead_s=overhead,
    )


def prefill_seconds(
    r: Replica, eff: Efficiencies, input_tokens: float, cached_fraction: float = 0.0
) -> float:
    """Time of one request's prompt: its compute, 2 x active x I plus causal attention (I^2), the
    collectives, and in MoE models each prompt token's MoE dispatch, as a decoded token's.

    With prefix caching the first `cached_fraction` of the prompt is already in the KV cache:
    only the rest is computed, its tokens still attending to the cached ones (attention over
    positions c..I costs I^2 - c^2)."""
    arch = r.arch
    cached = input_tokens * cached_fraction
    new = input_tokens - cached
    linear = 2 * arch.active_params_b.value * 1e9 * new
    attention = 2 * arch.layers.value * arch.query_heads.value * arch.head_dim.value
    flops = linear + attention * (input_tokens**2 - cached**2)
    passes = new / r.prefill_chunk_tokens
    compute = flops / (r.flops_per_second * eff.compute)
    return compute + _collectives_s(r, eff, new, passes) + moe_dispatch_s(r, eff, new)


@dataclass(frozen=True)
class Serving:
    """What one replica serves for one request shape and load."""

    replica: Replica
    input_tokens: int
    output_tokens: int
    batch: int
    kv_batch: int
    limit: Limit
    time_bound: TimeBound
    output_tokens_per_second: float
    total_tokens_per_second: float
    tokens_per_user: float
    time_to_first_token_s: float
    decode_step_s: float
    prefill_s: float
    target_met: bool


def _cycle(
    r: Replica, eff: Efficiencies, batch: float, i: int, o: int, cached: float = 0.0
) -> tuple[float, StepTime]:
    step = decode_step(r, eff, batch, i + o / 2)
    return o * step.seconds + batch * prefill_seconds(r, eff, i, cached), step


def kv_batch(r: Replica, input_tokens: int, output_tokens: int) -> int:
    """Requests the KV cache holds at once: each holds its prompt and the share of its output the
    scheduler reserves on admission (all of it under TensorRT-LLM's GUARANTEED_NO_EVICT, so a
    request never waits for memory mid-answer), not only its average context (I + O/2)."""
    reserved = input_tokens + r.kv_reserved_output_share * output_tokens
    return math.floor(r.kv_capacity_tokens / reserved)


def serve(
    r: Replica,
    eff: Efficiencies,
    input_tokens: int,
    output_tokens: int,
    *,
    tokens_per_user: float | None = None,
    concurrency: int | None = None,
    cached_input_fraction: float = 0.0,
    stages: int = 1,
) -> Serving:
    """Throughput at maximum load, at a concurrency, or at the largest batch meeting a per-user
    speed; a request that does not fit the KV cache is an error naming the shape.
    cached_input_fraction: the share of each prompt that is a prefix already cached (prefix
    caching), whose prefill is skipped; its KV cache is still counted per request.

    `stages`: `r` is one of that many pipeline stages of a replica (1/stages of the layers each,
    planner/costing/serving.py). Every stage works all the time only with a micro-batch in flight
    for each stage: the requests in flight are the micro-batch times the stages, and those are
    what the KV cache (a stage holds its layers' share of every request's), a concurrency and
    the engine's limit count. A token passes every stage, so a user reads one a stage step
    times the stages, and a first token comes after every stage's prefill and step. With fewer
    requests in flight than stages, the stages idle in turn and serve that share of the time.
    `batch` and `kv_batch` count requests in flight in the whole replica, so its output is the
    batch times each user's speed."""
    if input_tokens < 1 or output_tokens < 1:
        flag = "--input-tokens" if input_tokens < 1 else "--output-tokens"
        raise PlannerError.single(flag, "", "must be at least 1")
    if not 0.0 <= cached_input_fraction <= 1.0:
        raise PlannerError.single(
            "cached_input_fraction",
            "",
            f"must be from 0 to 1, not {cached_input_fraction}",
        )
    c = cached_input_fraction
    if r.kv_capacity_tokens < input_tokens + output_tokens:
        copies = r.replicated_weight_bytes
        weights = f"{(r.weight_bytes - copies) / 1e9:,.0f} GB of weights"
        if copies:
            weights += f" and {copies / 1e9:,.0f} GB of copies of all but the routed experts"
        raise PlannerError.single(
            "--gpus",
            "",
            f"{r.model} in {r.precision} ({weights}) leaves no room for "
            f"one request of {input_tokens + output_tokens:,} tokens on {r.gpus}x {r.gpu_name} "
            f"({r.memory_bytes / 1e9:,.0f} GB); give more --gpus or a lower --precision",
        )
    if stages < 1:
        raise ValueError(f"a replica has at least one stage, not {stages}")
    most = max(kv_batch(r, input_tokens, output_tokens), 1)
    # The requests in flight at most, the whole replica's: what the KV cache holds, the engine's
    # limit (the scheduler's, over every request it runs at once: throughput.yaml max_batch),
    # a concurrency. In this order, so that a concurrency equal to the engine's limit is named
    # as the limit, as it always was.
    in_flight, limit = most, "KV memory"
    if r.max_batch < in_flight:
        in_flight, limit = r.max_batch, "engine batch limit"
    if concurrency is not None and concurrency < in_flight:
        in_flight, limit = concurrency, "concurrency"
    # A stage's micro-batch: the requests shared out over the stages (the scheduler's batches
    # differ by one where they do not divide: their mean), one each below one a stage.
    batch = in_flight / stages if in_flight >= stages else 1.0
    target_met = True
    if tokens_per_user is not None:
        # A user reads a token every stages x a stage's step.
        stage_speed = tokens_per_user * stages
        cycle, _ = _cycle(r, eff, batch, input_tokens, output_tokens, c)
        if output_tokens / cycle < stage_speed:
            low, high = 1, math.floor(batch)  # the speed falls as the batch grows: bisect
            if output_tokens / _cycle(r, eff, 1, input_tokens, output_tokens, c)[0] < stage_speed:
                high, target_met = 1, False
            while low < high:
                middle = (low + high + 1) // 2
                speed = output_tokens / _cycle(r, eff, middle, input_tokens, output_tokens, c)[0]
                if speed >= stage_speed:
                    low = middle
                else:
                    high = middle - 1
            batch, limit = float(low), "per-user speed"
    # Micro-batches in flight: one a stage, or one a request while fewer than the stages.
    micro_batches = min(stages, in_flight)
    cycle, step = _cycle(r, eff, batch, input_tokens, output_tokens, c)
    prefill = prefill_seconds(r, eff, input_tokens, c)
    requests = round(batch * micro_batches)
    # Each user reads output_tokens a cycle of every stage's turn. (Written so that one stage
    # computes exactly what it did before stages were modelled: x 1 and / 1 are exact.)
    per_user = output_tokens / (cycle * stages)
    output_tps = batch * micro_batches * output_tokens / (cycle * stages)
    waiting = 0.0
    if concurrency is not None and concurrency > requests:
        # Queued until a slot frees: a request holds one for stages x cycle.
        waiting = (concurrency - requests) * cycle * stages / requests
    decode_bound = step.memory_s >= step.compute_s
    parts: dict[TimeBound, float] = {
        "bandwidth": output_tokens * step.memory_s if decode_bound else 0.0,
        "compute": (0.0 if decode_bound else output_tokens * step.compute_s) + batch * prefill,
        "overhead": output_tokens * step.overhead_s,
    }
    time_bound = max(parts, key=lambda k: parts[k])
    return Serving(
        replica=r,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        batch=requests,
        kv_batch=most,
        limit=limit,  # type: ignore[arg-type]
        time_bound=time_bound,
        output_tokens_per_second=output_tps,
        total_tokens_per_second=output_tps * (input_tokens + output_tokens) / output_tokens,
        tokens_per_user=per_user,
        time_to_first_token_s=waiting + prefill * stages + step.seconds * stages,
        decode_step_s=step.seconds,
        prefill_s=prefill,
        target_met=target_met,
    )


def predict(data: ThroughputData, eff: Efficiencies, point: CalibrationPoint) -> float:
    """The model's output tokens/s for a measured point (calibration or held out)."""
    r = make_replica(data, point.model, point.gpu, point.gpus, point.precision)
    return serve(
        r,
        eff,
        point.input_tokens,
        point.output_tokens,
        concurrency=point.concurrency,
        tokens_per_user=point.tokens_per_user,
    ).output_tokens_per_second
