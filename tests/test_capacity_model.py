"""Plans take every self-hosted unit's throughput from the throughput model
(planner/costing/throughput.py): at each workload's request shape, on the instance's own GPU,
at the fit's parallelism and precision and at the per-user speed; measured figures stay as
anchors the model is checked against."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner import costing
from planner.catalog import Catalog, default_catalog
from planner.cli import main
from planner.costing.throughput import Efficiencies, make_replica, prefill_seconds, serve
from planner.costing.throughput_data import default_throughput_data
from planner.errors import PlannerError
from planner.inputs.loader import LoadedWorkloads, parse_workloads
from planner.planfile import Option
from planner.planning.build import build_plan
from tests.conftest import workload_yaml
from tests.test_answers import H100_ONLY, only, plan_text
from tests.test_costs import settings as defaults  # the planning defaults

SECONDS = 730 * 3600


def capacity(catalog: Catalog, model: str, instance: str) -> costing.Capacity:
    found = costing.unit_capacity(
        catalog, catalog.models[model], catalog.instances[instance], defaults()
    )
    assert found is not None
    return found


ANCHORS = [
    (model_id, index)
    for model_id, model in default_catalog().models.items()
    for index in range(len(model.throughput))
]


@pytest.mark.parametrize(("model_id", "index"), ANCHORS)
def test_the_model_meets_each_measured_anchor(catalog: Catalog, model_id: str, index: int) -> None:
    """Each measured point of models.yaml, predicted at its own GPU, GPU count, shape and load:
    within the fit's stated error (its worst calibration point), or a known miss with its
    reason."""
    data = default_throughput_data()
    model = catalog.models[model_id]
    anchor = model.throughput[index]
    replica = make_replica(data, model_id, anchor.gpu, anchor.gpus, model.default_precision)
    served = serve(
        replica,
        Efficiencies.of(data.fit),
        anchor.input_tokens,
        anchor.output_tokens,
        concurrency=anchor.concurrency,
    )
    ratio = served.output_tokens_per_second / anchor.output_tokens_per_second
    error = max(ratio, 1 / ratio)
    if anchor.known_miss is None:
        assert error <= data.fit.worst_error, (model_id, anchor.shape, ratio)
    else:
        # A known miss says why, and is a miss: else its reason would be stale.
        assert len(anchor.known_miss) > 40
        assert error > data.fit.geometric_mean_error, (model_id, anchor.shape, ratio)


def test_every_plannable_model_has_an_architecture_and_an_anchor(catalog: Catalog) -> None:
    data = default_throughput_data()
    for model_id, model in catalog.models.items():
        assert model_id in data.architectures
        assert model.throughput, model_id
        for anchor in model.throughput:
            assert anchor.gpu in data.gpus


def test_the_sglang_deepseek_figure_is_the_8x_h200_run(catalog: Catalog) -> None:
    gpus = {
        (a.gpu, a.gpus, a.output_tokens_per_second)
        for a in catalog.models["deepseek-v3.2"].throughput
    }
    assert ("h200", 8, 2673.55) in gpus
    assert ("h200", 8, 158) in gpus
    assert not any(gpu == "h100" for gpu, _, _ in gpus)


def test_llama_33_70b_is_plannable(catalog: Catalog) -> None:
    model = catalog.models["llama-3.3-70b"]
    assert model.total_params_b.value == model.active_params_b.value == 70.6
    assert model.checkpoints["fp8"].repo == "nvidia/Llama-3.3-70B-Instruct-FP8"
    assert model.checkpoints["bf16"].repo == "meta-llama/Llama-3.3-70B-Instruct"
    assert model.quality_source is not None and "MMLU Pro" in model.quality_source
    scout = catalog.models["llama-4-scout"]
    assert model.tier == scout.tier and model.quality_rank < scout.quality_rank
    assert catalog.serving.models["llama-3.3-70b"].flags == ["--kv-cache-dtype", "fp8"]


def test_h200_gets_its_own_answer(catalog: Catalog) -> None:
    """No H100 figure stands in for H200: the same model, parallelism and shape serve more on
    H200's 4.8 TB/s and 141 GB than on H100's 3.35 TB/s and 80 GB."""
    h100 = make_replica(default_throughput_data(), "llama-3.3-70b", "h100", 2)
    h200 = make_replica(default_throughput_data(), "llama-3.3-70b", "h200", 2)
    eff = Efficiencies.of(default_throughput_data().fit)
    assert serve(h200, eff, 2000, 400).output_tokens_per_second > (
        serve(h100, eff, 2000, 400).output_tokens_per_second
    )
    p5en = capacity(catalog, "llama-3.3-70b", "p5en.48xlarge")
    assert p5en.gpu == "h200"
    served = costing.unit_throughput(p5en, 2000, 400, 30.0)
    group = p5en.fit.gpus_per_replica
    replica = make_replica(default_throughput_data(), "llama-3.3-70b", "h200", group, "fp8")
    alone = serve(replica, eff, 2000, 400, tokens_per_user=30.0)
    # The node's replicas of the group that serves most (8 GPUs / group of them).
    assert p5en.fit.replicas_per_node == 8 // group
    assert served.output_tps == pytest.approx(8 // group * alone.output_tokens_per_second)
    # ... and no plan warns of a stand-in any more.
    plan = plan_text(workload_yaml(task="chat", data="regulated"), catalog)
    assert not any(w.code == "throughput_stand_in" for w in only(plan).warnings)


def test_the_unit_follows_the_workloads_request_shape(catalog: Catalog) -> None:
    """The same unit serves fewer output tokens for long prompts and more for long answers."""
    unit = capacity(catalog, "llama-3.1-8b", "p5.48xlarge")
    short = costing.unit_throughput(unit, 500, 500, 30.0)
    long_prompt = costing.unit_throughput(unit, 20000, 500, 30.0)
    assert long_prompt.output_tps < short.output_tps
    assert long_prompt.total_tps > long_prompt.output_tps * 40  # 20,500 / 500 tokens a request

    # In a plan: two workloads on the same option, different shapes, different rates.
    def rate(request: str) -> float:
        text = workload_yaml(task="classification", data="regulated", request=request)
        workload = only(plan_text(text, catalog))
        [option] = [
            o
            for o in workload.answers.volume_economics.options
            if o.id == "self_hosted/llama-3.1-8b/p5.48xlarge"
        ]
        assert option.throughput is not None
        assert "output tok/s a unit at" in option.formula
        return option.throughput.output_tokens_per_second

    assert rate("{input_tokens: 500, output_tokens: 500}") > rate(
        "{input_tokens: 20000, output_tokens: 500}"
    )


def test_no_serving_efficiency_derate(catalog: Catalog) -> None:
    """A unit's monthly tokens are its throughput x utilization x seconds: nothing else."""
    unit = capacity(catalog, "llama-4-scout", "p5.48xlarge")
    served = costing.unit_throughput(unit, 2000, 400, 30.0)
    limits = costing.unit_limits(unit, served, SECONDS, defaults())
    assert limits.output_tokens_per_month == pytest.approx(served.output_tps * 0.4 * SECONDS)
    assert limits.total_tokens_per_month == pytest.approx(served.total_tps * 0.4 * SECONDS)
    assert limits.peak_output_tps == pytest.approx(served.output_tps)


