"""The vLLM command each node runs (stacks/serving.py): only flags the pinned release defines
(planner/data/vllm.yaml, read from that release's sources), the checkpoint published at the pool's
precision, a context length the plan sized, and as many engines as the plan priced replicas."""

from __future__ import annotations

import contextlib
import json
import math
import re
import shlex
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.catalog import Catalog, FlagValues, Serving, load_catalog
from planner.costing import memory_fit, unit_options
from planner.errors import PlannerError
from planner.graph.offline import OfflineRun, run_program
from planner.planfile import Plan, Pool, read_plan
from stacks.kubernetes.workload import pod_serve_args
from stacks.serving import serve_args, serve_flags
from stacks.settings import StackSettings
from tests.conftest import REPO, workload_yaml
from tests.helpers import plan_text
from tests.test_costs import settings as defaults  # the planning defaults
from tests.test_plan_file import Plan as PlanJson
from tests.test_plan_file import _refused, _set, _write
from tests.test_stacks import MULTI_NODE, of_type, plan_project, user_data

# What vLLM v0.11.0 (the image the nodes ran before) lacks: the DeepSeek V3.2 tokenizer mode.
DEEPSEEK_MODE = ["--tokenizer-mode", "deepseek_v32"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[OfflineRun, Plan]]:
    """The program run under mocks on the example (two single-node pools, Scout with four
    replicas a node) and on a multi-node DeepSeek V3.2 pool, with the plans they deploy."""
    found = {}
    for name, text in (("example", None), ("multi-node", MULTI_NODE)):
        project = tmp_path_factory.mktemp(name)
        shutil.copy(REPO / "Pulumi.yaml", project / "Pulumi.yaml")
        shutil.copy(REPO / "__main__.py", project / "__main__.py")
        with contextlib.chdir(project):
            config = plan_project(project, text)
        found[name] = (
            run_program(project, "dev", config),
            read_plan(project / "plans" / "dev" / "plan.json"),
        )
    return found


def rendered(run: OfflineRun, pool: str) -> str:
    [template] = [
        r for r in of_type(run, "aws:ec2/launchTemplate:LaunchTemplate")
        if r.name == f"{pool}-nodes"
    ]  # fmt: skip
    return user_data(template)


def serve_line(text: str) -> list[str]:
    """The arguments of the start script's SERVE line, after `vllm serve /weights`."""
    [serve] = re.findall(r'^\s*SERVE="vllm serve /weights (.*)"$', text, re.MULTILINE)
    return shlex.split(serve)


def commands(text: str) -> list[list[str]]:
    """Every `vllm serve` command line the start script can run: its SERVE line, with what each
    line running $SERVE appends (the head of a multi-node replica adds the Ray backend)."""
    base = serve_line(text)
    uses = [shlex.split(tail) for tail in re.findall(r'\$SERVE([^"]*)"', text)]
    return [base + tail for tail in uses] or [base]


def flag_problems(args: list[str], serving: Serving) -> list[str]:
    """What the pinned release would refuse: a flag it does not define, a flag without its
    value, a value outside the choices or range it sets, a value after a switch (a flag the
    release takes on its own: vllm.yaml `values`, type switch)."""
    problems = []
    index = 0
    while index < len(args):
        flag = args[index]
        switch = serving.values.get(flag)
        if switch is not None and switch.type == "switch" and flag in serving.flags.names:
            if index + 1 < len(args) and not args[index + 1].startswith("--"):
                problems.append(f"{flag} {args[index + 1]}: a switch takes no value")
                index += 1
            index += 1
            continue
        if flag not in serving.flags.names:
            problems.append(f"{flag}: not a flag of vLLM {serving.release.version}")
            has_value = index + 1 < len(args) and not args[index + 1].startswith("--")
            index += 2 if has_value else 1
            continue
        if index + 1 == len(args) or args[index + 1].startswith("--"):
            problems.append(f"{flag}: no value")
            index += 1
            continue
        value, rule = args[index + 1], serving.values.get(flag)
        if rule is not None:
            problems += _value_problems(flag, value, rule)
        index += 2
    return problems


def _value_problems(flag: str, value: str, rule: FlagValues) -> list[str]:
    if rule.choices is not None and value not in rule.choices:
        return [f"{flag} {value}: not one of {rule.choices}"]
    if rule.type == "int" and not value.isdigit():
        return [f"{flag} {value}: not a whole number"]
    if rule.type == "float" and not re.fullmatch(r"[0-9]+(\.[0-9]+)?", value):
        return [f"{flag} {value}: not a number"]
    if rule.type is not None:
        number = float(value)
        low = rule.minimum if rule.minimum is not None else -math.inf
        high = rule.maximum if rule.maximum is not None else math.inf
        if number < low or (rule.exclusive_minimum and number == low) or number > high:
            return [f"{flag} {value}: out of range"]
    return []


