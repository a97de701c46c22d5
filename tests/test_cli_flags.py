"""`planner tco` and `planner throughput` tell the truth about their inputs: every bad number
exits 2 naming its flag, defaults apply only to absent flags, an unreachable per-user speed, an
unvalidated model, a tensor-parallel size vLLM refuses and an over-long request are said or
refused, and --per total says which request shape converts a given rate."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner import costing
from planner.catalog import DATA_DIR, default_catalog
from planner.catalog.vocabulary import Pricing
from planner.cli.app import main
from planner.cli.tco import compute_ceiling
from planner.cli.throughput import _check_tensor_parallel
from planner.costing.throughput_data import (
    Architecture,
    default_throughput_data,
    load_throughput_data,
)
from planner.errors import PlannerError

TCO = ["tco", "llama-3.1-8b", "--instance", "p5.48xlarge", "--utilization", "1"]
TPUT = ["throughput", "llama-3.1-8b", "--gpu", "h100", "--gpus", "1"]
SHAPE = ["--input-tokens", "1000", "--output-tokens", "200"]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def refused_by_argparse(capsys: pytest.CaptureFixture[str], args: list[str]) -> str:
    """argparse's exit: status 2, nothing on stdout, no traceback; its stderr."""
    with pytest.raises(SystemExit) as raised:
        main(args)
    out, err = capsys.readouterr()
    assert raised.value.code == 2 and out == "" and "Traceback" not in err
    return err


# --- 1. Every bad number exits 2 naming its flag ---------------------------------------------

# Values argparse's int and _finite already refused are not repeated here.
COUNTS = ["0", "-3"]
RATES = ["0", "-1"]


@pytest.mark.parametrize("value", COUNTS)
@pytest.mark.parametrize("flag", ["--input-tokens", "--output-tokens"])
def test_tco_refuses_a_bad_token_count(
    capsys: pytest.CaptureFixture[str], flag: str, value: str
) -> None:
    """`--input-tokens 0` used to price the default 2,000-token request (exit 0)."""
    err = refused_by_argparse(capsys, [*TCO, flag, value])
    assert f"argument {flag}: " in err
    assert len([line for line in err.splitlines() if "error:" in line]) == 1


@pytest.mark.parametrize("value", RATES)
@pytest.mark.parametrize("flag", ["--tokens-per-user", "--tokens-per-second"])
def test_tco_refuses_a_bad_rate(capsys: pytest.CaptureFixture[str], flag: str, value: str) -> None:
    err = refused_by_argparse(capsys, [*TCO, flag, value])
    assert f"argument {flag}: " in err


@pytest.mark.parametrize("shape", [[], ["--json"]])
def test_tco_refuses_a_rate_that_prices_nothing(
    capsys: pytest.CaptureFixture[str], shape: list[str]
) -> None:
    """1e-320 tokens/s is positive, and its cost per million tokens is infinite: `--json`
    printed `Infinity`, which is no JSON. Exit 2 naming the flag, nothing on stdout (now by the
    rate's floor, below, before its cost is computed)."""
    code, out, err = run(capsys, *TCO, "--tokens-per-second", "1e-320", *shape)
    assert code == 2 and out == "" and "--tokens-per-second" in err
    assert "less than one person reads" in err


@pytest.mark.parametrize("value", ["0", "-0.5", "1.01"])
def test_tco_refuses_a_bad_utilization(capsys: pytest.CaptureFixture[str], value: str) -> None:
    args = ["tco", "llama-3.1-8b", "--instance", "p5.48xlarge", "--utilization", value]
    err = refused_by_argparse(capsys, args)
    assert "argument --utilization: " in err


@pytest.mark.parametrize("value", COUNTS)
@pytest.mark.parametrize("flag", ["--gpus", "--input-tokens", "--output-tokens", "--concurrency"])
def test_throughput_refuses_a_bad_count(
    capsys: pytest.CaptureFixture[str], flag: str, value: str
) -> None:
    args = ["throughput", "llama-3.1-8b", "--gpu", "h100", "--gpus", "1", *SHAPE, flag, value]
    err = refused_by_argparse(capsys, args)
    assert f"argument {flag}: " in err


@pytest.mark.parametrize("value", RATES)
def test_throughput_refuses_a_bad_per_user_speed(
    capsys: pytest.CaptureFixture[str], value: str
) -> None:
    err = refused_by_argparse(capsys, [*TPUT, *SHAPE, "--tokens-per-user", value])
    assert "argument --tokens-per-user: " in err