def test_a_per_user_speed_bounds_the_batch(catalog: Catalog) -> None:
    unit = capacity(catalog, "qwen3-235b-a22b", "p5.48xlarge")
    fast = costing.unit_throughput(unit, 2000, 400, 45.0)
    slow = costing.unit_throughput(unit, 2000, 400, 20.0)
    assert fast.bound == slow.bound == "per-user speed"
    assert fast.output_tps < slow.output_tps
    assert fast.tokens_per_user >= 45.0 and slow.tokens_per_user >= 20.0
    # Slow enough, the KV cache bounds the batch instead.
    assert costing.unit_throughput(unit, 2000, 400, 1.0).bound == "KV memory"


def test_multi_node_replica_is_tensor_within_pipeline_across_nodes(catalog: Catalog) -> None:
    """DeepSeek V3.2 on two p5.48xlarge: TP 8 in a node x PP 2 across. Each node is a stage of
    half the layers and parameters; the replica serves what a stage does, and a stage must
    reach twice the per-user speed (a token passes both stages)."""
    unit = capacity(catalog, "deepseek-v3.2", "p5.48xlarge")
    assert (unit.fit.tensor_parallel, unit.fit.pipeline_parallel, unit.nodes_per_unit) == (8, 2, 2)
    data = costing.deployed_throughput_data(catalog)
    arch = data.architectures["deepseek-v3.2"]
    half = arch.model_copy(
        update={
            "layers": arch.layers.model_copy(update={"value": arch.layers.value / 2}),
            "total_params_b": arch.total_params_b.model_copy(
                update={"value": arch.total_params_b.value / 2}
            ),
            "active_params_b": arch.active_params_b.model_copy(
                update={"value": arch.active_params_b.value / 2}
            ),
            "attention_params_b": arch.attention_params_b.model_copy(
                update={"value": arch.attention_params_b.value / 2}
            )
            if arch.attention_params_b is not None
            else None,
        }
    )
    staged = data.model_copy(
        update={"architectures": {**data.architectures, "deepseek-v3.2": half}}
    )
    stage = make_replica(staged, "deepseek-v3.2", "h100", 8, "fp8")
    # A stage holds half the weights (and half the attention-weight copies of attention data
    # parallelism) and half of each token's KV cache.
    full = make_replica(data, "deepseek-v3.2", "h200", 8, "fp8")
    assert stage.weight_bytes == pytest.approx(full.weight_bytes / 2)
    assert stage.kv_bytes_per_token == pytest.approx(full.kv_bytes_per_token / 2)
    expected = serve(stage, Efficiencies.of(data.fit), 2000, 400, tokens_per_user=60.0)
    assert data.settings.moe_parallelism.value == "tensor"  # as the stack deploys it
    served = costing.unit_throughput(unit, 2000, 400, 30.0)
    assert served.output_tps == pytest.approx(expected.output_tokens_per_second)
    assert served.tokens_per_user == pytest.approx(expected.tokens_per_user / 2)
    assert served.tokens_per_user >= 30.0


