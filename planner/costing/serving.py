"""The throughput model as the stack deploys it: the catalog's throughput data with vLLM's
settings (deployed_throughput_data), a replica cut into pipeline stages (serving_replica,
serve_replica), and what one unit serves at a request shape and per-user speed
(unit_throughput)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from planner.catalog import Catalog, Figure, TextFigure
from planner.costing.settings import EPSILON
from planner.costing.throughput import (
    Efficiencies,
    Replica,
    Serving,
    decode_step,
    make_replica,
    serve,
)
from planner.costing.throughput_data import ThroughputData, throughput_data, throughput_data_in
from planner.costing.units import Capacity, Fit


def deployed_throughput_data(catalog: Catalog) -> ThroughputData:
    """The throughput model's data with the engine the stack deploys: vLLM with
    --tensor-parallel-size and no expert or attention data parallelism (stacks/serving.py), so
    an MoE replica keeps one batch and (for MLA) a copy of the KV latent on every GPU, and its
    KV cache is vLLM's (throughput.kv_cache, with the memory utilization of the plan), filled as
    requests grow rather than reserved for their whole output. The
    calibration's MoE points ran TensorRT-LLM with attention data parallelism (throughput.yaml
    moe_parallelism): pricing that configuration would overstate what the deployed pools serve
    (about 2x for Llama 4 at 30 tok/s a user)."""
    return _deployed(catalog.directory)


@cache
def _deployed(directory: Path) -> ThroughputData:
    """deployed_throughput_data of the catalog read from `directory`, made once."""
    data = throughput_data_in(directory)
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


def kv_gb_per_token(catalog: Catalog, model_id: str) -> tuple[float, str]:
    """A token's KV cache at the precision the model is served with (architectures.yaml), and
    that precision."""
    data = throughput_data(catalog)
    arch = data.architectures[model_id]
    precision = arch.kv_cache_precision.value
    per_value = data.settings.kv_bytes_per_value[precision].value
    return arch.kv_values_per_token() * per_value / 1e9, precision


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
        workload (planning.decide leaves it out). The throughput model's own per-user speed
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


def unit_replica(
    catalog_directory: Path, model_id: str, gpu: str, fit: Fit, memory_utilization: float
) -> Replica:
    """One replica of a unit of this fit, as the stack deploys it with the throughput data of the
    catalog read from `catalog_directory` (Capacity.catalog_directory)."""
    return serving_replica(
        _deployed(catalog_directory),
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
    data: ThroughputData,
    stage: Replica,
    pipeline_parallel: int,
    input_tokens: int,
    output_tokens: int,
    *,
    tokens_per_user: float | None = None,
    concurrency: int | None = None,
    cached_input_fraction: float = 0.0,
) -> Serving:
    """What a replica of pipeline_parallel stages (serving_replica) serves: with a micro-batch
    in flight for each stage every stage works all the time, so the replica serves what a stage
    does, holding PP micro-batches in its KV cache; a token passes every stage, so a user reads
    1/PP of a stage's speed and a first token comes after every stage (throughput.serve
    `stages`). The hop between nodes (EFA) is not modelled: an optimistic simplification for
    multi-node replicas. `data` gives the fitted efficiencies (the calibrated and the deployed
    data share their fit)."""
    return serve(
        stage,
        Efficiencies.of(data.fit),
        input_tokens,
        output_tokens,
        tokens_per_user=tokens_per_user,
        concurrency=concurrency,
        cached_input_fraction=cached_input_fraction,
        stages=pipeline_parallel,
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
    data = _deployed(capacity.catalog_directory)
    served = serve_replica(
        data,
        unit_replica(
            capacity.catalog_directory,
            capacity.model_id,
            capacity.gpu,
            fit,
            capacity.memory_utilization,
        ),
        pipeline,
        input_tokens,
        output_tokens,
        tokens_per_user=user_output_tps,
        cached_input_fraction=cached_input_fraction,
    )
    replicas = fit.replicas_per_node
    alone = decode_step(
        served.replica,
        Efficiencies.of(data.fit),
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