def possible_pools(catalog: Catalog, template: Pool) -> Iterator[Pool]:
    """A pool of every catalog model at every precision it has a checkpoint for, on every
    instance type that holds it, with the parallelism the planner's memory fit gives."""
    reserve = catalog.defaults.memory_reserve.value
    for model_id, model in catalog.models.items():
        for precision, checkpoint in model.checkpoints.items():
            for instance_type, instance in catalog.instances.items():
                fit = memory_fit(catalog, model, instance, precision, reserve)
                if fit is None:
                    continue
                yield template.model_copy(
                    update={
                        "model": model_id,
                        "precision": precision,
                        "weights": checkpoint.repo,
                        "instance_type": instance_type,
                        "gpus_per_node": instance.gpus,
                        "tensor_parallel": fit.tensor_parallel,
                        "pipeline_parallel": fit.pipeline_parallel,
                        "replicas_per_node": fit.replicas_per_node,
                        "max_model_len": int(model.context_window.value),
                    }
                )


def test_the_pinned_release_is_the_default_image(
    runs: dict[str, tuple[OfflineRun, Plan]], catalog: Catalog
) -> None:
    release = catalog.serving.release
    assert release.image == f"vllm/vllm-openai:{release.tag}"
    assert release.tag == f"v{release.version}" != "v0.11.0"
    assert StackSettings.serving_image_tag == release.tag
    run, _ = runs["example"]
    text = rendered(run, "contract-review-pool")
    assert f"contract-review-pool-serving:{release.tag}\n" in text
    # The release defines every flag a catalog model needs, DeepSeek V3.2's tokenizer mode too.
    assert catalog.serving.models["deepseek-v3.2"].flags == DEEPSEEK_MODE
    for model in catalog.serving.models.values():
        assert not flag_problems(model.flags, catalog.serving), model
    for flag in catalog.serving.values:
        assert flag in catalog.serving.flags.names


def test_another_image_tag_is_used_with_a_warning(project: Path) -> None:
    """A tag other than the pinned release's deploys (a patch release, a rebuilt image), and the
    program says that its flags were checked against the pinned release only."""
    config = plan_project(project, MULTI_NODE)
    assert not [line for line in run_program(project, "dev", config).logs if "image" in line]
    config["ai-infra-planner:serving_image_tag"] = "v0.11.0"
    run = run_program(project, "dev", config)
    [template] = of_type(run, "aws:ec2/launchTemplate:LaunchTemplate")
    assert "deep-notes-pool-serving:v0.11.0\n" in user_data(template)
    [warning] = [line for line in run.logs if "serving_image_tag" in line]
    assert warning.startswith("serving_image_tag v0.11.0 is not the pinned vLLM release v0.33.0")


def test_the_rendered_commands_use_only_the_releases_flags(
    runs: dict[str, tuple[OfflineRun, Plan]], catalog: Catalog
) -> None:
    for run, plan in runs.values():
        for pool in plan.pools:
            text = rendered(run, pool.name)
            assert serve_line(text) == serve_args(pool, catalog)  # the line of serving.py
            for command in commands(text):
                assert not flag_problems(command, catalog.serving), (pool.name, command)
    # The multi-node head appends the Ray backend: a flag of the release too.
    run, plan = runs["multi-node"]
    [pool] = plan.pools
    assert ["--distributed-executor-backend", "ray"] in [
        command[-2:] for command in commands(rendered(run, pool.name))
    ]


def test_every_pool_the_catalog_allows_gets_a_valid_command(
    runs: dict[str, tuple[OfflineRun, Plan]], catalog: Catalog
) -> None:
    template = runs["example"][1].pools[0]
    pools = list(possible_pools(catalog, template))
    assert {pool.model for pool in pools} == set(catalog.models)
    for pool in pools:
        args = serve_args(pool, catalog)
        assert not flag_problems(args, catalog.serving), (pool.model, pool.instance_type, args)
        # As a cluster site's pods run it (stacks/kubernetes/workload.py): a whole node's
        # replicas as engines, HTTPS with the pool's certificate, Ray across a replica's pods;
        # the same release's flags only.
        pod_args = pod_serve_args(
            pool.model_copy(update={"nodes": pool.pipeline_parallel}), catalog
        )
        assert not flag_problems(pod_args, catalog.serving), (pool.model, pod_args)
        assert pod_args[pod_args.index("--ssl-keyfile") + 1] == "/secrets/tls.key"
        # A re-issued certificate replaces the pods (stacks/kubernetes/workload.py
        # CERTIFICATE_ANNOTATION) rather than vLLM's file watch, which a Secret's swap ends.
        assert "--enable-ssl-refresh" not in pod_args
        engines = pod_args[pod_args.index("--data-parallel-size") + 1]
        assert engines == str(pool.replicas_per_node)
        assert ("ray" in pod_args) == (pool.pipeline_parallel > 1)
        # Plain words: the start script holds them in one double-quoted string.
        assert serve_flags(pool, catalog) == " ".join(args)
        model_flags = catalog.serving.models[pool.model].flags
        assert args[len(args) - len(model_flags) :] == model_flags
        assert ("--dtype" in args) == (pool.precision == "bf16")


