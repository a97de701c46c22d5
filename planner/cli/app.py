"""`planner`: plan, explain, tco and schema. Bad input exits 2 with one clear message."""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import json
import math
import sys
import tempfile
import tomllib
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from planner import names
from planner.catalog import Catalog, Figure, OpenModel, Throughput, default_catalog
from planner.catalog.vocabulary import Pricing
from planner.console import is_long, progress, warning_lines
from planner.costing import costs, throughput
from planner.errors import PlannerError, Problem, WarningsFailed
from planner.inputs.loader import did_you_mean, load_workloads
from planner.inputs.workloads import MIN_UTILIZATION, WorkloadsFile
from planner.outputs import versioned
from planner.planfile.schema import STACK_NAME, Plan, Pool
from planner.planning.build import Strategy, build_plan
from planner.render.plan_files import (
    CONFIG_PLAN_KEY,
    ConfigChange,
    find_project_dir,
    plan_json,
    plan_markdown,
    stack_config,
    stack_config_changes,
    template_environment,
    unwritable,
    write_all,
)

if TYPE_CHECKING:
    from planner.verification.report import Report

_STACK_NAME = STACK_NAME
DISTRIBUTION = "ai-infra-planner"


def version() -> str:
    """The installed distribution's version; run from a source checkout that is not installed,
    the version its pyproject.toml declares."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        pass
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    try:
        project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
        if project.get("name") == DISTRIBUTION:
            return f"{project['version']} (source checkout, not installed)"
    except (OSError, KeyError, TypeError, tomllib.TOMLDecodeError):
        pass
    return "unknown (not installed)"


class _VersionAction(argparse.Action):
    """argparse's version action, with the version looked up only when asked: reading the
    installed distributions' metadata costs a fifth of a second, too much for every run."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        print(f"{parser.prog} {version()}")
        parser.exit()


def _relative(path: Path, base: Path) -> str:
    resolved = path.resolve()
    try:
        return resolved.relative_to(base.resolve()).as_posix()
    except ValueError:
        return resolved.as_posix()


def _project_dir() -> Path:
    cwd = Path.cwd()
    project = find_project_dir(cwd)
    if project is None:
        raise PlannerError.single(
            str(cwd), "", "no Pulumi.yaml here or above: run the planner inside the Pulumi project"
        )
    return project


def _check_working_directory() -> None:
    """Every command reads or writes relative to it: a directory removed under the shell
    (Path.cwd() raises) is one error, not a traceback from wherever it is first used."""
    try:
        Path.cwd()
    except FileNotFoundError:
        raise PlannerError.single(
            ".", "", "the working directory no longer exists: cd into the project and run again"
        ) from None


def _finite(text: str) -> float:
    """A number option: nan and inf parse as floats but are no amount, rate or limit."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _count(text: str) -> int:
    """A count option (tokens, GPUs, requests): a whole number of at least 1, so that 0 is
    refused rather than read as absent."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return value


def _positive(text: str) -> float:
    """A rate option (tokens per second): a finite number more than 0."""
    value = _finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text!r}")
    return value


def _share(text: str) -> float:
    """A share of the hours: from the workloads file's least utilization (1 %: below it a pool
    idles and the busiest rate, the average over it, grows without bound) to 1."""
    value = _finite(text)
    if not MIN_UTILIZATION <= value <= 1:
        raise argparse.ArgumentTypeError(
            f"must be from {MIN_UTILIZATION:g} to 1 (below {MIN_UTILIZATION:.0%} a pool idles), "
            f"not {text!r}"
        )
    return value


def _check_stack(stack: str) -> None:
    if not _STACK_NAME.match(stack):
        raise PlannerError.single(
            "--stack", "", f"{stack!r} is not a stack name (letters, digits, '-', '_', '.')"
        )


def _check_writable(flag: str, directory: Path) -> None:
    """An output directory that cannot be written is a clear error before any work is done."""
    if reason := unwritable(directory):
        raise PlannerError.single(flag, "", f"cannot write in {directory}: {reason}")


def _announce(workloads: int, strategy: Strategy) -> Callable[[str], None] | None:
    """The optimizer takes seconds at hundreds of workloads: for a long run, where its progress
    goes (stderr), else None (a short run stays quiet)."""
    if strategy == "optimal" and is_long(workloads):
        return progress
    return None