def test_prefix_caching_skips_the_cached_prefill(catalog: Catalog) -> None:
    """With half of each prompt a cached prefix, prefill computes only the other half: the
    unit serves more of a long-prompt shape, and nothing changes at 0."""
    data = default_throughput_data()
    eff = Efficiencies.of(data.fit)
    replica = make_replica(data, "llama-3.3-70b", "h100", 2)
    assert prefill_seconds(replica, eff, 20000, 0.5) < prefill_seconds(replica, eff, 20000)
    plain = serve(replica, eff, 20000, 500, tokens_per_user=20.0)
    cached = serve(replica, eff, 20000, 500, tokens_per_user=20.0, cached_input_fraction=0.5)
    assert cached.output_tokens_per_second > plain.output_tokens_per_second
    assert cached.time_to_first_token_s < plain.time_to_first_token_s
    zero = serve(replica, eff, 20000, 500, tokens_per_user=20.0, cached_input_fraction=0.0)
    assert zero == plain
    # The plan's capacity function takes the workload's share.
    unit = capacity(catalog, "llama-3.3-70b", "p5.48xlarge")
    assert costing.unit_throughput(unit, 20000, 500, 20.0, 0.5).output_tps > (
        costing.unit_throughput(unit, 20000, 500, 20.0).output_tps
    )
    with pytest.raises(PlannerError):
        serve(replica, eff, 20000, 500, cached_input_fraction=1.5)
    # A wholly cached prompt (the workloads file allows 1) computes no prefill at all.
    assert prefill_seconds(replica, eff, 20000, 1.0) == 0.0


@settings(max_examples=25, deadline=None)
@given(
    fraction=st.floats(min_value=0.0, max_value=0.95),
    more=st.floats(min_value=0.0, max_value=0.95),
    prompt=st.integers(min_value=100, max_value=30000),
)
def test_a_larger_cached_share_never_lowers_throughput(
    fraction: float, more: float, prompt: int
) -> None:
    data = default_throughput_data()
    eff = Efficiencies.of(data.fit)
    replica = make_replica(data, "llama-3.1-8b", "h100", 1)
    low, high = sorted((fraction, more))
    assert serve(
        replica, eff, prompt, 400, cached_input_fraction=high
    ).output_tokens_per_second >= (
        serve(replica, eff, prompt, 400, cached_input_fraction=low).output_tokens_per_second
        * (1 - 1e-9)
    )


