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
(throughput_holdout.yaml).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ValidationError, field_validator, model_validator

from planner.catalog import DATA_DIR, Figure, Precision, TextFigure, _Data
from planner.errors import PlannerError
from planner.inputs.loader import LineIndex, field_path

Limit = Literal["KV memory", "engine batch limit", "concurrency", "per-user speed"]
TimeBound = Literal["bandwidth", "compute", "overhead"]


class Gpu(_Data):
    name: str
    memory_gb: Figure
    bandwidth_tb_per_s: Figure
    nvlink_gb_per_s: Figure
    dense_tflops: dict[str, Figure]


class Architecture(_Data):
    layers: Figure
    query_heads: Figure
    kv_heads: Figure
    head_dim: Figure
    hidden_size: Figure
    total_params_b: Figure
    active_params_b: Figure
    experts: Figure | None = None
    experts_per_token: Figure | None = None
    # Layers with routed experts (Llama 4 Maverick alternates dense and MoE layers, DeepSeek's
    # first three are dense): each token's MoE dispatch and the attention data parallel
    # collectives happen once per MoE layer.
    moe_layers: Figure | None = None
    attention: Literal["gqa", "mla"]
    latent_dim: Figure | None = None
    # Not used by the model (the attention data parallel copies are all but the routed experts);
    # optional, kept for catalogs that state it.
    attention_params_b: Figure | None = None
    kv_cache_precision: TextFigure
    # Tokens of one request (prompt and completion) the model takes: `planner throughput`
    # refuses longer ones for every architecture, in the catalog's models.yaml or not.
    context_window: Figure

    @model_validator(mode="after")
    def _moe_figures_together(self) -> Architecture:
        moe = (self.experts, self.experts_per_token, self.moe_layers)
        if any(f is not None for f in moe) and any(f is None for f in moe):
            raise ValueError("an MoE architecture needs experts, experts_per_token and moe_layers")
        return self

    @property
    def is_moe(self) -> bool:
        return self.experts is not None

    def kv_values_per_token(self) -> float:
        """Values cached per token of context, all layers: K and V per KV head, or MLA's latent."""
        if self.attention == "mla":
            if self.latent_dim is None:
                raise ValueError("an mla architecture needs latent_dim")
            return self.layers.value * self.latent_dim.value
        return self.layers.value * self.kv_heads.value * self.head_dim.value * 2

    def expert_params(self) -> float:
        """Parameters (not billions) in routed experts: total - active = experts x (1 - k / E)."""
        if self.experts is None or self.experts_per_token is None:
            return 0.0
        share = self.experts_per_token.value / self.experts.value
        return (self.total_params_b.value - self.active_params_b.value) * 1e9 / (1 - share)

    def unrouted_params(self) -> float:
        """Parameters (not billions) outside the routed experts: attention, dense MLP layers,
        shared experts, embeddings. Under attention data parallelism every GPU keeps them all."""
        return self.total_params_b.value * 1e9 - self.expert_params()


class Settings(_Data):
    runtime_reserve_gb: Figure
    # Share of a request's output tokens whose KV cache the scheduler reserves when it admits
    # the request (1: the whole output, TensorRT-LLM's GUARANTEED_NO_EVICT).
    kv_reserved_output_share: Figure
    max_batch: Figure
    prefill_chunk_tokens: Figure
    kv_free_fraction: Figure
    moe_parallelism: TextFigure
    compute_precision: dict[str, TextFigure]
    kv_bytes_per_value: dict[str, Figure]

    @field_validator("moe_parallelism")
    @classmethod
    def _known_parallelism(cls, figure: TextFigure) -> TextFigure:
        if figure.value not in ("attention-dp", "tensor"):
            raise ValueError(f"must be attention-dp or tensor, not {figure.value!r}")
        return figure