def test_the_messages_say_what_is_wrong(capsys: pytest.CaptureFixture[str]) -> None:
    err = refused_by_argparse(capsys, [*TCO, "--input-tokens", "0"])
    assert "argument --input-tokens: must be a whole number of at least 1, not '0'" in err
    err = refused_by_argparse(capsys, [*TCO, "--output-tokens", "1.5"])
    assert "argument --output-tokens: must be a whole number of at least 1, not '1.5'" in err
    err = refused_by_argparse(capsys, [*TCO, "--tokens-per-user", "0"])
    assert "argument --tokens-per-user: must be more than 0, not '0'" in err
    err = refused_by_argparse(capsys, [*TCO, "--tokens-per-second", "inf"])
    assert "argument --tokens-per-second: 'inf' is not a finite number" in err
    args = ["tco", "llama-3.1-8b", "--instance", "p5.48xlarge", "--utilization", "2"]
    err = refused_by_argparse(capsys, args)
    assert "argument --utilization: must be from 0.01 to 1 (below 1% a pool idles), not '2'" in err
    # As in the workloads file: a utilization near 0 made the busiest rate (and the cost) huge.
    err = refused_by_argparse(capsys, [*args[:-1], "1e-300"])
    assert "argument --utilization: must be from 0.01 to 1" in err


