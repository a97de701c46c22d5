"""The throughput model's answer as `planner throughput --json` reports it: the serving figures,
the fit's error (and how many of its points measure the model), and every catalog figure the
answer rests on with its source and date."""

from __future__ import annotations

from typing import Any

from planner.catalog import Figure, TextFigure
from planner.costing.throughput import Replica, Serving
from planner.costing.throughput_data import ThroughputData


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