def test_the_flag_check_catches_what_the_release_refuses(catalog: Catalog) -> None:
    """The check above is no rubber stamp: each wrong command is caught, with its reason."""
    serving = catalog.serving
    assert flag_problems(["--quantization-mode", "fp8"], serving) == [
        "--quantization-mode: not a flag of vLLM 0.33.0"
    ]
    assert flag_problems(["--tokenizer-mode", "deepseek_v3"], serving)[0].startswith(
        "--tokenizer-mode deepseek_v3: not one of"
    )
    assert flag_problems(["--tensor-parallel-size", "0"], serving) == [
        "--tensor-parallel-size 0: out of range"
    ]
    assert flag_problems(["--port", "70000"], serving) == ["--port 70000: out of range"]
    assert flag_problems(["--max-model-len", "10M"], serving) == [
        "--max-model-len 10M: not a whole number"
    ]
    assert flag_problems(["--dtype", "--port", "8000"], serving) == ["--dtype: no value"]
    for share in ("0", "0.0", "1.5", "ninety"):
        assert flag_problems(["--gpu-memory-utilization", share], serving), share
    assert not flag_problems(["--gpu-memory-utilization", "1"], serving)
    # A switch stands alone: a value after it is refused, and it is no value of the flag before.
    assert flag_problems(["--enable-ssl-refresh", "true"], serving) == [
        "--enable-ssl-refresh true: a switch takes no value"
    ]
    assert flag_problems(["--port", "--enable-ssl-refresh"], serving) == ["--port: no value"]
    assert not flag_problems(["--enable-ssl-refresh", "--port", "8000"], serving)


def test_fp8_pools_load_the_published_fp8_checkpoint(
    runs: dict[str, tuple[OfflineRun, Plan]], catalog: Catalog
) -> None:
    """Scout was served from its BF16 checkpoint with online FP8 quantization: vLLM loads the
    218 GB of BF16 weights first, on the 160 GB of two H100s. Each pool now loads the checkpoint
    published at its precision, whose bytes fit its GPUs with room left for the KV cache."""
    reserve = catalog.defaults.memory_reserve.value
    for run, plan in runs.values():
        for pool in plan.pools:
            model = catalog.models[pool.model]
            [precision] = [p for p, c in model.checkpoints.items() if c.repo == pool.weights]
            assert precision == pool.precision
            text = rendered(run, pool.name)
            assert f"/weights/{pool.weights}\n" in text
            assert "--quantization" not in text
            weights = model.total_params_b.value * 1e9
            weights *= catalog.precisions[precision].bytes_per_param.value
            gpu = catalog.instances[pool.instance_type].gpu_memory_gb.value * 1e9
            group = pool.tensor_parallel * pool.pipeline_parallel
            assert weights < group * gpu * (1 - reserve), pool.name
    llama = next(p for p in runs["example"][1].pools if p.model == "llama-3.3-70b")
    assert llama.weights == "nvidia/Llama-3.3-70B-Instruct-FP8"
    # 70.6 GB of FP8 weights leave no KV cache on one H100 once vLLM's own memory is counted;
    # the group that serves most at the example's shape and per-user speed is larger still.
    assert llama.tensor_parallel >= 2
    # Every model's own precision is FP8, from a checkpoint that is not the BF16 one.
    for model in catalog.models.values():
        assert model.default_precision == "fp8"
        bf16 = model.checkpoints.get("bf16")
        assert bf16 is None or bf16.repo != model.checkpoints["fp8"].repo