def make_plan(
    workloads: Path,
    stack: str,
    catalog: Catalog,
    strategy: Strategy,
    time_limit: float | None = None,
) -> tuple[Plan, Path]:
    _check_stack(stack)
    project = _project_dir()
    loaded = load_workloads(workloads, catalog)
    relative = _relative(workloads, project)
    told = _announce(len(loaded.spec.workloads), strategy)
    return build_plan(loaded, catalog, stack, relative, strategy, time_limit, told), project


def _change_text(change: ConfigChange) -> str:
    if change.old is None:
        return f"{change.key} set to {change.new}"
    return f"{change.key} {change.old} -> {change.new}"


def _stack_config_file(
    args: argparse.Namespace, plan: Plan, project: Path, plan_path: Path
) -> tuple[Path, str, list[ConfigChange]]:
    """Pulumi.<stack>.yaml with this plan, and what that changes. A stack already pointing at
    a plan is not moved to another plan or region unless --repoint says so: a what-if plan
    written to another --out would otherwise become what `pulumi up` deploys."""
    config_path = project / f"Pulumi.{args.stack}.yaml"
    existing = config_path.read_text(encoding="utf-8") if config_path.exists() else None
    relative = _relative(plan_path, project)
    changes = stack_config_changes(existing, config_path, plan.region, relative)
    # Points at a plan already: the plan key is there (changed or not).
    already = existing is not None and not any(
        c.key == CONFIG_PLAN_KEY and c.old is None for c in changes
    )
    if already and changes and not args.repoint:
        shown = _relative(config_path, Path.cwd())
        problems = [
            Problem(
                f"config.{c.key}",
                f"is {c.old}; this plan would change it to {c.new}"
                if c.old is not None
                else f"is not set; this plan would set it to {c.new}",
                c.line,
            )
            for c in changes
        ]
        problems.append(
            Problem(
                "",
                "the stack already points at a plan: pass --repoint to point it at this one, or "
                "--no-stack-config to write only plan.json and plan.md (a what-if plan); "
                "nothing was written",
            )
        )
        raise PlannerError(shown, problems)
    return config_path, stack_config(existing, config_path, plan.region, relative), changes


def cmd_plan(args: argparse.Namespace) -> int:
    catalog = default_catalog()
    if args.time_limit is not None and args.time_limit <= 0:
        raise PlannerError.single("--time-limit", "", "must be a positive number of seconds")
    out = Path(args.out) if args.out else Path("plans") / args.stack
    _check_writable("--out", out)
    plan, project = make_plan(
        Path(args.workloads), args.stack, catalog, args.strategy, args.time_limit
    )
    warnings = [(w.name, warning) for w in plan.workloads for warning in w.warnings]
    if args.strict and warnings:
        for line in warning_lines(warnings):
            print(line, file=sys.stderr)
        raise WarningsFailed(f"--strict: {len(warnings)} warning(s); nothing was written")
    plan_path = out / "plan.json"
    files: dict[Path, str | bytes] = {
        plan_path: plan_json(plan),
        out / "plan.md": plan_markdown(plan),
    }
    changes: list[ConfigChange] = []
    if not args.no_stack_config:
        config_path, text, changes = _stack_config_file(args, plan, project, plan_path)
        files[config_path] = text
        # A new file says nothing more than "wrote"; an existing one says what moved.
        if not config_path.exists():
            changes = []
    write_all(files)
    print(summary(plan))
    print()
    for path in files:
        print(f"wrote {_relative(path, Path.cwd())}")
    if changes:
        shown = _relative(project / f"Pulumi.{args.stack}.yaml", Path.cwd())
        for change in changes:
            print(f"{shown}: {_change_text(change)}", file=sys.stderr)
    for line in warning_lines(warnings):
        print(line, file=sys.stderr)
    return 0