class Fit(_Data):
    """The fitted efficiencies, and how well they reproduce the calibration points."""

    bandwidth_efficiency: Figure
    compute_efficiency: Figure
    step_overhead_ms: Figure
    request_overhead_us: Figure
    allreduce_latency_us: Figure
    moe_factor: Figure
    points: int
    geometric_mean_error: float
    worst_error: float
    worst_point: str
    # The same on the held-out points (throughput_holdout.yaml, outliers aside), and how many of
    # them the model misses by more than 2x.
    holdout_points: int
    holdout_geometric_mean_error: float
    holdout_worst_error: float
    holdout_worst_point: str
    holdout_beyond_2x: int
    source: str
    date: str


class CalibrationPoint(_Data):
    model: str
    gpu: str
    gpus: int
    precision: str = "fp8"
    input_tokens: int
    output_tokens: int
    output_tokens_per_second: float
    concurrency: int | None = None
    tokens_per_user: float | None = None
    source: str
    date: str

    def label(self) -> str:
        load = "max load"
        if self.concurrency:
            load = f"concurrency {self.concurrency}"
        elif self.tokens_per_user:
            load = f"{self.tokens_per_user:g} tok/s/user"
        return (
            f"{self.model} {self.gpus}x {self.gpu} {self.input_tokens}/{self.output_tokens} {load}"
        )


class HoldoutPoint(CalibrationPoint):
    """A measured point the fit never sees: the model's check (throughput_holdout.yaml)."""

    engine: str
    # Why the point measures something the model does not describe (from its source), if so.
    outlier: str | None = None


class ThroughputData(_Data):
    gpus: dict[str, Gpu]
    architectures: dict[str, Architecture]
    precisions: dict[str, Precision]
    settings: Settings
    fit: Fit
    calibration: list[CalibrationPoint]
    holdout: list[HoldoutPoint]


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


def _read(directory: Path, name: str) -> Any:
    path = directory / name
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PlannerError.single(str(path), "", f"cannot read catalog file: {exc}") from None


def load_throughput_data(directory: Path = DATA_DIR) -> ThroughputData:
    throughput = _read(directory, "throughput.yaml")
    raw = {
        "gpus": _read(directory, "gpus.yaml")["gpus"],
        "architectures": _read(directory, "architectures.yaml")["architectures"],
        "precisions": _read(directory, "precisions.yaml")["precisions"],
        "settings": throughput["settings"],
        "fit": throughput["fit"],
        "calibration": _read(directory, "throughput_calibration.yaml")["points"],
        "holdout": _read(directory, "throughput_holdout.yaml")["points"],
    }
    try:
        return ThroughputData.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        section, *rest = first["loc"]
        # Name the file the figure is in, the field as it is spelled there, and its line.
        name, key = _FILES[str(section)]
        loc = (key, *rest)
        path = directory / name
        line = LineIndex(yaml.compose(path.read_text(encoding="utf-8"))).line(loc)
        raise PlannerError.single(str(path), field_path(loc), first["msg"], line) from None


# Where each section of ThroughputData comes from: its file, and its key in that file.
_FILES: dict[str, tuple[str, str]] = {
    "gpus": ("gpus.yaml", "gpus"),
    "architectures": ("architectures.yaml", "architectures"),
    "precisions": ("precisions.yaml", "precisions"),
    "settings": ("throughput.yaml", "settings"),
    "fit": ("throughput.yaml", "fit"),
    "calibration": ("throughput_calibration.yaml", "points"),
    "holdout": ("throughput_holdout.yaml", "points"),
}