def test_a_flag_given_is_used_or_refused_never_replaced_by_its_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`args.x or default` took 0 for absent: a given 0 is refused, a given 1 is used, and
    only an absent flag takes the default."""
    defaults = default_catalog().defaults
    code, out, _ = run(capsys, *TCO, "--json")
    assert code == 0
    model = json.loads(out)["throughput_model"]
    assert (model["input_tokens"], model["output_tokens"]) == (
        int(defaults.request_input_tokens.value),
        int(defaults.request_output_tokens.value),
    )
    assert model["tokens_per_user"] == defaults.user_output_tps.value
    code, out, _ = run(capsys, *TCO, "--input-tokens", "1", "--output-tokens", "1", "--json")
    assert code == 0
    model = json.loads(out)["throughput_model"]
    assert (model["input_tokens"], model["output_tokens"]) == (1, 1)
    for flag in ("--input-tokens", "--output-tokens", "--tokens-per-user"):
        assert f"argument {flag}: " in refused_by_argparse(capsys, [*TCO, flag, "0"])


# --- 2. An unreachable per-user speed is said, not priced as met -----------------------------

DEEPSEEK = ["tco", "deepseek-v3.2", "--instance", "p5.48xlarge", "--utilization", "1"]


def test_tco_says_plainly_when_no_batch_reaches_the_per_user_speed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, *DEEPSEEK, "--tokens-per-user", "500", "--json")
    assert code == 0 and err == ""
    result = json.loads(out)
    model = result["throughput_model"]
    assert model["user_speed_met"] is False and model["tokens_per_user"] == 500
    fastest = model["tokens_per_user_reached"]
    # DeepSeek on p5.48xlarge is a replica of two pipeline stages (one a node): the fastest a
    # user reads is one request a stage, two in flight, each at that speed.
    assert 0 < fastest < 500 and model["batch_per_replica"] == 2
    code, text, _ = run(capsys, *DEEPSEEK, "--tokens-per-user", "500")
    assert code == 0
    assert (
        f"no batch reaches 500 tok/s per user on p5.48xlarge: the fastest a user gets is "
        f"{fastest:,.1f} tok/s (one request at a time on each of its 2 pipeline stages, 2 in "
        "flight), and the price is at that speed" in text
    )
    # The price is never said to be at the speed it does not reach.
    assert "500 tok/s per user (bound" not in text
    assert "no batch reaches" in result["tokens_per_second_source"]


def test_tco_reached_speed_is_not_flagged(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, *DEEPSEEK, "--json")
    model = json.loads(out)["throughput_model"]
    assert code == 0 and model["user_speed_met"] is True
    assert model["tokens_per_user_reached"] >= model["tokens_per_user"]
    code, text, _ = run(capsys, *DEEPSEEK)
    assert "no batch reaches" not in text and "30 tok/s per user (bound" in text


def test_throughput_refuses_an_unreachable_speed_without_asking_for_gpus_a_node_lacks(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(
        capsys, "throughput", "deepseek-v3.2", "--gpu", "h200", "--gpus", "8", *SHAPE,
        "--tokens-per-user", "500",
    )  # fmt: skip
    assert code == 2 and out == ""
    assert err.startswith("error: --tokens-per-user: 500 tokens/s per user is out of reach")
    assert "no batch reaches it" in err and "more --gpus" not in err
    code, _, err = run(
        capsys, "throughput", "llama-3.3-70b", "--gpu", "h100", "--gpus", "2", *SHAPE,
        "--tokens-per-user", "5000",
    )  # fmt: skip
    assert code == 2 and "give more --gpus (up to 8) or a lower target" in err


# --- 3. An unvalidated model is called so by tco too ----------------------------------------


def test_tco_calls_a_model_without_calibration_points_unvalidated(
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = default_throughput_data()
    code, text, _ = run(capsys, *DEEPSEEK)
    assert code == 0
    assert (
        f"unvalidated: no measured point of deepseek-v3.2 is among the fit's {data.fit.points} "
        "calibration points, so its typical error"
    ) in text
    assert "typical error of the fit" not in text
    code, out, _ = run(capsys, *DEEPSEEK, "--json")
    model = json.loads(out)["throughput_model"]
    assert model["validated"] is False and model["calibration_points_of_this_model"] == 0
    assert "unvalidated" in json.loads(out)["tokens_per_second_source"]
    llama = ["tco", "llama-3.3-70b", "--instance", "p5en.48xlarge", "--utilization", "1"]
    code, text, _ = run(capsys, *llama)
    assert code == 0 and "unvalidated" not in text and "typical error of the fit" in text
    code, out, _ = run(capsys, *llama, "--json")
    assert json.loads(out)["throughput_model"]["validated"] is True


# --- 4. --gpus: a tensor-parallel group vLLM runs, within a node ------------------------------


@pytest.mark.parametrize("gpus", ["3", "16", "1000"])
def test_throughput_refuses_a_group_no_node_has(
    capsys: pytest.CaptureFixture[str], gpus: str
) -> None:
    """1000 H100s as one tensor-parallel group used to serve 8,571 tok/s."""
    code, out, err = run(capsys, "throughput", "llama-3.1-70b", "--gpu", "h100", "--gpus", gpus,
                         *SHAPE)  # fmt: skip
    assert code == 2 and out == "" and "Traceback" not in err
    assert err.startswith(f"error: --gpus: {gpus} GPUs are no tensor-parallel group")
    assert "1, 2, 4 or 8" in err and "p5.48xlarge" in err
    assert len(err.strip().splitlines()) == 1
    # Every group a node has is taken.
    for good in ("1", "2", "4", "8"):
        code, out, _ = run(
            capsys, "throughput", "llama-3.1-8b", "--gpu", "h100", "--gpus", good, *SHAPE
        )
        assert code == 0 and out.startswith(f"llama-3.1-8b on {good}x h100")


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    model=st.sampled_from(sorted(default_throughput_data().architectures)),
    gpu=st.sampled_from(["h100", "h200"]),
    gpus=st.integers(min_value=1, max_value=2048),
)
def test_only_a_group_a_node_has_is_ever_served(
    capsys: pytest.CaptureFixture[str], model: str, gpu: str, gpus: int
) -> None:
    """For every model, GPU type and count: a count no node of the catalog splits into (all
    nodes have 1 or 8 GPUs) is refused naming --gpus, never answered."""
    code, out, err = run(
        capsys, "throughput", model, "--gpu", gpu, "--gpus", str(gpus), *SHAPE, "--json"
    )
    refused = "GPUs are no tensor-parallel group a node has" in err
    assert refused == (gpus not in (1, 2, 4, 8))
    if refused:
        assert code == 2 and out == "" and err.startswith("error: --gpus: ")
    else:
        assert code == 0 or "error: --gpus: " in err  # or its weights do not fit so few GPUs


def test_the_attention_heads_must_divide_by_the_group() -> None:
    """vLLM 0.33.0 refuses a tensor-parallel size that does not divide the attention heads
    (ModelConfig.verify_with_parallel_config) and one that neither divides nor is divided by
    the KV heads (QKVParallelLinear); MLA caches one latent, whatever its heads."""
    data = default_throughput_data()
    arch = data.architectures["llama-3.1-8b"]

    def heads(query: float, kv: float) -> Architecture:
        return arch.model_copy(
            update={
                "query_heads": arch.query_heads.model_copy(update={"value": query}),
                "kv_heads": arch.kv_heads.model_copy(update={"value": kv}),
            }
        )

    _check_tensor_parallel("m", heads(32, 8), "h100", 8, {"p5.48xlarge": 8})
    with pytest.raises(PlannerError) as error:
        _check_tensor_parallel("m", heads(28, 4), "h100", 8, {"p5.48xlarge": 8})
    assert str(error.value) == (
        "--gpus: m has 28 attention heads, which do not divide by 8 GPUs: vLLM runs a "
        "tensor-parallel group only of a size that divides them (1, 2 or 4 here)"
    )
    _check_tensor_parallel("m", heads(28, 4), "h100", 4, {"p5.48xlarge": 8})
    with pytest.raises(PlannerError) as error:
        _check_tensor_parallel("m", heads(24, 6), "h100", 4, {"p5.48xlarge": 8})
    assert "m has 6 KV heads" in str(error.value) and "(1 or 2 here)" in str(error.value)
    mla = data.architectures["deepseek-v3.2"]
    _check_tensor_parallel("deepseek-v3.2", mla, "h200", 8, {"p5en.48xlarge": 8})


def test_every_architecture_runs_on_every_group_the_planner_prices() -> None:
    """costs._best_group tries 1, 2, 4, 8: each must be one vLLM accepts for every model,
    or a plan would price a pool that cannot start."""
    data = default_throughput_data()
    for model, arch in data.architectures.items():
        for gpus in (1, 2, 4, 8):
            _check_tensor_parallel(model, arch, "h100", gpus, {"p5.48xlarge": 8})


# --- 5. The context window of every architecture ---------------------------------------------


def test_throughput_refuses_a_request_longer_than_any_models_window(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """llama-3.1-70b is in architectures.yaml, not models.yaml: a 200k-token prompt used to
    be served at 31 tok/s though its window is 131,072 tokens."""
    code, out, err = run(
        capsys, "throughput", "llama-3.1-70b", "--gpu", "h200", "--gpus", "8",
        "--input-tokens", "200000", "--output-tokens", "400",
    )  # fmt: skip
    assert code == 2 and out == ""
    assert err == (
        "error: --input-tokens: a request of 200,400 tokens is longer than llama-3.1-70b's "
        "context window of 131,072 tokens (architectures.yaml)\n"
    )
    code, _, _ = run(
        capsys, "throughput", "llama-3.1-70b", "--gpu", "h200", "--gpus", "8",
        "--input-tokens", "130000", "--output-tokens", "1072",
    )  # fmt: skip
    assert code == 0


def test_every_architecture_has_a_sourced_context_window_that_agrees_with_the_catalog() -> None:
    data = default_throughput_data()
    catalog = default_catalog()
    for model, arch in data.architectures.items():
        window = arch.context_window
        assert window.value >= 8192 and "max_position_embeddings" in window.source, model
        if model in catalog.models:
            assert window.value == catalog.models[model].context_window.value, model


def test_a_missing_context_window_is_named_with_its_line(tmp_path: Path) -> None:
    for source in DATA_DIR.glob("*.yaml"):
        shutil.copy(source, tmp_path / source.name)
    path = tmp_path / "architectures.yaml"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    start = lines.index("  llama-3.1-70b:\n")
    cut = next(i for i in range(start, len(lines)) if "context_window:" in lines[i])
    path.write_text("".join(lines[:cut] + lines[cut + 1 :]), encoding="utf-8")
    with pytest.raises(PlannerError) as error:
        load_throughput_data(tmp_path)
    assert re.fullmatch(
        rf"{re.escape(str(path))}: architectures\.llama-3\.1-70b\.context_window "
        rf"\(line {start + 2}\): Field required",  # the first line of llama-3.1-70b's mapping
        str(error.value),
    )


# --- 6. --per total with a given rate says which shape converts it ---------------------------

ARTICLE = [*DEEPSEEK, "--tokens-per-second", "2673.55", "--per", "total"]


def test_per_total_of_a_measured_rate_takes_the_measured_runs_total(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """2,673.55 output tok/s is SGLang's run at about 229 / 196 tokens a request, whose total
    rate models.yaml has (5,803.76 tok/s): not the default 2,000 / 400 shape (16,041 tok/s)."""
    measured = default_catalog().models["deepseek-v3.2"].throughput[0]
    code, out, _ = run(capsys, *ARTICLE, "--json")
    assert code == 0
    result = json.loads(out)
    hourly = costing.node_hourly_usd(
        default_catalog(), default_catalog().instances["p5.48xlarge"], Pricing("on_demand")
    )
    expected = hourly / (measured.total_tokens_per_second * 3600) * 1e6
    assert result["usd_per_million_tokens"] == round(expected, 2)
    shape = result["request_shape"]
    assert (shape["input_tokens"], shape["output_tokens"]) == (229, 196)
    assert "models.yaml" in shape["source"]
    code, text, _ = run(capsys, *ARTICLE)
    assert "5,803.76 total tok/s of the measured run" in text
    assert "229 input / 196 output tokens" in text and "2,000" not in text.split("memory fit")[0]


def test_per_total_of_another_rate_says_the_shape_it_assumes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, text, _ = run(capsys, *DEEPSEEK, "--tokens-per-second", "3000", "--per", "total")
    assert code == 0
    assert (
        "assumes 2,000 input / 400 output tokens a request (the default shape, assumptions.yaml); "
        "give --input-tokens and --output-tokens for the shape 3,000 tok/s was measured at"
    ) in text
    code, out, _ = run(
        capsys, *DEEPSEEK, "--tokens-per-second", "2673.55", "--per", "total",
        "--input-tokens", "2000", "--output-tokens", "400", "--json",
    )  # fmt: skip
    result = json.loads(out)
    assert result["usd_per_million_tokens"] == pytest.approx(5.72 / 6, abs=0.01)
    assert result["request_shape"]["source"] == "given on the command line"


# --- 7. A given node rate within what a node can serve -----------------------------------------

# deepseek-v3.2 (37B active) on p5.48xlarge (8 H100, 1,979 dense FP8 TFLOPS each):
# 8 x 1979e12 / (2 x 37e9) = 213,945.9 output tok/s at most.
DEEPSEEK_CEILING = 8 * 1979e12 / (2 * 37e9)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("1e308", "could compute for deepseek-v3.2 at their peak (213,945.9 tok/s"),
        (f"{DEEPSEEK_CEILING * 1.000001:.2f}", "could compute for deepseek-v3.2"),
        ("1e-300", "1e-300 output tokens/s is less than one person reads (1 a second)"),
        ("0.99", "less than one person reads"),
    ],
)
@pytest.mark.parametrize("shape", [[], ["--json"], ["--per", "total"]])
def test_tco_refuses_an_absurd_given_rate(
    capsys: pytest.CaptureFixture[str], value: str, says: str, shape: list[str]
) -> None:
    """1e308 tok/s priced a million tokens at 0.00 USD and 1e-300 at a 150-digit figure, exit 0.
    A node rate is at least 1 token a second (slower than anyone reads) and at most what its
    GPUs could compute at their peak, 2 FLOPs per active parameter per token: exit 2."""
    code, out, err = run(capsys, *DEEPSEEK, "--tokens-per-second", value, *shape)
    assert code == 2 and out == "" and "Traceback" not in err
    [line] = err.splitlines()
    assert line.startswith("error: --tokens-per-second: ") and says in line, line


@pytest.mark.parametrize("value", ["1", "2673.55", f"{DEEPSEEK_CEILING * 0.999999:.2f}"])
def test_tco_takes_a_rate_within_the_bounds(capsys: pytest.CaptureFixture[str], value: str) -> None:
    code, out, _ = run(capsys, *DEEPSEEK, "--tokens-per-second", value, "--json")
    assert code == 0
    result = json.loads(out)
    assert result["tokens_per_second_per_node"] == float(value)
    if value == "2673.55":  # the article's figure
        assert result["usd_per_million_tokens"] == 5.72


def test_the_ceiling_is_above_every_measured_rate() -> None:
    """The ceiling refuses no measurement: every calibration and held-out point, and every
    measured run of models.yaml, is under a third of its GPUs' compute ceiling (as the
    ceiling's docstring says)."""
    data = default_throughput_data()
    points = [(p.model, p.gpu, p.gpus, p.output_tokens_per_second) for p in data.calibration]
    points += [(p.model, p.gpu, p.gpus, p.output_tokens_per_second) for p in data.holdout]
    points += [
        (name, run.gpu, run.gpus, run.output_tokens_per_second)
        for name, model in default_catalog().models.items()
        for run in model.throughput
    ]
    checked = 0
    for model, gpu, gpus, rate in points:
        ceiling = compute_ceiling(data, model, gpu, gpus)
        if ceiling is None:
            continue
        checked += 1
        assert rate < ceiling / 3, (model, gpu, gpus, rate, ceiling)
    assert checked >= len(data.calibration)
    # Its arithmetic, on the figures the message cites.
    assert compute_ceiling(data, "deepseek-v3.2", "h100", 8) == pytest.approx(DEEPSEEK_CEILING)
