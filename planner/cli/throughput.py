"""`planner throughput MODEL --gpu G --gpus N`: what one replica serves (tokens/s, batch, first
token), as plans price it or as the calibration points were measured, refusing what vLLM would
not run."""

from __future__ import annotations

import argparse
import json
from typing import Any

from planner import costing
from planner.catalog import Figure, default_catalog
from planner.cli import options
from planner.costing import throughput, throughput_data, throughput_report
from planner.errors import PlannerError
from planner.fmt import tokens_count, tokens_per_second
from planner.outputs import versioned


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tput = commands.add_parser(
        "throughput", help="what one replica of N GPUs serves: tokens/s, batch, first token"
    )
    tput.add_argument("model", metavar="MODEL", help="a model of planner/data/architectures.yaml")
    tput.add_argument("--gpu", required=True, help="the GPU type: h100 or h200 (gpus.yaml)")
    tput.add_argument(
        "--gpus",
        type=options.count,
        required=True,
        help="GPUs in the replica (tensor parallel size): a group a node has (1, 2, 4, 8) that "
        "divides the model's attention heads",
    )
    tput.add_argument(
        "--nodes",
        type=options.count,
        default=1,
        help="nodes the replica spans, --gpus each: tensor parallel in a node, pipeline "
        "parallel across nodes, as plans serve a model that fits no node (default 1)",
    )
    tput.add_argument(
        "--calibrated",
        action="store_true",
        help="serve as the calibration points were measured (TensorRT-LLM: MoE models attention "
        "data parallel, the KV cache 0.9 of the memory left) instead of as plans price a replica "
        "(vLLM as the stack deploys it: tensor parallel, within the memory reserve)",
    )
    tput.add_argument("--precision", help="weight precision: fp8 (default), bf16 or int4")
    tput.add_argument(
        "--input-tokens", type=options.count, required=True, help="prompt tokens of one request"
    )
    tput.add_argument(
        "--output-tokens",
        type=options.count,
        required=True,
        help="completion tokens of one request",
    )
    load = tput.add_mutually_exclusive_group()
    load.add_argument(
        "--tokens-per-user",
        type=options.positive,
        help="the output tokens/s each user must get (default: maximum load)",
    )
    load.add_argument(
        "--concurrency",
        type=options.count,
        help="requests in flight at once (default: maximum load)",
    )
    options.add_json(tput)
    tput.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # As plans price a replica (vLLM as the stack deploys it, within the default memory
    # reserve), or as the calibration points were measured (TensorRT-LLM).
    reserve = default_catalog().defaults.memory_reserve
    if args.calibrated:
        data, utilization = throughput_data.default_throughput_data(), 1.0
    else:
        data, utilization = costing.deployed_throughput_data(default_catalog()), 1 - reserve.value
    known_arch = data.architectures.get(args.model)
    if known_arch is not None and args.nodes > known_arch.layers.value:
        # A pipeline stage holds whole layers: one a node at most.
        raise PlannerError.single(
            "--nodes",
            "",
            f"must be at most {args.model}'s {known_arch.layers.value:g} layers, not {args.nodes}",
        )
    replica = costing.serving_replica(
        data, args.model, args.gpu, args.gpus, args.nodes, args.precision, utilization
    )
    arch = data.architectures[args.model]
    gpus_a_node = {
        name: instance.gpus
        for name, instance in default_catalog().instances.items()
        if instance.gpu == args.gpu
    }
    groups = _check_tensor_parallel(args.model, arch, args.gpu, args.gpus, gpus_a_node)
    within_context(
        args.model,
        arch.context_window.value,
        args.input_tokens,
        args.output_tokens,
        "architectures.yaml",
    )
    served = costing.serve_replica(
        data,
        replica,
        args.nodes,
        args.input_tokens,
        args.output_tokens,
        tokens_per_user=args.tokens_per_user,
        concurrency=args.concurrency,
    )
    if not served.target_met:
        larger = max(groups) > args.gpus
        raise PlannerError.single(
            "--tokens-per-user",
            "",
            f"{args.tokens_per_user:g} tokens/s per user is out of reach: {args.model} on "
            f"{args.gpus}x {args.gpu} gives one user "
            f"{tokens_per_second(served.tokens_per_user)} tokens/s "
            "at most, so no batch reaches it; "
            + (
                f"give more --gpus (up to {max(groups)}) or a lower target"
                if larger
                else "a node has no larger group: give a lower target"
            ),
        )
    report = _replica_report(args, data, served, utilization, reserve)
    if args.json:
        print(json.dumps(versioned("throughput", report), indent=2))
        return 0
    load = (
        f"at {args.tokens_per_user:g} tokens/s per user"
        if args.tokens_per_user is not None
        else f"at concurrency {args.concurrency}"
        if args.concurrency is not None
        else "at maximum load"
    )
    nodes = f" a node x {args.nodes} nodes (pipeline parallel)" if args.nodes > 1 else ""
    print(
        f"{args.model} on {args.gpus}x {args.gpu}{nodes} ({report['precision']}), "
        f"{args.input_tokens:,} input / {args.output_tokens:,} output tokens, {load}, "
        f"{report['serving']}:"
    )
    print(
        f"  {tokens_per_second(report['output_tokens_per_second'], 0)} output tokens/s "
        f"({tokens_per_second(report['total_tokens_per_second'], 0)} total), "
        f"{tokens_per_second(report['tokens_per_user'])} per user"
    )
    print(
        f"  batch {report['batch']:,} (the KV cache holds {report['kv_cache_batch']:,}); "
        f"limited by {report['limit']}, time spent mostly on {report['time_bound']}"
    )
    print(
        f"  time to first token {report['time_to_first_token_s']:,.3f} s; "
        f"decode step {report['decode_step_ms']:,.1f} ms, prefill {report['prefill_ms']:,.1f} ms"
    )
    print(
        f"  weights {report['weights_gb']:,.1f} GB, KV cache {report['kv_cache_gb']:,.1f} GB "
        f"({report['kv_bytes_per_token']:,} bytes a token)"
    )
    fit = report["fit"]
    print(
        f"  model error on its {fit['points']} calibration points: geometric mean "
        f"{fit['geometric_mean_error']}x, worst {fit['worst_error']}x ({fit['worst_point']})"
    )
    if fit["points_of_this_model"] == 0:
        print(
            f"  unvalidated: no measured point of {args.model} is among them, so that error does "
            "not cover this answer (docs/cost-model.md: held-out points it misses)"
        )
    else:
        print(f"  {fit['points_of_this_model']} of them measure {args.model}")
    print(
        f"  on {fit['holdout_points']} held-out points it was not fitted on: geometric mean "
        f"{fit['holdout_geometric_mean_error']}x, worst {fit['holdout_worst_error']}x "
        f"({fit['holdout_worst_point']}); {fit['holdout_points_of_this_model']} of them measure "
        f"{args.model}"
    )
    print("  figures used:")
    for name, figure in report["figures"].items():
        unit = f" {figure['unit']}" if "unit" in figure else ""
        print(f"    {name}: {figure['value']}{unit} ({figure['source']}, {figure['date']})")
    return 0