@settings(max_examples=20, deadline=None)
@given(
    prompt=st.integers(min_value=100, max_value=20000),
    longer=st.integers(min_value=0, max_value=20000),
    speed=st.floats(min_value=5.0, max_value=60.0),
)
def test_longer_prompts_never_raise_a_units_output(prompt: int, longer: int, speed: float) -> None:
    unit = capacity(default_catalog(), "llama-3.3-70b", "p5en.48xlarge")
    short = costing.unit_throughput(unit, prompt, 400, speed)
    long = costing.unit_throughput(unit, prompt + longer, 400, speed)
    # Bisection on whole batches: equal within one request of a replica.
    slack = 1 + 1 / max(short.batch, 1)
    assert long.output_tps <= short.output_tps * slack


def test_serving_efficiency_in_a_workloads_file_is_an_error(tmp_path: Path) -> None:
    """The old assumption would derate the derived throughput a second time: refused, naming
    the file, the field and its line; nothing is written."""
    path = tmp_path / "w.yaml"
    path.write_text(
        "assumptions:\n  utilization: 0.5\n  serving_efficiency: 0.4\n" + workload_yaml(),
        encoding="utf-8",
    )
    out = tmp_path / "out"
    code = main(["plan", str(path), "--out", str(out), "--no-stack-config"])
    assert code == 2
    assert not out.exists()