@cache
def default_throughput_data() -> ThroughputData:
    return load_throughput_data()


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
    The one source of the KV cache for `planner throughput` and for plans (costs.unit_capacity,
    the batch limit, the KV ceiling and the context a replica admits).

        KV bytes = kv_free_fraction x (memory_utilization x N x memory - weights - N x reserve)

    which is both engines' rule, each with its own two figures: TensorRT-LLM (the calibration
    points) may use all of the memory (utilization 1) and gives the KV cache 0.9 of what is left
    after weights and its workspace (free_gpu_memory_fraction); vLLM (the deployed pools) may use
    gpu_memory_utilization of it and gives the KV cache all that is left after the weights and
    its profiled activations and CUDA graphs (kv_free_fraction 1: costs.deployed_throughput_data).
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
    r: Replica, eff: Efficiencies, batch: int, i: int, o: int, cached: float = 0.0
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
) -> Serving:
    """Throughput at maximum load, at a concurrency, or at the largest batch meeting a per-user
    speed; a request that does not fit the KV cache is an error naming the shape.
    cached_input_fraction: the share of each prompt that is a prefix already cached (prefix
    caching), whose prefill is skipped; its KV cache is still counted per request."""
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
    most = max(kv_batch(r, input_tokens, output_tokens), 1)
    batch, limit = most, "KV memory"
    if r.max_batch < most:
        batch, limit = r.max_batch, "engine batch limit"
    if concurrency is not None and concurrency < batch:
        batch, limit = concurrency, "concurrency"
    target_met = True
    if tokens_per_user is not None:
        cycle, _ = _cycle(r, eff, batch, input_tokens, output_tokens, c)
        if output_tokens / cycle < tokens_per_user:
            low, high = 1, batch  # the per-user speed falls as the batch grows: bisect
            if (
                output_tokens / _cycle(r, eff, 1, input_tokens, output_tokens, c)[0]
                < tokens_per_user
            ):
                high, target_met = 1, False
            while low < high:
                middle = (low + high + 1) // 2
                speed = output_tokens / _cycle(r, eff, middle, input_tokens, output_tokens, c)[0]
                if speed >= tokens_per_user:
                    low = middle
                else:
                    high = middle - 1
            batch, limit = low, "per-user speed"
    cycle, step = _cycle(r, eff, batch, input_tokens, output_tokens, c)
    prefill = prefill_seconds(r, eff, input_tokens, c)
    output_tps = batch * output_tokens / cycle
    waiting = 0.0
    if concurrency is not None and concurrency > batch:
        waiting = (concurrency - batch) * cycle / batch  # queued until a slot frees
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
        batch=batch,
        kv_batch=most,
        limit=limit,  # type: ignore[arg-type]
        time_bound=time_bound,
        output_tokens_per_second=output_tps,
        total_tokens_per_second=output_tps * (input_tokens + output_tokens) / output_tokens,
        tokens_per_user=output_tokens / cycle,
        time_to_first_token_s=waiting + prefill + step.seconds,
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


def _figure(figure: Figure | TextFigure, unit: str = "") -> dict[str, Any]:
    shown: dict[str, Any] = {"value": figure.value, "source": figure.source, "date": figure.date}
    if unit:
        shown["unit"] = unit
    return shown