def _replica_report(
    args: argparse.Namespace,
    data: throughput_data.ThroughputData,
    served: throughput.Serving,
    utilization: float,
    reserve: Figure,
) -> dict[str, Any]:
    """serving_report of a replica of --nodes pipeline stages (its figures are one stage's:
    weights and KV cache are counted on every node), saying how it is served."""
    report = throughput_report.serving_report(data, served)
    nodes = args.nodes
    report["nodes"] = nodes
    report["weights_gb"] = round(served.replica.weight_bytes * nodes / 1e9, 1)
    report["kv_cache_gb"] = round(
        served.replica.kv_capacity_tokens * served.replica.kv_bytes_per_token * nodes / 1e9, 1
    )
    report["kv_cache_tokens"] = round(served.replica.kv_capacity_tokens)
    report["kv_bytes_per_token"] = round(served.replica.kv_bytes_per_token * nodes)
    report["output_tokens_per_second_per_gpu"] = round(
        served.output_tokens_per_second / (args.gpus * nodes), 1
    )
    report["serving"] = (
        "as calibrated (TensorRT-LLM, as the calibration points were measured)"
        if args.calibrated
        else "as plans price it (vLLM as the stack deploys it)"
    )
    if not args.calibrated:
        report["figures"]["memory_utilization"] = {
            "value": round(utilization, 4),
            "source": f"1 - memory_reserve {reserve.value:g} (assumptions.yaml: {reserve.source})",
            "date": reserve.date,
        }
    return report