def test_replicas_per_node_run_as_data_parallel_engines(
    runs: dict[str, tuple[OfflineRun, Plan]], catalog: Catalog
) -> None:
    """The plan priced four Scout replicas a node; the node ran one vLLM on two of its eight
    GPUs. Now data parallel x tensor parallel uses every GPU of a single-node pool's node, and
    a multi-node replica's tensor x pipeline parallel its nodes' GPUs."""
    for run, plan in runs.values():
        by_option = {w.pool: w.answers.volume_economics for w in plan.workloads if w.pool}
        for pool in plan.pools:
            command = serve_line(rendered(run, pool.name))
            sizes = {
                flag: int(command[command.index(flag) + 1])
                for flag in (
                    "--data-parallel-size",
                    "--tensor-parallel-size",
                    "--pipeline-parallel-size",
                )
            }
            dp, tp, pp = sizes.values()
            economics = by_option[pool.name]
            [chosen] = [o for o in economics.options if o.id == economics.chosen]
            assert chosen.memory_fit is not None
            assert (dp, tp, pp) == (
                chosen.memory_fit.replicas_per_node,
                chosen.memory_fit.tensor_parallel,
                chosen.memory_fit.pipeline_parallel,
            )
            if pp == 1:
                assert dp * tp == pool.gpus_per_node
            else:
                assert dp == 1 and tp == pool.gpus_per_node
    template = runs["example"][1].pools[0]
    # Scout on a p5.48xlarge: four replicas of two GPUs, four data-parallel engines.
    [scout] = [
        p
        for p in possible_pools(catalog, template)
        if (p.model, p.instance_type, p.precision) == ("llama-4-scout", "p5.48xlarge", "fp8")
    ]
    assert (scout.replicas_per_node, scout.tensor_parallel) == (4, 2)
    scout_args = serve_args(scout, catalog)
    assert scout_args[scout_args.index("--data-parallel-size") + 1] == "4"
    for pool in possible_pools(catalog, template):
        args = serve_args(pool, catalog)
        dp = int(args[args.index("--data-parallel-size") + 1])
        if pool.pipeline_parallel == 1:
            assert dp * pool.tensor_parallel == pool.gpus_per_node, (pool.model, pool.instance_type)
        else:
            assert dp == 1


def test_max_model_len_comes_from_the_request_shapes(
    runs: dict[str, tuple[OfflineRun, Plan]], catalog: Catalog
) -> None:
    """Scout's config advertises 10M tokens, which no KV cache here holds: vLLM then refuses to
    start. The command sets twice the workloads' longest request instead."""
    margin = catalog.serving.max_model_len_margin.value
    assert margin == 2.0
    pools = {p.name: p for p in runs["example"][1].pools}
    # patient-notes: the default request shape (2,000 + 400 tokens); contract-review's own
    # request of 30,000 + 3,000.
    assert pools["patient-notes-pool"].max_model_len == 4_800
    assert pools["contract-review-pool"].max_model_len == 66_000
    for run, plan in runs.values():
        for pool in plan.pools:
            command = serve_line(rendered(run, pool.name))
            assert command[command.index("--max-model-len") + 1] == str(pool.max_model_len)


def _kv_tokens_per_replica(pool: Pool, plan: Plan, catalog: Catalog) -> float:
    """What one replica of the pool's group holds, from the one KV source plans and `planner
    throughput` share (throughput.kv_cache via costs.unit_options: vLLM's budget less weights and
    runtime reserve, with the KV copies tensor parallelism keeps)."""
    [unit] = [
        u
        for u in unit_options(
            catalog, catalog.models[pool.model], catalog.instances[pool.instance_type], defaults()
        )
        if (u.fit.tensor_parallel, u.fit.pipeline_parallel)
        == (pool.tensor_parallel, pool.pipeline_parallel)
    ]
    return unit.kv_tokens_per_replica


@settings(max_examples=25, deadline=None)
@given(
    model=st.sampled_from(["llama-4-scout", "deepseek-v3.2", "llama-3.1-8b"]),
    request_in=st.integers(min_value=100, max_value=150_000),
    request_out=st.integers(min_value=10, max_value=16_000),
)
def test_max_model_len_holds_a_request_within_the_window_and_the_kv_cache(
    model: str, request_in: int, request_out: int
) -> None:
    catalog = load_catalog()
    text = workload_yaml(
        data="regulated",
        model=model,
        request=f"{{input_tokens: {request_in}, output_tokens: {request_out}}}",
    )
    try:
        plan = plan_text(text, catalog)
    except PlannerError:
        return  # a request the model cannot take is refused at plan time, not deployed
    [pool] = plan.pools
    longest = request_in + request_out
    window = catalog.models[model].context_window.value
    kv_tokens = _kv_tokens_per_replica(pool, plan, catalog)
    assert longest <= pool.max_model_len <= min(window, kv_tokens)
    expected = min(math.ceil(2 * longest), int(window), math.floor(kv_tokens))
    assert pool.max_model_len == max(longest, expected)