def summary(plan: Plan) -> str:
    rows = [("workload", "placement", "model", "perimeter", "USD/month")]
    for w in plan.workloads:
        rows.append(
            (
                w.name,
                w.placement,
                w.model
                + (f" x{pool.nodes} {pool.instance_type}" if (pool := _pool(plan, w.pool)) else ""),
                w.answers.data_sensitivity.perimeter.value,
                f"{w.monthly_cost_usd:,.2f}",
            )
        )
    first_total = len(rows)
    rows.append(("total", "", "", "", f"{plan.totals.monthly_cost_usd:,.2f}"))
    if plan.strategy == "optimal":
        rows.append(("decided one by one", "", "", "", f"{plan.totals.per_workload_usd:,.2f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = [f"Plan for {plan.organization} (stack {plan.stack}, {plan.region})"]
    for index, row in enumerate(rows):
        if index == first_total:
            lines.append("  ".join("-" * width for width in widths))
        cells = [cell.ljust(width) for cell, width in zip(row[:4], widths, strict=False)]
        lines.append("  ".join([*cells, row[4].rjust(widths[4])]).rstrip())
    return "\n".join(lines)


def _pool(plan: Plan, name: str | None) -> Pool | None:
    return next((p for p in plan.pools if p.name == name), None) if name else None


def cmd_explain(args: argparse.Namespace) -> int:
    catalog = default_catalog()
    loaded = load_workloads(Path(args.workloads), catalog)
    names = [w.name for w in loaded.spec.workloads]
    if args.name not in names:  # before planning: a typo costs no solver run
        raise PlannerError.single(
            args.workloads,
            "workloads[].name",
            f"no workload named {args.name!r}{did_you_mean(args.name, names) or ';'} there are: "
            + ", ".join(names),
        )
    project = find_project_dir(Path.cwd()) or Path.cwd()
    told = _announce(len(loaded.spec.workloads), args.strategy)
    plan = build_plan(
        loaded,
        catalog,
        "explain",
        _relative(Path(args.workloads), project),
        args.strategy,
        progress=told,
    )
    match = next(w for w in plan.workloads if w.name == args.name)
    text = template_environment().get_template("explain.txt.j2").render(w=match, plan=plan)
    print(text.rstrip())
    return 0


def cmd_tco(args: argparse.Namespace) -> int:
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
    fit = costs.memory_fit(
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
    _within_context(args.model, model.context_window.value, input_tokens, output_tokens)
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
        tps, tps_source = args.tokens_per_second, "given on the command line"
        if not shape_given:
            measured = _measured_run(model, args.tokens_per_second)
        if measured is not None:
            total_per_output = measured.total_tokens_per_second / measured.output_tokens_per_second
            shape = {
                "input_tokens": measured.input_tokens,
                "output_tokens": measured.output_tokens,
                "source": f"the measured run of {measured.output_tokens_per_second:,.2f} output "
                f"tok/s and {measured.total_tokens_per_second:,.2f} total (models.yaml "
                f"{args.model} throughput: {measured.shape})",
            }
    else:
        settings = costs.Settings(
            pricing=pricing,
            utilization=args.utilization,
            memory_reserve=defaults.memory_reserve.value,
            request_input_tokens=input_tokens,
            request_output_tokens=output_tokens,
            price_date=date.fromisoformat(defaults.price_date.value),
            user_output_tps=per_user,
        )
        capacity = costs.unit_capacity(catalog, model, instance, settings, precision)
        if capacity is None:
            raise PlannerError.single(
                "--tokens-per-second",
                "",
                f"the throughput model knows no {args.model} on {instance.gpu}; give one",
            )
        try:
            served = costs.unit_throughput(capacity, input_tokens, output_tokens, per_user)
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
        data = throughput.default_throughput_data()
        points = throughput.calibration_points_of(data, capacity.model_id)
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
            f"fastest a user gets is {served.tokens_per_user:,.1f} tok/s (one request at a "
            "time), and the price is at that speed"
        )
        tps_source = (
            f"throughput model (planner/costing/throughput.py, docs/cost-model.md): "
            f"{served.output_tps:,.1f} output tok/s a unit of {capacity.nodes_per_unit} node(s) "
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
    hourly = costs.node_hourly_usd(catalog, instance, pricing)
    per_output = costs.usd_per_million_tokens(hourly, tps, args.utilization)
    per_million = per_output if args.per == "output" else per_output / total_per_output
    if not math.isfinite(per_million):
        raise PlannerError.single(
            "--tokens-per-second",
            "",
            f"{tps:g} tokens/s is too few: the cost per million tokens is not a finite number",
        )
    shown_tps = tps if args.per == "output" else tps * total_per_output
    kind = "output tokens" if args.per == "output" else "tokens (input and output)"
    conversion = (
        f" ({shown_tps:,.2f} total tok/s of the measured run at about {measured.input_tokens:,} "
        f"input / {measured.output_tokens:,} output tokens a request, models.yaml, for its "
        f"{tps:,.2f} output tok/s)"
        if measured is not None
        else f" ({tps:,.2f} output tok/s x ({input_tokens:,} + {output_tokens:,}) / "
        f"{output_tokens:,} tokens a request)"
    )
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
        "formula": (
            f"{hourly:,.4g} USD/h / ({shown_tps:,.2f} tok/s x {args.utilization} x 3600 s) x 1e6 = "
            f"{per_million:,.4f} USD per million {kind}"
            + (conversion if args.per == "total" else "")
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
    print(f"  {result['usd_per_million_tokens']:.2f} USD per million {kind}")
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


def _within_context(
    model: str, window: float, input_tokens: int, output_tokens: int, source: str = "models.yaml"
) -> None:
    """A request longer than the model's context window is refused, as `planner plan` refuses
    it: no engine serves it, so no throughput or price of it is true."""
    if input_tokens + output_tokens > window:
        raise PlannerError.single(
            "--input-tokens",
            "",
            f"a request of {input_tokens + output_tokens:,} tokens is longer than {model}'s "
            f"context window of {window:,.0f} tokens ({source})",
        )


def _check_tensor_parallel(
    model: str, arch: throughput.Architecture, gpu: str, gpus: int, nodes: dict[str, int]
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


def cmd_throughput(args: argparse.Namespace) -> int:
    # As plans price a replica (vLLM as the stack deploys it, within the default memory
    # reserve), or as the calibration points were measured (TensorRT-LLM).
    reserve = default_catalog().defaults.memory_reserve
    if args.calibrated:
        data, utilization = throughput.default_throughput_data(), 1.0
    else:
        data, utilization = costs.deployed_throughput_data(), 1 - reserve.value
    known_arch = data.architectures.get(args.model)
    if known_arch is not None and args.nodes > known_arch.layers.value:
        # A pipeline stage holds whole layers: one a node at most.
        raise PlannerError.single(
            "--nodes",
            "",
            f"must be at most {args.model}'s {known_arch.layers.value:g} layers, not {args.nodes}",
        )
    replica = costs.serving_replica(
        data, args.model, args.gpu, args.gpus, args.nodes, args.precision, utilization
    )
    arch = data.architectures[args.model]
    gpus_a_node = {
        name: instance.gpus
        for name, instance in default_catalog().instances.items()
        if instance.gpu == args.gpu
    }
    groups = _check_tensor_parallel(args.model, arch, args.gpu, args.gpus, gpus_a_node)
    _within_context(
        args.model,
        arch.context_window.value,
        args.input_tokens,
        args.output_tokens,
        "architectures.yaml",
    )
    served = costs.serve_replica(
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
            f"{args.gpus}x {args.gpu} gives one user {served.tokens_per_user:,.1f} tokens/s "
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
        f"  {report['output_tokens_per_second']:,.0f} output tokens/s "
        f"({report['total_tokens_per_second']:,.0f} total), "
        f"{report['tokens_per_user']:,.1f} per user"
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
    data: throughput.ThroughputData,
    served: throughput.Serving,
    utilization: float,
    reserve: Figure,
) -> dict[str, Any]:
    """serving_report of a replica of --nodes pipeline stages (its figures are one stage's:
    weights and KV cache are counted on every node), saying how it is served."""
    report = throughput.serving_report(data, served)
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


def cmd_preview(args: argparse.Namespace) -> int:
    from planner.graph.preview import render_json, render_text, run_preview

    project = _project_dir()
    plan_file = Path(args.plan) if args.plan else None
    if plan_file is None:
        _check_stack(args.stack)
    result = run_preview(project, default_catalog(), args.stack, plan_file)
    print(render_json(result) if args.json else render_text(result), end="")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from planner.planfile.schema import read_plan
    from planner.verification.report import (
        render_json,
        render_text,
        verify_preview_file,
        verify_program,
    )

    catalog = default_catalog()
    shape = "json" if args.json else args.format or "text"
    plan_file = Path(args.plan) if args.plan else None
    plan: Plan | None
    if args.preview:
        if plan_file is None and args.stack is not None:
            # The stack's plan, as verify_program reads it: the preview must hold what it plans.
            plan_file = _stack_plan(args.stack)
        plan = read_plan(plan_file) if plan_file else None
        report = verify_preview_file(
            Path(args.preview), catalog, plan, protect=not args.allow_unprotected
        )
        if plan is None and not _preview_resources(Path(args.preview)):
            return _nothing_verified(Path(args.preview), report, shape)
    else:
        stack = args.stack or "dev"
        if plan_file is None:
            _check_stack(stack)
        report, plan = verify_program(_project_dir(), catalog, stack, plan_file)
    if shape == "sarif":
        print(_sarif(report, plan, catalog, args.preview), end="")
    else:
        print(render_json(report) if shape == "json" else render_text(report), end="")
    return 0 if report.passed else 1


def _sarif(
    report: Report, plan: Plan | None, catalog: Catalog, preview: str | None, not_run: str = ""
) -> str:
    """The report as SARIF, its findings on the lines of the plan's workloads file where their
    workloads are named (the preview file, line 1, without a plan), the file named relative to
    the repository's root."""
    from planner.inputs.loader import parse_with_lines
    from planner.render.sarif import artifact_uri, render_sarif, repository_root

    project = find_project_dir(Path.cwd()) or Path.cwd()
    root = repository_root(project)
    notes: list[str] = []
    lines: dict[str, int] = {}
    if plan is None:
        path = Path(preview or ".")
    else:
        path = project / plan.workloads_file
        try:
            text = path.read_text(encoding="utf-8")
            spec, index = parse_with_lines(text, plan.workloads_file, catalog)
            lines = {
                w.name: index.line(("workloads", i, "name")) or 1
                for i, w in enumerate(spec.workloads)
            }
        except (OSError, UnicodeDecodeError) as exc:
            notes.append(f"cannot read the workloads file {path}: {exc}: results on line 1")
        except PlannerError:
            notes.append(f"the workloads file {path} is no longer valid: results on line 1")
    uri, outside = artifact_uri(path, root)
    notes += [outside] if outside else []
    return render_sarif(report, uri, lines, version=version(), not_run=not_run or None, notes=notes)


def _stack_plan(stack: str) -> Path:
    """The plan Pulumi.<stack>.yaml names (a missing config or key is an error, exit 2)."""
    from planner.graph.preview import stack_config

    _check_stack(stack)
    project = _project_dir()
    config, _ = stack_config(project, stack)
    if names.CONFIG_PLAN not in config:
        raise PlannerError.single(
            str(project / f"Pulumi.{stack}.yaml"),
            f"config.{names.CONFIG_PLAN}",
            "not set: run `planner plan`",
        )
    return project / config[names.CONFIG_PLAN]


def _preview_resources(preview: Path) -> int:
    """The resources a (readable) preview file declares, the stack itself aside."""
    from planner.graph.netgraph import graph_from_preview

    graph = graph_from_preview(json.loads(preview.read_text(encoding="utf-8")))
    return sum(not r.type.startswith("pulumi:pulumi:") for r in graph.resources.values())


def _nothing_verified(preview: Path, report: Report, shape: str) -> int:
    """A preview with no resources and no plan to hold it against proves nothing: unknown is
    reported as unknown and as a failure (a FAIL line, exit 1), never as a pass."""
    reason = (
        f"nothing verified: {preview} declares no resources, and no plan says what it should "
        "hold (give PLAN.json or --stack)"
    )
    if shape == "sarif":
        print(_sarif(report, None, default_catalog(), str(preview), reason), end="")
    elif shape == "json":
        from planner.verification.report import render_json

        document = json.loads(render_json(report))
        document.update(passed=False, verified="nothing", reason=reason)
        print(json.dumps(document, indent=2, sort_keys=True))
    else:
        print(f"FAIL {reason}\nverification FAILED: nothing verified")
    return 1


def cmd_diff(args: argparse.Namespace) -> int:
    from planner.diff.compare import diff_plans, load_plans, render_json, render_markdown

    base, head = load_plans(Path(args.base)), load_plans(Path(args.head))
    if not head:
        # An empty BASE is a project's first plan; an empty HEAD is a plan that is not there
        # (a failed or misdirected `planner plan`), not every workload removed.
        raise PlannerError.single(
            args.head, "", "no plan.json here or in its stack directories: HEAD must hold a plan"
        )
    for value, flag in ((args.fail_on_increase_pct, "--fail-on-increase-pct"),
                        (args.fail_above_usd, "--fail-above-usd")):  # fmt: skip
        if value is not None and value < 0:
            raise PlannerError.single(flag, "", f"{value:g} is negative")
    diff = diff_plans(
        base, head, default_catalog(), args.fail_on_increase_pct, args.fail_above_usd,
        args.fail_on_verify, args.fail_on_weaker_perimeter,
    )  # fmt: skip
    print(render_json(diff) if args.format == "json" else render_markdown(diff), end="")
    if diff.gate:
        print(f"budget gate failed: {'; '.join(diff.gate)}", file=sys.stderr)
    if diff.perimeter_gate:
        print(f"perimeter gate failed: {'; '.join(diff.perimeter_gate)}", file=sys.stderr)
    return 1 if diff.failed else 0


def cmd_crossover(args: argparse.Namespace) -> int:
    from planner.planning.crossover import render_json, render_table, reports, write_chart

    chart = Path(args.chart) if args.chart else None
    if chart is not None:
        if chart.suffix not in (".svg", ".png"):
            raise PlannerError.single("--chart", "", "give a .svg or .png file name")
        if chart.is_dir():
            raise PlannerError.single("--chart", "", f"{chart} is a directory: give a file name")
        _check_writable("--chart", chart.parent)
    catalog = default_catalog()
    loaded = load_workloads(Path(args.workloads), catalog)
    found = reports(loaded, catalog, args.name)
    charts: dict[Path, str | bytes] = {}
    if chart is not None:
        # Drawn aside first, then written together: all the charts or none.
        with tempfile.TemporaryDirectory() as scratch:
            for report in found:
                path = (
                    chart if len(found) == 1 else chart.with_stem(f"{chart.stem}-{report.workload}")
                )
                if report.self_hosted is None:
                    continue  # nothing to draw: the table says why
                drawn = Path(scratch) / path.name
                write_chart(report, drawn)
                charts[path] = drawn.read_bytes()
        write_all(charts)
    print(render_json(found) if args.json else render_table(found), end="")
    for path in charts:
        # With --json stdout holds the document alone.
        print(f"wrote {path}", file=sys.stderr if args.json else sys.stdout)
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    print(plan_schema_text() if args.plan else schema_text(), end="")
    return 0


def plan_schema_text() -> str:
    """plan.json's JSON Schema (schema/plan.schema.json): what `planner plan` writes, for
    scripts and reviewers that read plans (its schema_version is fixed to this planner's)."""
    from planner.planfile.schema import SCHEMA_VERSION, Plan

    schema = Plan.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"ai-infra-planner plan.json, schema version {SCHEMA_VERSION}"
    schema["properties"]["schema_version"]["const"] = SCHEMA_VERSION
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def schema_text() -> str:
    schema = WorkloadsFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "ai-infra-planner workloads file"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="planner", description=__doc__)
    parser.add_argument("--version", action=_VersionAction, help="print the version")
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="the command"
    )

    plan = sub.add_parser("plan", help="plan a workloads file: plan.json, plan.md, stack config")
    plan.add_argument("workloads", metavar="WORKLOADS", help="the workloads YAML file")
    plan.add_argument(
        "--stack",
        default="dev",
        help="the Pulumi stack: plans/<stack>/ and Pulumi.<stack>.yaml (default dev)",
    )
    plan.add_argument("--out", help="output directory (default plans/<stack>/)")
    config = plan.add_mutually_exclusive_group()
    config.add_argument(
        "--no-stack-config",
        action="store_true",
        help="a what-if plan: write plan.json and plan.md only, leave Pulumi.<stack>.yaml as it is",
    )
    config.add_argument(
        "--repoint",
        action="store_true",
        help="let this plan change the plan path or aws:region of a Pulumi.<stack>.yaml that "
        "already points at a plan (without it, that is an error and nothing is written)",
    )
    plan.add_argument("--strict", action="store_true", help="fail (exit 1) on any warning")
    plan.add_argument(
        "--strategy",
        choices=["optimal", "per-workload"],
        default="optimal",
        help="optimal (default): workloads share pools where that costs less, a plan of a "
        "mixed-integer program proven within optimizer.yaml's gap of the optimum, or the best "
        "within its node limit with the gap it proves (planner/data/optimizer.yaml); "
        "per-workload: each workload decided alone (every optimal plan shows that cost too)",
    )
    plan.add_argument(
        "--time-limit",
        type=_finite,
        metavar="SECONDS",
        help="stop the optimizer after this long (default: planner/data/optimizer.yaml's "
        "time_limit_s) and plan the best assignment found; the plan states how far from the "
        "optimum it may be (the solver's proven bound). A solve that reaches its gap first is "
        "byte-identical on a rerun; one the limit stops may differ",
    )
    plan.set_defaults(func=cmd_plan)

    explain = sub.add_parser("explain", help="the three answers for one workload")
    explain.add_argument("workloads", metavar="WORKLOADS", help="the workloads YAML file")
    explain.add_argument("name", metavar="NAME", help="the workload's name")
    explain.add_argument(
        "--strategy",
        choices=["optimal", "per-workload"],
        default="optimal",
        help="as for `planner plan` (default optimal)",
    )
    explain.set_defaults(func=cmd_explain)

    tco = sub.add_parser("tco", help="USD per million output tokens for self-hosting a model")
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
        type=_share,
        required=True,
        help="share of the hours the node serves at its throughput, more than 0 and at most 1",
    )
    tco.add_argument(
        "--tokens-per-second",
        type=_positive,
        help="output tokens/s of one node (default: the throughput model's at the request shape)",
    )
    tco.add_argument(
        "--input-tokens", type=_count, help="prompt tokens of one request (default: assumptions')"
    )
    tco.add_argument(
        "--output-tokens",
        type=_count,
        help="completion tokens of one request (default: assumptions')",
    )
    tco.add_argument(
        "--tokens-per-user",
        type=_positive,
        help="output tokens/s each user reads (default: assumptions' user_output_tps)",
    )
    tco.add_argument(
        "--per",
        choices=["output", "total"],
        default="output",
        help="USD per million output tokens (default) or per million total tokens",
    )
    tco.add_argument("--precision", help="weight precision (default: the model's)")
    tco.add_argument("--json", action="store_true", help="print JSON instead of text")
    tco.set_defaults(func=cmd_tco)

    tput = sub.add_parser(
        "throughput", help="what one replica of N GPUs serves: tokens/s, batch, first token"
    )
    tput.add_argument("model", metavar="MODEL", help="a model of planner/data/architectures.yaml")
    tput.add_argument("--gpu", required=True, help="the GPU type: h100 or h200 (gpus.yaml)")
    tput.add_argument(
        "--gpus",
        type=_count,
        required=True,
        help="GPUs in the replica (tensor parallel size): a group a node has (1, 2, 4, 8) that "
        "divides the model's attention heads",
    )
    tput.add_argument(
        "--nodes",
        type=_count,
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
        "--input-tokens", type=_count, required=True, help="prompt tokens of one request"
    )
    tput.add_argument(
        "--output-tokens", type=_count, required=True, help="completion tokens of one request"
    )
    load = tput.add_mutually_exclusive_group()
    load.add_argument(
        "--tokens-per-user",
        type=_positive,
        help="the output tokens/s each user must get (default: maximum load)",
    )
    load.add_argument(
        "--concurrency", type=_count, help="requests in flight at once (default: maximum load)"
    )
    tput.add_argument("--json", action="store_true", help="print JSON instead of text")
    tput.set_defaults(func=cmd_throughput)

    preview = sub.add_parser(
        "preview", help="offline: what `pulumi preview` would create, and what it costs"
    )
    target = preview.add_mutually_exclusive_group()
    target.add_argument("--stack", default="dev", help="read Pulumi.<stack>.yaml (default dev)")
    target.add_argument("plan", nargs="?", metavar="PLAN.json", help="preview this plan instead")
    preview.add_argument("--json", action="store_true", help="the shape of `pulumi preview --json`")
    preview.set_defaults(func=cmd_preview)

    verify = sub.add_parser(
        "verify",
        help="prove the perimeter from the resource graph and check the security rules",
    )
    target = verify.add_mutually_exclusive_group()
    target.add_argument(
        "--stack",
        help="read Pulumi.<stack>.yaml (default dev); with --preview, check the preview against "
        "its plan",
    )
    target.add_argument(
        "plan", nargs="?", metavar="PLAN.json", help="verify this plan's stack instead"
    )
    verify.add_argument(
        "--preview",
        metavar="FILE",
        help="check a preview JSON (`pulumi preview --json`, `planner preview --json`) instead "
        "of running the program; with PLAN.json or --stack, also against the plan",
    )
    verify.add_argument(
        "--allow-unprotected",
        action="store_true",
        help="with --preview: a dev stack, keys and buckets need not be protected",
    )
    shape = verify.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="print the report as JSON")
    shape.add_argument(
        "--format",
        choices=("text", "json", "sarif"),
        help="text (the default), json (as --json), or sarif: SARIF 2.1.0 for GitHub code "
        "scanning, each finding on the workloads file's line of its workload",
    )
    verify.set_defaults(func=cmd_verify)

    diff = sub.add_parser(
        "diff", help="what a change does to the plan: a pull-request comment, and a budget gate"
    )
    diff.add_argument("base", metavar="BASE", help="plan.json, or a directory of plans")
    diff.add_argument("head", metavar="HEAD", help="plan.json, or a directory of plans")
    diff.add_argument(
        "--format",
        choices=["markdown", "json"],
        default="markdown",
        help="markdown (default): the pull-request comment; json: everything",
    )
    diff.add_argument(
        "--fail-on-increase-pct",
        type=_finite,
        metavar="P",
        help="exit 1 when the monthly estimate rises more than P percent",
    )
    diff.add_argument(
        "--fail-above-usd",
        type=_finite,
        metavar="X",
        help="exit 1 when the monthly estimate is above X USD",
    )
    diff.add_argument(
        "--fail-on-verify",
        action="store_true",
        help="exit 1 when HEAD fails `planner verify` (its perimeter or a security rule); the "
        "comment says so at the top",
    )
    diff.add_argument(
        "--fail-on-weaker-perimeter",
        action="store_true",
        help="exit 1 when a workload's perimeter got weaker (e.g. technical -> contractual "
        "after its data was downgraded), even on purpose",
    )
    diff.set_defaults(func=cmd_diff)

    crossover = sub.add_parser(
        "crossover", help="the volume at which self-hosting starts to win, per purchase option"
    )
    crossover.add_argument("workloads", metavar="WORKLOADS", help="the workloads YAML file")
    crossover.add_argument(
        "name",
        metavar="NAME",
        nargs="?",
        help="one workload (default: every workload with a self-hosted option)",
    )
    crossover.add_argument("--chart", help="write a chart: FILE.svg or FILE.png")
    crossover.add_argument(
        "--json", action="store_true", help="print JSON instead of the table (charts: stderr)"
    )
    crossover.set_defaults(func=cmd_crossover)

    schema = sub.add_parser("schema", help="print the workloads file's JSON Schema")
    schema.add_argument(
        "--plan", action="store_true", help="plan.json's JSON Schema instead (its schema_version)"
    )
    schema.set_defaults(func=cmd_schema)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    # A run builds a large acyclic object graph and exits: reference counting frees what it
    # drops, and the cyclic collector would only re-scan every plan object again and again
    # (a third of the run at 1,000 workloads). It is switched back on for callers in-process.
    collecting = gc.isenabled()
    gc.disable()
    try:
        _check_working_directory()
        return func(args)
    except PlannerError as exc:
        for line in exc.render().splitlines():
            print(f"error: {line}", file=sys.stderr)
        return exc.exit_code
    except WarningsFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader stopped early (`planner plan ... | head`)
        sys.stderr.close()
        return 0
    finally:
        if collecting:
            gc.enable()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