def within_context(
    model: str, window: float, input_tokens: int, output_tokens: int, source: str = "models.yaml"
) -> None:
    """A request longer than the model's context window is refused, as `planner plan` refuses
    it: no engine serves it, so no throughput or price of it is true."""
    if input_tokens + output_tokens > window:
        raise PlannerError.single(
            "--input-tokens",
            "",
            f"a request of {input_tokens + output_tokens:,} tokens is longer than {model}'s "
            f"context window of {tokens_count(window)} tokens ({source})",
        )


def _check_tensor_parallel(
    model: str, arch: throughput_data.Architecture, gpu: str, gpus: int, nodes: dict[str, int]
) -> list[int]:
    """--gpus is one tensor-parallel group as the pinned vLLM (0.33.0, planner/data/vllm.yaml)
    runs it, else an error naming why; the groups it would run. Tensor parallelism runs within
    a node (groups split a node's GPUs evenly, as pools place replicas). vLLM refuses a size
    that does not divide the attention heads (vllm/config/model.py,
    ModelConfig.verify_with_parallel_config: total_num_attention_heads % tensor_parallel_size)
    and one that neither divides nor is divided by the KV heads (vllm/model_executor/layers/
    linear.py, QKVParallelLinear: divide(tp_size, total_num_kv_heads) when tp_size >= them,
    else divide(total_num_kv_heads, tp_size)); MLA caches one latent, no KV heads to split."""
    if not nodes:
        raise PlannerError.single("--gpu", "", f"no instance type of the catalog has {gpu} GPUs")
    heads, kv = int(arch.query_heads.value), int(arch.kv_heads.value)

    def splits_kv(group: int) -> bool:
        return arch.attention == "mla" or kv % group == 0 or group % kv == 0

    in_node = sorted({g for n in nodes.values() for g in range(1, n + 1) if n % g == 0})
    groups = [g for g in in_node if heads % g == 0 and splits_kv(g)]
    if gpus not in in_node:
        shown = ", ".join(f"{n} on {name}" for name, n in sorted(nodes.items()))
        raise PlannerError.single(
            "--gpus",
            "",
            f"{gpus} GPUs are no tensor-parallel group a node has: vLLM runs tensor parallelism "
            f"within one node, and the catalog's {gpu} nodes ({shown}) split into groups of "
            f"{_or_list(in_node)}",
        )
    if heads % gpus:
        raise PlannerError.single(
            "--gpus",
            "",
            f"{model} has {heads} attention heads, which do not divide by {gpus} GPUs: vLLM runs "
            f"a tensor-parallel group only of a size that divides them ({_or_list(groups)} here)",
        )
    if not splits_kv(gpus):
        raise PlannerError.single(
            "--gpus",
            "",
            f"{model} has {kv} KV heads, which neither divide by {gpus} GPUs nor divide them: "
            f"vLLM splits or copies whole KV heads over a tensor-parallel group "
            f"({_or_list(groups)} here)",
        )
    return groups


def _or_list(numbers: list[int]) -> str:
    shown = [str(n) for n in numbers]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]
