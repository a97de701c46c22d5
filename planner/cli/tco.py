"""`planner tco MODEL --instance TYPE --utilization U`: USD per million tokens for self-hosting
a model on one instance type, at a given throughput or the throughput model's, with what the
price rests on."""

from __future__ import annotations

import argparse
import json
import math
from datetime import date

from planner import costing, formulas
from planner.catalog import Catalog, OpenModel, Throughput, default_catalog
from planner.catalog.vocabulary import Pricing
from planner.cli import options
from planner.cli.throughput import within_context
from planner.costing import throughput_data, throughput_report
from planner.costing.throughput_data import ThroughputData
from planner.errors import PlannerError
from planner.fmt import tokens_per_second
from planner.inputs.workloads import MIN_USER_OUTPUT_TPS
from planner.outputs import versioned


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tco = commands.add_parser("tco", help="USD per million output tokens for self-hosting a model")
    tco.add_argument("model", metavar="MODEL", help="a self-hostable model of the catalog")
    tco.add_argument("--instance", required=True, help="an instance type of the catalog")
    tco.add_argument(
        "--pricing",
        choices=[p.value for p in Pricing],
        default="on_demand",
        help="purchase option (default on_demand)",
    )
    tco.add_argument(
        "--utilization",
        type=options.share,
        required=True,
        help="share of the hours the node serves at its throughput, more than 0 and at most 1",
    )
    tco.add_argument(
        "--tokens-per-second",
        type=options.positive,
        help="output tokens/s of one node (default: the throughput model's at the request shape)",
    )
    tco.add_argument(
        "--input-tokens",
        type=options.count,
        help="prompt tokens of one request (default: assumptions')",
    )
    tco.add_argument(
        "--output-tokens",
        type=options.count,
        help="completion tokens of one request (default: assumptions')",
    )
    tco.add_argument(
        "--tokens-per-user",
        type=options.positive,
        help="output tokens/s each user reads (default: assumptions' user_output_tps)",
    )
    tco.add_argument(
        "--per",
        choices=["output", "total"],
        default="output",
        help="USD per million output tokens (default) or per million total tokens",
    )
    tco.add_argument("--precision", help="weight precision (default: the model's)")
    options.add_json(tco)
    tco.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    catalog = default_catalog()
    if args.model not in catalog.models:
        raise PlannerError.single(
            "MODEL",
            "",
            f"unknown model {args.model!r}; the catalog has: " + ", ".join(sorted(catalog.models)),
        )
    if args.instance not in catalog.instances:
        raise PlannerError.single(
            "--instance",
            "",
            f"unknown instance type {args.instance!r}; the catalog has: "
            + ", ".join(sorted(catalog.instances)),
        )
    model = catalog.models[args.model]
    instance = catalog.instances[args.instance]
    pricing = Pricing(args.pricing)
    precision = args.precision or model.default_precision
    if precision not in catalog.precisions:
        raise PlannerError.single(
            "--precision",
            "",
            f"unknown precision {precision!r}; the catalog has: "
            + ", ".join(sorted(catalog.precisions)),
        )
    fit = costing.memory_fit(
        catalog, model, instance, precision, catalog.defaults.memory_reserve.value
    )
    if fit is None:
        weights_gb = (
            model.total_params_b.value * catalog.precisions[precision].bytes_per_param.value
        )
        multi_node = "" if instance.efa else ", no EFA for multi-node"
        raise PlannerError.single(
            "MODEL",
            "",
            f"{args.model} in {precision} ({weights_gb:,.0f} GB of weights) cannot be served on "
            f"{args.instance} ({instance.gpus}x {instance.gpu_memory_gb.value:,.0f} GB"
            f"{multi_node}); try a lower --precision or a larger instance",
        )
    defaults = catalog.defaults
    # A default stands in only for a flag not given (argparse refuses a given 0).
    input_tokens = (
        args.input_tokens
        if args.input_tokens is not None
        else int(defaults.request_input_tokens.value)
    )
    output_tokens = (
        args.output_tokens
        if args.output_tokens is not None
        else int(defaults.request_output_tokens.value)
    )
    per_user = (
        args.tokens_per_user if args.tokens_per_user is not None else defaults.user_output_tps.value
    )
    within_context(args.model, model.context_window.value, input_tokens, output_tokens)
    # Total tokens a request carries per output token: what --per total divides by, at the
    # request shape given, or the default one (said in the text), or that of the measured run
    # a given rate comes from.
    total_per_output = (input_tokens + output_tokens) / output_tokens
    shape_given = args.input_tokens is not None or args.output_tokens is not None
    shape = {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "source": "given on the command line"
        if shape_given
        else "the default shape, assumptions.yaml",
    }
    measured = None
    model_answer: dict[str, object] | None = None
    if args.tokens_per_second is not None:
        _check_given_rate(catalog, args.model, args.instance, args.tokens_per_second)
        tps, tps_source = args.tokens_per_second, "given on the command line"
        if not shape_given:
            measured = _measured_run(model, args.tokens_per_second)
        if measured is not None:
            total_per_output = measured.total_tokens_per_second / measured.output_tokens_per_second
            shape = {
                "input_tokens": measured.input_tokens,
                "output_tokens": measured.output_tokens,
                "source": formulas.measured_run_text(
                    measured.output_tokens_per_second,
                    measured.total_tokens_per_second,
                    args.model,
                    measured.shape,
                ),
            }
    else:
        settings = costing.Settings(
            pricing=pricing,
            utilization=args.utilization,
            memory_reserve=defaults.memory_reserve.value,
            request_input_tokens=input_tokens,
            request_output_tokens=output_tokens,
            price_date=date.fromisoformat(defaults.price_date.value),
            user_output_tps=per_user,
        )
        capacity = costing.unit_capacity(catalog, model, instance, settings, precision)
        if capacity is None:
            raise PlannerError.single(
                "--tokens-per-second",
                "",
                f"the throughput model knows no {args.model} on {instance.gpu}; give one",
            )
        try:
            served = costing.unit_throughput(capacity, input_tokens, output_tokens, per_user)
        except PlannerError:
            # The replica's KV cache cannot hold one request of this shape.
            raise PlannerError.single(
                "--input-tokens",
                "",
                f"one request of {input_tokens + output_tokens:,} tokens does not fit the KV cache "
                f"of a {args.model} replica on {args.instance} in {precision}; give a shorter "
                "request or --tokens-per-second",
            ) from None
        tps = served.output_tps / capacity.nodes_per_unit
        fit = capacity.fit  # the tensor-parallel group the throughput model serves best with
        data = throughput_data.throughput_data(catalog)
        points = throughput_report.calibration_points_of(data, capacity.model_id)
        error = data.fit.geometric_mean_error
        # Said as `planner throughput` and plans say it: the fit's error covers only models
        # with calibration points.
        error_text = (
            f"typical error of the fit {error}x"
            if points
            else f"unvalidated: no measured point of {args.model} is among the fit's "
            f"{data.fit.points} calibration points, so its typical error ({error}x) does not "
            "cover this figure (docs/cost-model.md: held-out points it misses)"
        )
        # A per-user speed no batch reaches is said, not priced as if met: the price is at
        # the fastest speed the instance gives a user (a batch of one).
        speed_text = (
            f" and {per_user:g} tok/s per user (bound: {served.bound})"
            if served.target_met
            else f"; no batch reaches {per_user:g} tok/s per user on {args.instance}: the "
            f"fastest a user gets is {tokens_per_second(served.tokens_per_user)} tok/s "
            + (
                "(one request at a time)"
                if capacity.fit.pipeline_parallel == 1
                else f"(one request at a time on each of its {capacity.fit.pipeline_parallel} "
                f"pipeline stages, {served.batch} in flight)"
            )
            + ", and the price is at that speed"
        )
        tps_source = (
            f"throughput model (planner/costing/throughput.py, docs/cost-model.md): "
            f"{tokens_per_second(served.output_tps)} output tok/s a unit of "
            f"{capacity.nodes_per_unit} node(s) "
            f"at {input_tokens:,} input / {output_tokens:,} output tokens{speed_text}; "
            f"{error_text}"
        )
        model_answer = {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "tokens_per_user": per_user,
            "tokens_per_user_reached": round(served.tokens_per_user, 1),
            "batch_per_replica": served.batch,
            "bound": served.bound,
            "user_speed_met": served.target_met,
            "validated": points > 0,
            "calibration_points_of_this_model": points,
        }
    hourly = costing.node_hourly_usd(catalog, instance, pricing)
    per_output = costing.usd_per_million_tokens(hourly, tps, args.utilization)
    per_million = per_output if args.per == "output" else per_output / total_per_output
    if not math.isfinite(per_million):
        raise PlannerError.single(
            "--tokens-per-second",
            "",
            f"{tps:g} tokens/s is too few: the cost per million tokens is not a finite number",
        )
    shown_tps = tps if args.per == "output" else tps * total_per_output
    kind = "output tokens" if args.per == "output" else "tokens (input and output)"
    result: dict[str, object] = {
        "model": args.model,
        "instance_type": args.instance,
        "pricing": pricing.value,
        "utilization": args.utilization,
        "per": args.per,
        "tokens_per_second_per_node": tps,
        "tokens_per_second_source": tps_source,
        "node_usd_per_hour": round(hourly, 4),
        "node_usd_per_hour_source": instance.on_demand_usd_per_hour.source,
        "usd_per_million_tokens": round(per_million, 2),
        "formula": formulas.tco_formula(
            formulas.TcoTerms(
                usd_per_hour=hourly,
                tokens_per_second=shown_tps,
                utilization=args.utilization,
                usd_per_million=per_million,
                kind=kind,
                conversion=None
                if args.per != "total"
                else formulas.TotalConversion(
                    output_tps=tps,
                    input_tokens=measured.input_tokens if measured is not None else input_tokens,
                    output_tokens=measured.output_tokens if measured is not None else output_tokens,
                    measured=measured is not None,
                ),
            )
        ),
        "memory_fit": {
            "precision": fit.precision,
            "weights_gb": round(fit.weights_gb, 1),
            "gpus_per_replica": fit.gpus_per_replica,
            "nodes_per_replica": fit.nodes_per_replica,
            "note": fit.note,
        },
    }
    if args.per == "total":
        result["request_shape"] = shape
    if model_answer is not None:
        result["throughput_model"] = model_answer
    if args.json:
        print(json.dumps(versioned("tco", result), indent=2))
        return 0
    print(f"{args.model} on {args.instance} ({pricing.value}), utilization {args.utilization}:")
    print(f"  {formulas.usd_per_million_line(round(per_million, 2))} USD per million {kind}")
    print(f"  {result['formula']}")
    print(f"  throughput: {tps_source}")
    assumed = args.tokens_per_second is not None and measured is None and not shape_given
    if args.per == "total" and assumed:
        # A given rate was measured at some shape; converting it at another misprices it.
        print(
            f"  request shape: the conversion to total tokens assumes {input_tokens:,} input / "
            f"{output_tokens:,} output tokens a request (the default shape, assumptions.yaml); "
            f"give --input-tokens and --output-tokens for the shape {tps:,g} tok/s was "
            "measured at"
        )
    print(f"  memory fit: {fit.note}")
    if fit.nodes_per_replica > 1:
        print(
            f"  note: one replica needs {fit.nodes_per_replica} nodes; the figure is per node"
            + (
                " and assumes throughput grows with the nodes"
                if args.tokens_per_second is not None
                else " (the model's answer for the replica over its nodes)"
            )
        )
    return 0