def figures_used(data: ThroughputData, r: Replica) -> dict[str, dict[str, Any]]:
    """Every catalog figure the answer rests on, with its source and date."""
    arch, gpu, fit = r.arch, r.gpu, data.fit
    compute = data.settings.compute_precision[r.precision]
    used: dict[str, dict[str, Any]] = {
        "gpu_memory": _figure(gpu.memory_gb, "GB per GPU"),
        "gpu_bandwidth": _figure(gpu.bandwidth_tb_per_s, "TB/s per GPU"),
        "gpu_dense_flops": _figure(gpu.dense_tflops[compute.value], f"{compute.value} TFLOPS"),
        "gpu_nvlink": _figure(gpu.nvlink_gb_per_s, "GB/s each way"),
        "compute_precision": _figure(compute),
        "bytes_per_param": _figure(data.precisions[r.precision].bytes_per_param),
        "kv_cache_precision": _figure(arch.kv_cache_precision),
        "layers": _figure(arch.layers),
        "query_heads": _figure(arch.query_heads),
        "kv_heads": _figure(arch.kv_heads),
        "head_dim": _figure(arch.head_dim),
        "hidden_size": _figure(arch.hidden_size),
        "total_params": _figure(arch.total_params_b, "billion"),
        "active_params": _figure(arch.active_params_b, "billion"),
    }
    if arch.latent_dim is not None:
        used["latent_dim"] = _figure(arch.latent_dim)
    if arch.experts is not None and arch.experts_per_token is not None:
        used["experts"] = _figure(arch.experts)
        used["experts_per_token"] = _figure(arch.experts_per_token)
        if arch.moe_layers is not None:
            used["moe_layers"] = _figure(arch.moe_layers)
        used["moe_factor"] = _figure(
            fit.moe_factor, "HBM passes of a token's hidden state per MoE layer"
        )
        used["moe_parallelism"] = _figure(data.settings.moe_parallelism)
    used["runtime_reserve"] = _figure(data.settings.runtime_reserve_gb, "GB per GPU")
    used["kv_free_fraction"] = _figure(data.settings.kv_free_fraction)
    used["kv_reserved_output_share"] = _figure(data.settings.kv_reserved_output_share)
    used["max_batch"] = _figure(data.settings.max_batch, "requests")
    used["prefill_chunk_tokens"] = _figure(data.settings.prefill_chunk_tokens, "tokens")
    used["bandwidth_efficiency"] = _figure(fit.bandwidth_efficiency)
    used["compute_efficiency"] = _figure(fit.compute_efficiency)
    used["step_overhead"] = _figure(fit.step_overhead_ms, "ms")
    used["request_overhead"] = _figure(fit.request_overhead_us, "us per request and step")
    if r.gpus > 1:
        used["allreduce_latency"] = _figure(fit.allreduce_latency_us, "us")
    return used


def calibration_points_of(data: ThroughputData, model: str) -> int:
    """Calibration points that measure this model: with none, the fit's stated error does not
    cover its answers (`planner throughput` and plans say it is unvalidated)."""
    return sum(p.model == model for p in data.calibration)


def serving_report(data: ThroughputData, s: Serving) -> dict[str, Any]:
    """The answer as JSON-ready data (rounded: the model is no better than its fit)."""
    r = s.replica
    return {
        "model": r.model,
        "gpu": r.gpu_name,
        "gpus": r.gpus,
        "precision": r.precision,
        "input_tokens": s.input_tokens,
        "output_tokens": s.output_tokens,
        "output_tokens_per_second": round(s.output_tokens_per_second, 1),
        "total_tokens_per_second": round(s.total_tokens_per_second, 1),
        "output_tokens_per_second_per_gpu": round(s.output_tokens_per_second / r.gpus, 1),
        "tokens_per_user": round(s.tokens_per_user, 2),
        "batch": s.batch,
        "kv_cache_batch": s.kv_batch,
        "limit": s.limit,
        "time_bound": s.time_bound,
        "time_to_first_token_s": round(s.time_to_first_token_s, 4),
        "decode_step_ms": round(s.decode_step_s * 1e3, 3),
        "prefill_ms": round(s.prefill_s * 1e3, 3),
        "weights_gb": round(r.weight_bytes / 1e9, 1),
        "kv_cache_gb": round(r.kv_capacity_tokens * r.kv_bytes_per_token / 1e9, 1),
        "kv_bytes_per_token": round(r.kv_bytes_per_token),
        "fit": {
            "points": data.fit.points,
            # How many of them measure this model: with none, the fit's error says nothing of
            # this answer (docs/cost-model.md lists held-out misses, DeepSeek's among them).
            "points_of_this_model": calibration_points_of(data, r.model),
            "geometric_mean_error": data.fit.geometric_mean_error,
            "worst_error": data.fit.worst_error,
            "worst_point": data.fit.worst_point,
            # The check on measured points the fit never saw (throughput_holdout.yaml).
            "holdout_points": data.fit.holdout_points,
            "holdout_points_of_this_model": sum(
                p.model == r.model and p.outlier is None for p in data.holdout
            ),
            "holdout_geometric_mean_error": data.fit.holdout_geometric_mean_error,
            "holdout_worst_error": data.fit.holdout_worst_error,
            "holdout_worst_point": data.fit.holdout_worst_point,
            "source": data.fit.source,
        },
        "figures": figures_used(data, r),
    }