def test_serving_efficiency_message(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(
        "assumptions:\n  utilization: 0.5\n  serving_efficiency: 0.4\n" + workload_yaml(),
        encoding="utf-8",
    )
    assert main(["plan", str(path), "--out", str(tmp_path / "o"), "--no-stack-config"]) == 2
    err = capsys.readouterr().err
    assert f"{path}: assumptions.serving_efficiency (line 3)" in err
    assert "no longer an assumption" in err and "Traceback" not in err


def test_plan_json_shows_the_throughput_behind_each_self_hosted_option(
    catalog: Catalog, tmp_path: Path
) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(workload_yaml(task="chat", data="regulated"), encoding="utf-8")
    out = tmp_path / "out"
    assert main(["plan", str(path), "--out", str(out), "--no-stack-config"]) == 0
    plan = json.loads((out / "plan.json").read_text(encoding="utf-8"))
    assert plan["schema_version"] == 11
    [workload] = plan["workloads"]
    own = [
        o
        for o in workload["answers"]["volume_economics"]["options"]
        if o["placement"] == "self_hosted"
    ]
    assert own
    for option in own:
        used = option["throughput"]
        assert (used["input_tokens"], used["output_tokens"]) == (2000, 400)
        assert used["user_output_tps"] == 30
        assert used["bound"] in {"per-user speed", "KV memory", "bandwidth", "compute", "overhead"}
        assert used["output_tokens_per_second"] > 0
        # The figures behind it: the GPU's bandwidth and the fit, with sources.
        gpu = catalog.instances[option["instance_type"]].gpu
        assert f"gpu.{gpu}.bandwidth_tb_per_s" in option["figures"]
        assert "throughput_fit.geometric_mean_error" in option["figures"]
        assert not any(key.startswith("throughput.") for key in option["figures"])
    assert "serving_efficiency" not in plan["assumptions"]
    markdown = (out / "plan.md").read_text(encoding="utf-8")
    assert "Throughput of one unit, from the throughput model" in markdown
    assert "| gpu.h" in markdown and "bandwidth_tb_per_s" in markdown


def test_tco_refuses_a_request_no_replica_holds(capsys: pytest.CaptureFixture[str]) -> None:
    """Llama 4 Scout takes 10M-token requests, but a replica on eight H100s keeps about 4.6M
    tokens of KV cache: a 5,000,000-token request does not fit any group of a p5.48xlarge; the
    error names the flag, exit 2, no traceback. A request beyond the model's context window
    (Llama 3.1 8B: 131,072 tokens) is refused as `planner plan` refuses it, in `tco` and in
    `throughput` alike. Llama 3.3 70B does not fit one H100 at all once the engine's own memory
    is counted."""
    args = ["tco", "llama-4-scout", "--instance", "p5.48xlarge", "--utilization", "1"]
    assert main([*args, "--input-tokens", "5000000"]) == 2
    err = capsys.readouterr().err
    assert "--input-tokens" in err and "does not fit the KV cache" in err
    assert "Traceback" not in err
    small = ["tco", "llama-3.1-8b", "--instance", "p5.4xlarge", "--utilization", "1"]
    assert main([*small, "--input-tokens", "1000"]) == 0
    capsys.readouterr()
    assert main([*small, "--input-tokens", "200000"]) == 2
    err = capsys.readouterr().err
    assert "--input-tokens" in err and "context window of 131,072 tokens" in err
    tput = ["throughput", "llama-3.1-8b", "--gpu", "h100", "--gpus", "1", "--output-tokens", "100"]
    assert main([*tput, "--input-tokens", "500000"]) == 2
    err = capsys.readouterr().err
    assert "--input-tokens" in err and "context window" in err and "Traceback" not in err
    assert main([*tput, "--input-tokens", "1000"]) == 0
    capsys.readouterr()
    big = ["tco", "llama-3.3-70b", "--instance", "p5.4xlarge", "--utilization", "1"]
    assert main(big) == 2
    err = capsys.readouterr().err
    assert "cannot be served on p5.4xlarge" in err and "Traceback" not in err


def test_the_unit_takes_the_tensor_parallel_group_that_serves_most(catalog: Catalog) -> None:
    """Llama 3.3 70B's 70.6 GB of FP8 weights fit two 80 GB H100s, but four pairs read their
    weights twice as slowly as two groups of four: at 30 tok/s a user the larger group batches
    more. The unit takes the group whose node serves most at the settings' shape, and the fit
    it reports (tensor parallel, replicas per node) is that group's."""
    llama, p5 = catalog.models["llama-3.3-70b"], catalog.instances["p5.48xlarge"]
    smallest = costing.memory_fit(catalog, llama, p5, "fp8", 0.1)
    assert smallest is not None and smallest.gpus_per_replica == 2
    chosen = capacity(catalog, "llama-3.3-70b", "p5.48xlarge")
    assert chosen.fit.gpus_per_replica > 1
    assert chosen.fit.gpus_per_replica * chosen.fit.replicas_per_node == 8
    served = {}
    for group in (2, 4, 8):
        fit = replace(smallest, gpus_per_replica=group, replicas_per_node=8 // group)
        unit = replace(chosen, fit=fit)
        served[group] = costing.unit_throughput(unit, 2000, 400, 30.0).output_tps
    assert served[chosen.fit.gpus_per_replica] == max(served.values())
    assert max(served.values()) > 1.1 * served[2]
    multi = capacity(catalog, "deepseek-v3.2", "p5.48xlarge")
    assert multi.fit.nodes_per_replica == 2  # multi-node replicas keep their fit


def test_a_workload_s_own_user_speed_sets_its_throughput_and_requests_in_flight(
    catalog: Catalog,
) -> None:
    """A workload that reads at 45 tok/s a user (an agent, a code assistant) gets the throughput
    a unit serves at that speed, smaller batches, so more nodes than at the assumptions' 30. Its
    replicas are the
    group that serves its speed best: eight H100s at 45 and 60 tok/s a user (the plan's 30 is
    served best by four)."""
    option_id = "self_hosted/llama-3.3-70b/p5.48xlarge"

    def option(**fields: str) -> Option:
        text = workload_yaml(
            task="chat", data="regulated", monthly_tokens="{input: 40B, output: 8B}", **fields
        )
        workload = only(plan_text(text, catalog))
        return next(o for o in workload.answers.volume_economics.options if o.id == option_id)

    default, fast = option(), option(user_output_tps="45")
    assert default.throughput is not None and fast.throughput is not None
    assert (default.throughput.user_output_tps, fast.throughput.user_output_tps) == (30, 45)
    assert fast.throughput.output_tokens_per_second < default.throughput.output_tokens_per_second
    assert fast.throughput.tokens_per_user >= 45 and fast.throughput.user_speed_met
    assert fast.nodes is not None and default.nodes is not None and fast.nodes > default.nodes
    # The requests in flight its rate brings are the throughput model's batch at that speed:
    # no KV term of their own (Demand.kv_tokens), and the formula shows the speed instead.
    assert "KV cache" not in fast.formula and "KV cache" not in default.formula
    assert "45 tok/s per user" in fast.formula and "30 tok/s per user" in default.formula
    assert default.memory_fit is not None and default.memory_fit.gpus_per_replica == 4
    assert fast.memory_fit is not None and fast.memory_fit.gpus_per_replica == 8
    faster = option(user_output_tps="60")
    assert faster.throughput is not None and faster.throughput.user_speed_met
    assert faster.throughput.tokens_per_user >= 60


def test_an_option_that_cannot_reach_the_per_user_speed_is_left_out(catalog: Catalog) -> None:
    """100 tok/s a user is more than Llama 3.3 70B reaches on any H100 or H200 group: even one
    request alone on eight GPUs reads its 70.6 GB of weights each step at 8 x 3.35 TB/s x the
    fitted bandwidth efficiency, plus the step's overheads: about 78 tok/s on p5 (84 on p5en).
    Its self-hosted options are left out with the reason in the plan (the API sells the same
    weights at any speed); a workload with no other option is refused, naming its field."""
    text = workload_yaml(task="faq", data="internal", user_output_tps="100")
    workload = only(plan_text(text, catalog))
    economics = workload.answers.volume_economics
    ids = {o.id for o in economics.options}
    assert not any(i.startswith("self_hosted/llama-3.3-70b/") for i in ids)
    assert all(o.throughput is None or o.throughput.user_speed_met for o in economics.options)
    assert "left out because no batch reaches 100 output tokens/s a user (its user_output_tps)" in (
        economics.reason
    )
    assert "self_hosted/llama-3.3-70b/p5.48xlarge (at most 77.8)" in economics.reason
    # At 30 tok/s the same options are admissible.
    slow = only(plan_text(workload_yaml(task="faq", data="internal"), catalog))
    assert "self_hosted/llama-3.3-70b/p5.48xlarge" in {
        o.id for o in slow.answers.volume_economics.options
    }
    assert "no batch reaches" not in slow.answers.volume_economics.reason


def test_a_speed_no_option_reaches_is_an_error(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regulated data may only be self-hosted: pinned to Llama 3.3 70B at 100 tok/s a user,
    nothing can serve it. Exit 2, one line naming the file, the field and its line, what each
    option reaches at most; nothing written."""
    path = project / "workloads.yaml"
    path.write_text(
        workload_yaml(data="regulated", model="llama-3.3-70b", user_output_tps="100"),
        encoding="utf-8",
    )
    code = main(["plan", str(path)])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == "" and "Traceback" not in captured.err
    [line] = captured.err.splitlines()
    assert f"{path}: workloads[0].user_output_tps (line " in line
    assert "no option allowed reaches 100 output tokens/s a user" in line
    assert "self_hosted/llama-3.3-70b/p5.48xlarge (at most 77.8)" in line
    assert not (project / "plans").exists() and not (project / "Pulumi.dev.yaml").exists()


@pytest.mark.parametrize("value", ["0", "-5", "fast"])
def test_a_bad_user_output_tps_is_refused(
    value: str, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = project / "workloads.yaml"
    path.write_text(workload_yaml(user_output_tps=value))
    code = main(["plan", str(path)])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == "" and "Traceback" not in captured.err
    [line] = captured.err.splitlines()
    assert str(path) in line and "workloads[0].user_output_tps (line " in line
    assert not (project / "plans").exists() and not (project / "Pulumi.dev.yaml").exists()


def test_a_model_without_calibration_points_is_marked_unvalidated(catalog: Catalog) -> None:
    """DeepSeek has no calibration point and every measured point of it is off by 1.5x or more:
    its throughput in a plan says it is unvalidated (the fit's error does not cover it), as
    `planner throughput` does; a calibrated model's does not."""
    from planner.render.plan_files import plan_markdown

    plan = plan_text(workload_yaml(task="legal_analysis", data="regulated"), catalog)
    [workload] = plan.workloads
    by_model = {
        o.model: o for o in workload.answers.volume_economics.alternatives
        + workload.answers.volume_economics.options
        if o.throughput is not None
    }  # fmt: skip
    assert by_model["deepseek-v3.2"].throughput is not None
    assert not by_model["deepseek-v3.2"].throughput.validated
    calibrated = {p.model for p in default_throughput_data().calibration}
    assert "deepseek-v3.2" not in calibrated
    for model, option in by_model.items():
        assert option.throughput is not None
        assert option.throughput.validated == (model in calibrated)
    assert "**Unvalidated:** no measured point of deepseek-v3.2" in plan_markdown(plan)


def throughput_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(["throughput", *args, "--json"]) == 0
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    return report


def test_planner_throughput_nodes_gives_the_plans_multi_node_figure(
    catalog: Catalog, capsys: pytest.CaptureFixture[str]
) -> None:
    """DeepSeek V3.2 on p5.48xlarge is one replica on two nodes, tensor parallel 8 x pipeline
    parallel 2. `planner throughput --gpus 8 --nodes 2` at the plan's shape and per-user speed
    gives the figures the plan prices that option with: output tokens/s, batch, per-user
    speed."""
    text = H100_ONLY + workload_yaml(task="legal_analysis", data="regulated")
    economics = only(plan_text(text, catalog)).answers.volume_economics
    [option] = [
        o
        for o in economics.options + economics.alternatives
        if o.id == "self_hosted/deepseek-v3.2/p5.48xlarge"
    ]
    assert option.memory_fit is not None and option.throughput is not None
    fit = option.memory_fit
    assert (fit.tensor_parallel, fit.pipeline_parallel, fit.replicas_per_node) == (8, 2, 1)
    used = option.throughput
    report = throughput_json(
        capsys, "deepseek-v3.2", "--gpu", "h100", "--gpus", "8", "--nodes", "2",
        "--input-tokens", str(used.input_tokens), "--output-tokens", str(used.output_tokens),
        "--tokens-per-user", f"{used.user_output_tps:g}",
    )  # fmt: skip
    assert report["output_tokens_per_second"] == used.output_tokens_per_second
    assert report["batch"] == used.batch_per_replica
    assert round(report["tokens_per_user"], 1) == used.tokens_per_user
    assert report["nodes"] == 2 and report["weights_gb"] == pytest.approx(671, abs=1)
    assert report["figures"]["moe_parallelism"]["value"] == "tensor"
    # One node is not the plan's replica: DeepSeek's 671 GB do not fit eight H100s.
    assert main(["throughput", "deepseek-v3.2", "--gpu", "h100", "--gpus", "8",
                 "--input-tokens", "2000", "--output-tokens", "400"]) == 2  # fmt: skip
    capsys.readouterr()


def test_planner_throughput_refuses_bad_nodes(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["throughput", "deepseek-v3.2", "--gpu", "h100", "--gpus", "8", "--nodes", "62",
            "--input-tokens", "2000", "--output-tokens", "400"]  # fmt: skip
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err
    assert captured.err.splitlines() == [
        "error: --nodes: must be at most deepseek-v3.2's 61 layers, not 62"
    ]
    # Not a count at all: argparse's type check, one line naming the flag.
    for bad in ("0", "-2", "two"):
        with pytest.raises(SystemExit) as exit_info:
            main([*args[:7], bad, *args[8:]])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert f"argument --nodes: must be a whole number of at least 1, not '{bad}'" in err
        assert "Traceback" not in err


@pytest.mark.parametrize(
    ("model", "instance"),
    [
        ("llama-3.3-70b", "p5.48xlarge"),  # dense, 8 KV heads: no copies up to 8 GPUs
        ("qwen3-235b-a22b", "p5.48xlarge"),  # 4 KV heads: each kept twice on 8 GPUs
        ("deepseek-v3.2", "p5en.48xlarge"),  # MLA: the latent on every GPU
        ("deepseek-v3.2", "p5.48xlarge"),  # two nodes, pipeline parallel
    ],
)
def test_the_plans_kv_limit_is_planner_throughputs(
    catalog: Catalog, capsys: pytest.CaptureFixture[str], model: str, instance: str
) -> None:
    """One function (throughput.kv_cache) sizes the KV cache for both: for every group a plan
    may serve the model with, the tokens of context a replica holds (what the plan admits and
    counts in flight), and the batch it limits, are `planner throughput`'s for the same
    replica, memory reserve and shape."""
    units = costing.unit_options(
        catalog, catalog.models[model], catalog.instances[instance], defaults()
    )
    assert units
    for unit in units:
        fit = unit.fit
        args = [model, "--gpu", unit.gpu, "--gpus", str(fit.tensor_parallel),
                "--nodes", str(fit.pipeline_parallel), "--precision", fit.precision,
                "--input-tokens", "2000", "--output-tokens", "400"]  # fmt: skip
        report = throughput_json(capsys, *args)
        limits = costing.unit_limits(unit, None, SECONDS, defaults())
        assert report["kv_cache_tokens"] == round(limits.kv_tokens_per_replica)
        assert report["kv_cache_batch"] == math.floor(limits.kv_tokens_per_replica / 2200)
        # Slow enough a user that the KV cache bounds the batch: the same batch.
        slow = costing.unit_throughput(unit, 2000, 400, 1.0)
        assert slow.limit == "KV memory"
        report = throughput_json(capsys, *args, "--tokens-per-user", "1")
        assert report["batch"] == slow.batch == report["kv_cache_batch"]
        assert report["kv_cache_gb"] == round(unit.kv_gb_per_replica, 1)


def test_workloads_share_a_pool_only_at_the_same_group(catalog: Catalog) -> None:
    """A pool's replicas have one tensor-parallel group. Two workloads on Llama 3.3 70B on
    p5.48xlarge at 30 tok/s a user are served best by four GPUs a replica, one at 60 tok/s by
    eight: the first two share a pool, the third gets a pool of its own group (named -tp8); each
    pool deploys the group its members were priced with."""
    body = "".join(
        workload_yaml(
            name=name, task="chat", data="regulated", model="llama-3.3-70b", **fields
        ).split("workloads:\n")[1]
        for name, fields in (
            ("a", {}),
            ("b", {}),
            ("fast", {"user_output_tps": "60"}),
        )
    )
    text = "organization: acme\nregion: us-east-1\n" + H100_ONLY + "workloads:\n" + body
    spec = parse_workloads(text, "workloads.yaml", catalog)
    loaded = LoadedWorkloads(Path("workloads.yaml"), spec, "0" * 64)
    plan = build_plan(loaded, catalog, "dev", "workloads.yaml", "optimal")
    pools = {pool.name: pool for pool in plan.pools}
    assert sorted(pools) == ["llama-3-3-70b-p5-48xlarge", "llama-3-3-70b-p5-48xlarge-tp8"]
    assert pools["llama-3-3-70b-p5-48xlarge"].workloads == ["a", "b"]
    assert pools["llama-3-3-70b-p5-48xlarge-tp8"].workloads == ["fast"]
    for workload in plan.workloads:
        option = next(
            o
            for o in workload.answers.volume_economics.options
            if o.id == workload.answers.volume_economics.chosen
        )
        assert option.memory_fit is not None and workload.pool is not None
        assert pools[workload.pool].tensor_parallel == option.memory_fit.tensor_parallel
    assert pools["llama-3-3-70b-p5-48xlarge-tp8"].tensor_parallel == 8
    assert pools["llama-3-3-70b-p5-48xlarge"].tensor_parallel == 4


def test_an_moe_figure_in_a_configuration_never_measured_is_marked_extrapolated(
    catalog: Catalog,
) -> None:
    """The calibration measured the MoE models with TensorRT-LLM and attention data
    parallelism; the pools serve them tensor parallel on vLLM. Their figures are marked as the
    model's extrapolation (plan.json and plan.md), the dense models' are not."""
    from planner.render.plan_files import plan_markdown

    plan = plan_text(workload_yaml(data="regulated", model="llama-4-scout"), catalog)
    for option in only(plan).answers.volume_economics.options:
        if option.throughput is not None:
            moe = default_throughput_data().architectures[option.model].is_moe
            assert option.throughput.configuration_measured is not moe, option.id
    text = plan_markdown(plan)
    assert "**Extrapolated:** the calibration measured llama-4-scout only with TensorRT-LLM" in text
    dense = plan_text(workload_yaml(data="regulated", model="llama-3.3-70b"), catalog)
    assert "**Extrapolated:**" not in plan_markdown(dense)