def compute_ceiling(data: ThroughputData, model: str, gpu: str, gpus: int) -> float | None:
    """Output tokens/s that `gpus` GPUs could compute for `model` at their fastest dense TFLOPS
    (gpus.yaml) if every FLOP went to its weights: each output token costs at least 2 FLOPs per
    active parameter (the throughput model's linear FLOPs, planner/costing/throughput.py; none
    counted for attention or prompts), so no engine serves more. The measured runs of
    throughput_calibration.yaml and throughput_holdout.yaml reach under a third of it. None
    where the throughput data has no such model or GPU."""
    arch, card = data.architectures.get(model), data.gpus.get(gpu)
    if arch is None or card is None:
        return None
    peak = max(figure.value for figure in card.dense_tflops.values()) * 1e12
    return gpus * peak / (2 * arch.active_params_b.value * 1e9)


def _check_given_rate(catalog: Catalog, model: str, instance_type: str, tps: float) -> None:
    """A given node rate within what a node can serve, else exit 2 naming --tokens-per-second
    (1e308 tok/s priced a million tokens at 0.00 USD, 1e-300 at a 150-digit figure): at least
    MIN_USER_OUTPUT_TPS (1 token a second, the workloads file's least per-user speed: slower
    than one person reads is a typo, a unit or a missing digit, not a node), at most the node's
    compute ceiling."""
    instance = catalog.instances[instance_type]
    if tps < MIN_USER_OUTPUT_TPS:
        raise PlannerError.single(
            "--tokens-per-second",
            "",
            f"{tps:g} output tokens/s is less than one person reads "
            f"({MIN_USER_OUTPUT_TPS} a second): give the node's rate in tokens a second",
        )
    data = throughput_data.throughput_data(catalog)
    ceiling = compute_ceiling(data, model, instance.gpu, instance.gpus)
    if ceiling is not None and tps > ceiling:
        raise PlannerError.single(
            "--tokens-per-second",
            "",
            f"{tps:g} output tokens/s is more than {instance_type}'s {instance.gpus} "
            f"{instance.gpu} GPUs could compute for {model} at their peak "
            f"({tokens_per_second(ceiling)} tok/s at 2 FLOPs per active parameter per token, "
            f"{data.architectures[model].active_params_b.value:g}B active): a typo, not a rate",
        )


def _measured_run(model: OpenModel, output_tps: float) -> Throughput | None:
    """The measured run of models.yaml a given output rate is, if it is one: its request shape
    and total rate are known, so --per total need not assume one."""
    return next(
        (
            run
            for run in model.throughput
            if math.isclose(run.output_tokens_per_second, output_tps, rel_tol=1e-9)
        ),
        None,
    )