def test_max_model_len_stops_at_the_context_window(catalog: Catalog) -> None:
    """DeepSeek V3.2 takes 163,840 tokens (config.json): twice a 140,000-token request is
    more, so the window is the limit, as vLLM requires."""
    text = workload_yaml(
        data="regulated",
        model="deepseek-v3.2",
        request="{input_tokens: 120000, output_tokens: 20000}",
    )
    [pool] = plan_text(text, catalog).pools
    assert pool.max_model_len == 163_840


def test_a_pool_without_a_checkpoint_at_its_precision_is_not_served(
    runs: dict[str, tuple[OfflineRun, Plan]], catalog: Catalog
) -> None:
    pool = runs["example"][1].pools[0].model_copy(update={"precision": "int4"})
    with pytest.raises(ValueError, match=r"deepseek-v3\.2 has no checkpoint at int4"):
        serve_args(pool, catalog)


PLAN_FAULTS = {
    "more replicas than GPUs": (_set("pools.1.replicas_per_node", 5), "pools[1].replicas_per_node"),
    "no replicas": (_set("pools.1.replicas_per_node", 0), "pools[1].replicas_per_node"),
    "over the window": (_set("pools.0.max_model_len", 200_000), "pools[0].max_model_len"),
    "no context": (_set("pools.0.max_model_len", 0), "pools[0].max_model_len"),
    "no such checkpoint": (_set("pools.0.precision", "bf16"), "pools[0].precision"),
    "replicas missing": (_set("pools.0.replicas_per_node", None), "pools[0].replicas_per_node"),
    "no GPU memory": (
        _set("pools.0.gpu_memory_utilization", 0.0),
        "pools[0].gpu_memory_utilization",
    ),
    "more than the GPU": (
        _set("pools.1.gpu_memory_utilization", 1.2),
        "pools[1].gpu_memory_utilization",
    ),
}


@pytest.fixture(scope="module")
def example_json(tmp_path_factory: pytest.TempPathFactory) -> PlanJson:
    project = tmp_path_factory.mktemp("plan")
    shutil.copy(REPO / "Pulumi.yaml", project / "Pulumi.yaml")
    with contextlib.chdir(project):
        plan_project(project, None)
    loaded: PlanJson = json.loads((project / "plans/dev/plan.json").read_text())
    return loaded


@pytest.mark.parametrize("fault", sorted(PLAN_FAULTS))
def test_a_plan_with_a_wrong_serving_shape_is_refused(
    fault: str, example_json: PlanJson, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corrupt, field = PLAN_FAULTS[fault]
    path = _write(project, example_json, corrupt)
    before = path.read_text()
    relative = Path("plans/dev/plan.json")
    _refused(capsys, ["preview", str(relative)], relative, [field])
    _refused(capsys, ["verify", str(relative)], relative, [field])
    assert path.read_text() == before  # nothing written


def test_a_catalog_model_without_its_checkpoint_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(REPO / "planner" / "data", data)
    models = yaml.safe_load((data / "models.yaml").read_text())
    del models["models"]["llama-4-scout"]["checkpoints"]["fp8"]
    (data / "models.yaml").write_text(yaml.safe_dump(models))
    serving = yaml.safe_load((data / "vllm.yaml").read_text())
    del serving["models"]["qwen3-235b-a22b"]
    (data / "vllm.yaml").write_text(yaml.safe_dump(serving))
    with pytest.raises(PlannerError) as raised:
        load_catalog(data)
    fields = {problem.field for problem in raised.value.problems}
    assert fields == {"models.llama-4-scout.checkpoints", "vllm.yaml models.qwen3-235b-a22b"}


def test_the_engine_uses_the_gpu_memory_the_plan_counted(
    runs: dict[str, tuple[OfflineRun, Plan]], catalog: Catalog
) -> None:
    """The plan sizes the KV cache with 1 - memory_reserve of each GPU; vLLM 0.33.0's own default
    is 0.92, so the command says the plan's share."""
    assert catalog.defaults.memory_reserve.value == 0.1
    for run, plan in runs.values():
        for pool in plan.pools:
            command = serve_line(rendered(run, pool.name))
            assert command[command.index("--gpu-memory-utilization") + 1] == "0.9"
    text = workload_yaml(data="regulated", model="llama-4-scout").replace(
        "region: us-east-1\n", "region: us-east-1\nassumptions: {memory_reserve: 0.2}\n"
    )
    [pool] = plan_text(text, catalog).pools
    assert pool.gpu_memory_utilization == 0.8
    args = serve_args(pool, catalog)
    assert args[args.index("--gpu-memory-utilization") + 1] == "0.8"
