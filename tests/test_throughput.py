"""The throughput model of one serving replica (planner/costing/throughput.py) and
`planner throughput`."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from bench import throughput_bench
from planner.catalog import DATA_DIR, default_catalog
from planner.cli import main
from planner.costing.throughput import (
    Efficiencies,
    decode_step,
    experts_touched,
    kv_batch,
    make_replica,
    moe_dispatch_s,
    predict,
    prefill_seconds,
    serve,
)
from planner.costing.throughput_data import (
    ThroughputData,
    default_throughput_data,
    load_throughput_data,
)
from planner.costing.throughput_report import figures_used
from planner.errors import PlannerError

DATA = default_throughput_data()
EFF = Efficiencies.of(DATA.fit)
MODELS = sorted(DATA.architectures)
GPUS = sorted(DATA.gpus)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["throughput", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_every_catalog_model_has_an_architecture_that_agrees_with_it() -> None:
    catalog = default_catalog()
    for name, model in catalog.models.items():
        arch = DATA.architectures[name]
        assert arch.total_params_b.value == model.total_params_b.value, name
        assert arch.active_params_b.value == model.active_params_b.value, name
        # models.yaml counts a 16-bit cache; the architecture's values at 2 bytes must match it
        assert arch.kv_values_per_token() * 2 == model.kv_bytes_per_token.value, name
    for name in ("llama-3.1-70b", "llama-3.3-70b"):  # the calibration's dense 70.6B models
        assert DATA.architectures[name].active_params_b.value == 70.6
    assert {p.model for p in DATA.calibration} <= set(DATA.architectures)


# --- The parts -------------------------------------------------------------------------------


def test_kv_bytes_per_token_from_the_architecture() -> None:
    # 80 layers x 8 KV heads x 128 x 2 (K and V) x 1 byte (FP8 cache)
    llama = make_replica(DATA, "llama-3.3-70b", "h100", 1)
    assert llama.kv_bytes_per_token == 80 * 8 * 128 * 2 * 1
    # DeepSeek's latent attention caches 512 + 64 values a layer, BF16; MoE models run attention
    # data parallel (each GPU caches its own requests), so the latent is kept once
    deepseek = make_replica(DATA, "deepseek-v3.2", "h200", 8)
    assert deepseek.kv_bytes_per_token == 61 * 576 * 2
    assert deepseek.request_parallelism == 8
    qwen8 = make_replica(DATA, "qwen3-235b-a22b", "h200", 8)
    assert qwen8.kv_bytes_per_token == 94 * 4 * 128 * 2
    # Under tensor parallelism the latent is on every GPU, and Qwen3's 4 KV heads are each kept
    # twice on 8 GPUs; the per-request work is not shared
    tensor = tensor_parallel_moe(DATA)
    deepseek = make_replica(tensor, "deepseek-v3.2", "h200", 8)
    assert deepseek.kv_bytes_per_token == 61 * 576 * 2 * 8
    assert deepseek.request_parallelism == 1
    qwen1 = make_replica(tensor, "qwen3-235b-a22b", "h200", 4)
    qwen8 = make_replica(tensor, "qwen3-235b-a22b", "h200", 8)
    assert qwen8.kv_bytes_per_token == 2 * qwen1.kv_bytes_per_token == 2 * 94 * 4 * 128 * 2
    # dense models are tensor parallel either way
    assert make_replica(DATA, "llama-3.3-70b", "h100", 2).request_parallelism == 1


def tensor_parallel_moe(data: ThroughputData) -> ThroughputData:
    """The catalog with MoE models served tensor parallel instead of attention data parallel."""
    setting = data.settings.moe_parallelism.model_copy(update={"value": "tensor"})
    settings = data.settings.model_copy(update={"moe_parallelism": setting})
    return data.model_copy(update={"settings": settings})


def test_attention_data_parallel_shares_the_per_request_work() -> None:
    """At a large batch the per-request work of a step is split over the GPUs of an attention
    data parallel MoE replica, and its collectives are one all-gather and one reduce-scatter a
    MoE layer instead of two all-reduces a layer, so the step is shorter than under tensor
    parallelism. The MoE dispatch is not shared: every GPU handles every token either way."""
    dp = make_replica(DATA, "qwen3-235b-a22b", "h200", 8)
    tp = make_replica(tensor_parallel_moe(DATA), "qwen3-235b-a22b", "h200", 8)
    overhead_dp = decode_step(dp, EFF, 1024, 1000).overhead_s
    overhead_tp = decode_step(tp, EFF, 1024, 1000).overhead_s
    dispatch = 1024 * 94 * 4096 * 2 * EFF.moe_factor / 4.8e12  # 94 MoE layers, BF16 hidden
    assert moe_dispatch_s(dp, EFF, 1024) == moe_dispatch_s(tp, EFF, 1024) == pytest.approx(dispatch)
    # all 94 layers are MoE layers: the same latencies, half the ring traffic
    ring = 94 * 2 * (7 / 8) * 1024 * 4096 * 2 / 450e9
    shared = 1024 * EFF.request_overhead_s * 7 / 8
    assert overhead_tp - overhead_dp == pytest.approx(shared + ring)
    assert (
        serve(dp, EFF, 128, 2048).output_tokens_per_second
        > serve(tp, EFF, 128, 2048).output_tokens_per_second
    )


def test_weights_and_kv_memory_per_gpu_type() -> None:
    h100 = make_replica(DATA, "llama-3.3-70b", "h100", 1)
    h200 = make_replica(DATA, "llama-3.3-70b", "h200", 1)
    assert h100.weight_bytes == h200.weight_bytes == pytest.approx(70.6e9)
    reserve = DATA.settings.runtime_reserve_gb.value * 1e9
    fraction = DATA.settings.kv_free_fraction.value
    assert h200.kv_capacity_tokens == pytest.approx(
        (141e9 - 70.6e9 - reserve) * fraction / h200.kv_bytes_per_token
    )
    assert h200.kv_capacity_tokens > 5 * h100.kv_capacity_tokens
    assert h200.bandwidth_bytes_per_second / h100.bandwidth_bytes_per_second == pytest.approx(
        4.8 / 3.35
    )


def test_precision_sets_weight_bytes_and_flops() -> None:
    fp8 = make_replica(DATA, "llama-3.1-8b", "h100", 1, "fp8")
    bf16 = make_replica(DATA, "llama-3.1-8b", "h100", 1, "bf16")
    assert bf16.weight_bytes == 2 * fp8.weight_bytes
    assert fp8.flops_per_second == pytest.approx(2 * bf16.flops_per_second, rel=0.01)
    assert (
        serve(fp8, EFF, 1000, 1000).output_tokens_per_second
        > serve(bf16, EFF, 1000, 1000).output_tokens_per_second
    )


def test_moe_reads_active_weights_at_batch_one_and_all_at_large_batches() -> None:
    arch = DATA.architectures["qwen3-235b-a22b"]
    assert experts_touched(arch, 1) == pytest.approx(8 / 128)
    assert experts_touched(arch, 512) > 0.99
    assert experts_touched(DATA.architectures["llama-3.1-8b"], 512) == 0
    # active = shared + k/E x experts, total = shared + experts
    experts = arch.expert_params()
    shared = 235e9 - experts
    assert shared + experts * 8 / 128 == pytest.approx(22e9)
    r = make_replica(DATA, "qwen3-235b-a22b", "h100", 8)
    one = decode_step(r, replace(EFF, moe_factor=1.0), 1, 0)
    bytes_read = one.memory_s * r.bandwidth_bytes_per_second * EFF.bandwidth
    # plus the unrouted weights each attention data parallel GPU reads from its own copy
    assert bytes_read - r.replicated_weight_bytes == pytest.approx(22e9, rel=1e-6)
    # the MoE factor weighs each token's dispatch in each MoE layer, never the weight reads:
    # one more pass of the token's hidden state through a GPU's HBM per MoE layer
    slower = decode_step(r, replace(EFF, moe_factor=2.0), 1, 0)
    assert slower.memory_s == one.memory_s
    assert slower.overhead_s - one.overhead_s == pytest.approx(94 * 4096 * 2 / 3.35e12)


def test_attention_data_parallel_keeps_a_copy_of_all_but_the_routed_experts_per_gpu() -> None:
    """TensorRT-LLM splits only the routed experts over attention data parallel GPUs: attention,
    dense MLP layers, shared experts and embeddings are on every GPU (modeling_llama.py)."""
    qwen = DATA.architectures["qwen3-235b-a22b"]
    # Qwen3: no dense layers or shared experts; 94 layers of attention, 4096 hidden x (2 x 64
    # query + 2 x 4 KV heads) x 128 = 6.7 B, and the embeddings make the 7.8 B outside experts
    attention = 94 * 4096 * (2 * 64 + 2 * 4) * 128
    assert qwen.unrouted_params() == pytest.approx(235e9 - 213e9 / (1 - 8 / 128))
    assert attention < qwen.unrouted_params() < attention + 1.5e9
    r = make_replica(DATA, "qwen3-235b-a22b", "h200", 8)
    assert r.replicated_weight_bytes == pytest.approx(7 * qwen.unrouted_params())
    assert r.weight_bytes == pytest.approx(235e9 + r.replicated_weight_bytes)
    assert r.max_batch == 8 * DATA.settings.max_batch.value  # one scheduler per rank
    tp = make_replica(tensor_parallel_moe(DATA), "qwen3-235b-a22b", "h200", 8)
    assert tp.replicated_weight_bytes == 0 and tp.weight_bytes == pytest.approx(235e9)
    assert tp.max_batch == DATA.settings.max_batch.value
    # Maverick: 24 dense MLP layers (3 x 5120 x 16384), 24 shared experts (3 x 5120 x 8192) and
    # attention (48 x 5120 x 96 x 128) are most of its 14 B outside the routed experts
    maverick = DATA.architectures["llama-4-maverick"]
    dense_and_shared = 24 * 3 * 5120 * (16384 + 8192) + 48 * 5120 * 96 * 128
    assert dense_and_shared < maverick.unrouted_params() < dense_and_shared + 2.5e9
    copies = make_replica(DATA, "llama-4-maverick", "h100", 8).replicated_weight_bytes
    assert copies == pytest.approx(7 * maverick.unrouted_params())


def test_prefill_pays_each_prompt_tokens_moe_dispatch() -> None:
    """A prompt token passes the MoE layers' dispatch as a decoded token does; dense models have
    none."""
    r = make_replica(DATA, "qwen3-235b-a22b", "h100", 8)
    more = prefill_seconds(r, replace(EFF, moe_factor=3.0), 2048)
    assert more - prefill_seconds(r, replace(EFF, moe_factor=1.0), 2048) == pytest.approx(
        2 * 2048 * 94 * 4096 * 2 / 3.35e12
    )
    dense = make_replica(DATA, "llama-3.3-70b", "h100", 2)
    assert prefill_seconds(dense, replace(EFF, moe_factor=1.0), 2048) == prefill_seconds(
        dense, replace(EFF, moe_factor=3.0), 2048
    )


def test_decode_step_is_bandwidth_bound_at_small_batch_and_grows_with_context() -> None:
    r = make_replica(DATA, "llama-3.3-70b", "h100", 1)
    step = decode_step(r, EFF, 1, 1000)
    assert step.memory_s > step.compute_s
    weights_s = 70.6e9 / (3.35e12 * EFF.bandwidth)
    assert step.memory_s == pytest.approx(weights_s, rel=0.01)
    assert decode_step(r, EFF, 8, 4000).seconds > decode_step(r, EFF, 8, 1000).seconds


def test_prefill_is_flops_bound_and_attention_grows_quadratically() -> None:
    r = make_replica(DATA, "llama-3.1-8b", "h100", 1)
    linear = 2 * 8.03e9 * 1000 / (r.flops_per_second * EFF.compute)
    assert prefill_seconds(r, EFF, 1000) == pytest.approx(linear, rel=0.05)
    # doubling a long prompt more than doubles its prefill (the attention term)
    assert prefill_seconds(r, EFF, 32000) > 2.05 * prefill_seconds(r, EFF, 16000)


def test_tensor_parallel_adds_all_reduces() -> None:
    one = make_replica(DATA, "llama-3.1-8b", "h100", 1)
    two = make_replica(DATA, "llama-3.1-8b", "h100", 2)
    assert decode_step(one, EFF, 1, 0).overhead_s < decode_step(two, EFF, 1, 0).overhead_s


def test_batch_limits() -> None:
    r = make_replica(DATA, "llama-3.3-70b", "h100", 2)
    # each request holds the KV cache of its prompt and its whole output (GUARANTEED_NO_EVICT)
    most = kv_batch(r, 5000, 500)
    assert most == math.floor(r.kv_capacity_tokens / 5500)
    full = serve(r, EFF, 5000, 500)
    assert (full.batch, full.limit) == (most, "KV memory")
    some = serve(r, EFF, 5000, 500, concurrency=10)
    assert (some.batch, some.limit) == (10, "concurrency")
    queued = serve(r, EFF, 5000, 500, concurrency=10 * most)
    assert queued.batch == most and queued.time_to_first_token_s > 10 * full.time_to_first_token_s
    fast = serve(r, EFF, 5000, 500, tokens_per_user=30)
    assert fast.limit == "per-user speed" and fast.tokens_per_user >= 30
    one_more = serve(r, EFF, 5000, 500, concurrency=fast.batch + 1)
    assert one_more.tokens_per_user < 30
    engine = serve(make_replica(DATA, "llama-3.1-8b", "h200", 8), EFF, 128, 128)
    assert (engine.batch, engine.limit) == (2048, "engine batch limit")


def test_unreachable_speed_is_flagged() -> None:
    r = make_replica(DATA, "llama-3.3-70b", "h100", 1)
    result = serve(r, EFF, 1000, 1000, tokens_per_user=10_000)
    assert not result.target_met and result.batch == 1


def test_errors_name_the_argument() -> None:
    with pytest.raises(PlannerError, match="MODEL: unknown model 'gpt-9'"):
        make_replica(DATA, "gpt-9", "h100", 1)
    with pytest.raises(PlannerError, match=r"--gpu: unknown GPU 'a100'; .*h100, h200"):
        make_replica(DATA, "llama-3.1-8b", "a100", 1)
    with pytest.raises(PlannerError, match="--precision: unknown precision 'fp4'"):
        make_replica(DATA, "llama-3.1-8b", "h100", 1, "fp4")
    too_small = make_replica(DATA, "deepseek-v3.2", "h100", 8)
    with pytest.raises(PlannerError, match=r"--gpus: deepseek-v3.2 in fp8 .*leaves no room"):
        serve(too_small, EFF, 1000, 1000)


# --- The fit ---------------------------------------------------------------------------------


def test_fit_reproduces_the_calibration_points_within_its_stated_error() -> None:
    fit = DATA.fit
    assert fit.points == len(DATA.calibration) == 60
    ratios = [predict(DATA, EFF, p) / p.output_tokens_per_second for p in DATA.calibration]
    errors = [max(r, 1 / r) for r in ratios]
    geometric_mean = math.exp(sum(math.log(e) for e in errors) / len(errors))
    assert geometric_mean <= fit.geometric_mean_error
    assert max(errors) <= fit.worst_error
    worst = DATA.calibration[errors.index(max(errors))]
    assert worst.label() == fit.worst_point
    # the fit is worth having: the issue's targets on points it was not fitted on are 1.25 / 2
    assert fit.geometric_mean_error <= 1.25 and fit.worst_error <= 2


def test_held_out_points_are_not_calibration_points() -> None:
    """A held-out point is a shape, GPU count, model or load the fit never saw, with its source."""
    fitted = {
        (p.model, p.gpu, p.gpus, p.input_tokens, p.output_tokens, p.concurrency)
        for p in DATA.calibration
    }
    assert len(DATA.holdout) >= 20
    for point in DATA.holdout:
        key = (point.model, point.gpu, point.gpus, point.input_tokens, point.output_tokens)
        assert (*key, point.concurrency) not in fitted, point.label()
        assert point.source and point.date and point.engine, point.label()
    models = {p.model for p in DATA.holdout if p.outlier is None}
    assert {"llama-4-maverick", "llama-3.1-405b"} <= models  # models the fit has no point of
    assert {p.gpu for p in DATA.holdout} == {"h100", "h200"}


def test_held_out_error_against_the_issues_target() -> None:
    """The issue's target on held-out points is a geometric-mean error of at most 1.25 and no
    point beyond 2x. Both are met (the four Llama 4 points that were beyond 2x, at 128-token
    prompts, are within 1.5x once a request holds its whole output's KV cache, attention data
    parallel GPUs copy all but the routed experts, and the MoE dispatch is a per-token cost of
    every GPU). The outliers (DeepSeek runs, each with its reason) are outside it. The figures
    are stated so a regression fails."""
    fit = DATA.fit
    points = throughput_bench.held_out(DATA)
    assert fit.holdout_points == len(points) == 131
    gm, worst, label = throughput_bench.errors_of(DATA, EFF, points)
    assert gm <= fit.holdout_geometric_mean_error == 1.136
    assert gm <= throughput_bench.TARGET_GEOMETRIC_MEAN
    assert worst <= fit.holdout_worst_error == 1.518
    assert label == fit.holdout_worst_point == "llama-4-maverick 8x h100 128/2048 max load"
    assert throughput_bench.beyond(DATA, EFF, throughput_bench.TARGET_WORST) == []
    assert fit.holdout_beyond_2x == 0
    # the four points that were beyond 2x before
    for label in (
        "llama-4-scout 4x h200 128/128 max load",
        "llama-4-scout 4x h200 128/2048 max load",
        "llama-4-maverick 8x h200 128/128 max load",
        "llama-4-maverick 8x h100 128/4096 max load",
    ):
        [point] = [p for p in points if p.label() == label]
        ratio = predict(DATA, EFF, point) / point.output_tokens_per_second
        assert 1 / 1.5 < ratio < 1.5, label
    report = throughput_bench.report(DATA, EFF)
    assert "target (geometric mean <= 1.25, none beyond 2x): met" in report


def test_an_moe_step_reads_its_weights_once() -> None:
    """The MoE factor is a per-token cost (each token's dispatch in each MoE layer), not a
    multiple of the weight reads: a decode step of one request of Scout on 8x H100 takes its
    roofline read plus the overheads, so a fast per-user speed still allows a large batch."""
    r = make_replica(DATA, "llama-4-scout", "h100", 8)
    one = decode_step(r, EFF, 1, 2200)
    read = (
        r.arch.total_params_b.value * 1e9
        - r.arch.expert_params() * (1 - experts_touched(r.arch, 1))
    ) * r.bytes_per_param + r.replicated_weight_bytes
    roofline = (read + 2200 * r.kv_bytes_per_token) / (r.bandwidth_bytes_per_second * EFF.bandwidth)
    assert one.memory_s == pytest.approx(roofline)
    assert one.seconds == pytest.approx(roofline + one.overhead_s)
    fast = serve(r, EFF, 2000, 400, tokens_per_user=30)
    assert fast.batch >= 100 and fast.output_tokens_per_second >= 3000
    # The InferenceX DeepSeek R1 point at 42 tok/s/user is within 2x (it was 16x under when the
    # factor multiplied the expert reads).
    [ix42] = [p for p in DATA.holdout if p.outlier and "42 tok/s/user" in p.label()]
    ratio = throughput_bench.predict(DATA, EFF, ix42) / ix42.output_tokens_per_second
    assert 0.5 < ratio < 2


def test_outliers_say_why() -> None:
    """Outliers are the DeepSeek runs whose engine does something the model has no term for."""
    outliers = [p for p in DATA.holdout if p.outlier is not None]
    assert {p.model for p in outliers} == {"deepseek-v3"}
    sglang = next(p for p in outliers if p.engine.startswith("SGLang"))
    assert sglang.output_tokens_per_second == 2673.55 and sglang.gpu == "h200"
    assert "early engine" in (sglang.outlier or "")
    mtp = next(p for p in outliers if "MTP" in p.engine)
    assert "speculative decoding" in (mtp.outlier or "")


def test_the_chart_regenerates_to_the_committed_bytes(tmp_path: Path) -> None:
    committed = Path(__file__).parent.parent / "docs" / "throughput-fit.svg"
    fresh = tmp_path / "fit.svg"
    assert throughput_bench.main(["--chart", str(fresh)]) == 0
    assert fresh.read_bytes() == committed.read_bytes()
    text = fresh.read_text(encoding="utf-8")
    assert "held out: 131" in text and "calibration (fitted on): 60" in text
    assert "2x above and below" in text and "1.25x above and below" in text


def test_a_held_out_point_without_its_engine_is_named(tmp_path: Path) -> None:
    for source in DATA_DIR.glob("*.yaml"):
        shutil.copy(source, tmp_path / source.name)
    holdout = tmp_path / "throughput_holdout.yaml"
    text = holdout.read_text(encoding="utf-8")
    holdout.write_text(text.replace('engine: "TensorRT-LLM', 'engin: "TensorRT-LLM', 1))
    with pytest.raises(PlannerError) as error:
        load_throughput_data(tmp_path)
    message = str(error.value)
    line = 1 + text.splitlines().index(
        next(row for row in text.splitlines() if row.startswith("  - {"))
    )
    assert message == f"{holdout}: points[0].engine (line {line}): Field required"
    assert len(message.splitlines()) == 1


def test_fitted_efficiencies_are_physical() -> None:
    assert 0.5 <= EFF.bandwidth <= 0.85  # sustained HBM is about 0.8 of peak
    assert 0.1 <= EFF.compute <= 1
    # at least the one pass of the hidden state that routing it takes
    assert EFF.moe_factor >= 1


def test_refit_lands_on_the_stored_fit() -> None:
    refit = throughput_bench.fit(DATA)
    gm, _, _ = throughput_bench.summary(DATA, refit)
    assert gm <= DATA.fit.geometric_mean_error + 0.01
    assert refit.bandwidth == pytest.approx(EFF.bandwidth, rel=0.05)
    assert refit.compute == pytest.approx(EFF.compute, rel=0.05)


# --- The command -----------------------------------------------------------------------------


def test_cli_text(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "llama-3.3-70b", "--gpu", "h100", "--gpus", "2",
        "--input-tokens", "5000", "--output-tokens", "500", "--concurrency", "25",
    )  # fmt: skip
    assert code == 0 and err == ""
    assert out.startswith("llama-3.3-70b on 2x h100 (fp8), 5,000 input / 500 output tokens")
    assert "at concurrency 25" in out and "batch 25" in out and "limited by concurrency" in out
    assert "time to first token" in out
    assert "gpu_bandwidth: 3.35 TB/s per GPU (NVIDIA H100 datasheet" in out
    assert "bandwidth_efficiency" in out and "geometric mean" in out
    assert "on 131 held-out points it was not fitted on: geometric mean 1.136x" in out
    assert "; 16 of them measure llama-3.3-70b" in out


def test_cli_json_matches_the_model(capsys: pytest.CaptureFixture[str]) -> None:
    """--calibrated: the engine of the calibration points (TensorRT-LLM); by default the command
    serves as plans price a replica (tests/test_capacity_model.py)."""
    code, out, _ = run(
        capsys, "llama-3.1-8b", "--gpu", "h200", "--gpus", "1",
        "--input-tokens", "1000", "--output-tokens", "1000", "--json", "--calibrated",
    )  # fmt: skip
    assert code == 0
    report = json.loads(out)
    expected = serve(make_replica(DATA, "llama-3.1-8b", "h200", 1), EFF, 1000, 1000)
    assert report["output_tokens_per_second"] == round(expected.output_tokens_per_second, 1)
    assert report["total_tokens_per_second"] == pytest.approx(
        2 * report["output_tokens_per_second"], abs=0.2
    )
    assert report["limit"] == "KV memory" and report["batch"] == expected.batch
    assert report["figures"]["gpu_memory"]["value"] == 141
    assert report["figures"]["gpu_memory"]["source"].startswith("NVIDIA H200 datasheet")
    # deterministic
    assert run(
        capsys, "llama-3.1-8b", "--gpu", "h200", "--gpus", "1",
        "--input-tokens", "1000", "--output-tokens", "1000", "--json", "--calibrated",
    )[1] == out  # fmt: skip


def test_cli_h200_serves_more_than_h100(capsys: pytest.CaptureFixture[str]) -> None:
    # Calibrated: TensorRT-LLM fits 70.6 GB in one H100, vLLM within its reserve does not.
    shape = ["--gpus", "1", "--input-tokens", "1000", "--output-tokens", "1000", "--json"]
    shape.append("--calibrated")
    h100 = json.loads(run(capsys, "llama-3.3-70b", "--gpu", "h100", *shape)[1])
    h200 = json.loads(run(capsys, "llama-3.3-70b", "--gpu", "h200", *shape)[1])
    assert h200["output_tokens_per_second"] > 2 * h100["output_tokens_per_second"]


# A bad number (--gpus 0, --concurrency 0, --tokens-per-user -1) is argparse's to refuse:
# tests/test_cli_flags.py.
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["gpt-9", "--gpu", "h100", "--gpus", "1"], "error: MODEL: unknown model 'gpt-9'"),
        (["llama-3.1-8b", "--gpu", "a100", "--gpus", "1"], "error: --gpu: unknown GPU 'a100'"),
        (
            ["llama-3.1-8b", "--gpu", "h100", "--gpus", "1", "--precision", "fp4"],
            "error: --precision: unknown precision 'fp4'",
        ),
        (
            ["deepseek-v3.2", "--gpu", "h100", "--gpus", "8"],
            "error: --gpus: deepseek-v3.2 in fp8 (671 GB of weights) leaves no room",
        ),
        (
            ["deepseek-v3.2", "--gpu", "h100", "--gpus", "8", "--calibrated"],
            "error: --gpus: deepseek-v3.2 in fp8 (671 GB of weights and 116 GB of copies of all"
            " but the routed experts) leaves no room",
        ),
        (
            ["llama-3.3-70b", "--gpu", "h100", "--gpus", "2", "--tokens-per-user", "5000"],
            "error: --tokens-per-user: 5000 tokens/s per user is out of reach",
        ),
    ],
)
def test_cli_errors_exit_2_naming_the_argument(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = run(capsys, *args, "--input-tokens", "1000", "--output-tokens", "1000")
    assert code == 2 and out == ""
    assert err.startswith(message)
    assert len(err.strip().splitlines()) == 1


def test_cli_refuses_both_loads(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(
            ["throughput", "llama-3.1-8b", "--gpu", "h100", "--gpus", "1", "--input-tokens", "1",
             "--output-tokens", "1", "--concurrency", "2", "--tokens-per-user", "3"]
        )  # fmt: skip
    assert exit_info.value.code == 2
    assert "--concurrency" in capsys.readouterr().err


def test_cli_says_when_no_measured_point_covers_the_model(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The fit's error is over the calibration points: for a model with none of them (DeepSeek)
    the answer is marked unvalidated, in text and JSON; a calibrated model says how many."""
    shape = ["--input-tokens", "229", "--output-tokens", "196"]
    code, text, _ = run(capsys, "deepseek-v3.2", "--gpu", "h200", "--gpus", "8", *shape)
    assert code == 0 and "unvalidated: no measured point of deepseek-v3.2 is among them" in text
    code, out, _ = run(capsys, "deepseek-v3.2", "--gpu", "h200", "--gpus", "8", *shape, "--json")
    assert code == 0 and json.loads(out)["fit"]["points_of_this_model"] == 0
    code, text, _ = run(capsys, "llama-3.1-8b", "--gpu", "h100", "--gpus", "1", *shape)
    assert "8 of them measure llama-3.1-8b" in text and "unvalidated" not in text


def test_figures_used_name_the_moe_parallelism_and_layers_and_the_kv_reservation() -> None:
    r = make_replica(DATA, "deepseek-v3.2", "h200", 8)
    figures = figures_used(DATA, r)
    assert figures["moe_parallelism"]["value"] == "attention-dp"
    assert "enable_attention_dp" in figures["moe_parallelism"]["source"]
    assert "overridden_tp_size=1" in figures["moe_parallelism"]["source"]
    assert figures["moe_layers"]["value"] == 58
    assert "first_k_dense_replace 3" in figures["moe_layers"]["source"]
    assert figures["kv_reserved_output_share"]["value"] == 1
    assert "GUARANTEED_NO_EVICT" in figures["kv_reserved_output_share"]["source"]
    dense = figures_used(DATA, make_replica(DATA, "llama-3.3-70b", "h100", 2))
    assert "moe_parallelism" not in dense and "moe_layers" not in dense


def test_an_unknown_moe_parallelism_is_named(tmp_path: Path) -> None:
    for source in DATA_DIR.glob("*.yaml"):
        shutil.copy(source, tmp_path / source.name)
    settings = tmp_path / "throughput.yaml"
    text = settings.read_text(encoding="utf-8")
    settings.write_text(text.replace("value: attention-dp", "value: attention-db", 1))
    with pytest.raises(PlannerError) as error:
        load_throughput_data(tmp_path)
    line = 2 + text.splitlines().index("  moe_parallelism:")  # its value's first line
    assert str(error.value) == (
        f"{settings}: settings.moe_parallelism (line {line}): "
        "Value error, must be attention-dp or tensor, not 'attention-db'"
    )


def test_an_moe_architecture_without_its_moe_layers_is_named(tmp_path: Path) -> None:
    """The MoE dispatch and the attention data parallel collectives are counted per MoE layer: an
    MoE model without the figure is a catalog error naming the file, the model and its line."""
    for source in DATA_DIR.glob("*.yaml"):
        shutil.copy(source, tmp_path / source.name)
    architectures = tmp_path / "architectures.yaml"
    text = architectures.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    [scout_layers] = [
        i for i, row in enumerate(lines) if "Llama-4-Scout" in row and "moe_layers" in row
    ]
    architectures.write_text("".join(lines[:scout_layers] + lines[scout_layers + 1 :]))
    with pytest.raises(PlannerError) as error:
        load_throughput_data(tmp_path)
    line = 2 + text.splitlines().index("  llama-4-scout:")  # its first figure's line
    assert str(error.value) == (
        f"{architectures}: architectures.llama-4-scout (line {line}): Value error, an MoE "
        "architecture needs experts, experts_per_token and moe_layers"
    )
