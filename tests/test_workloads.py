"""The workloads file: parsing, validation and error reporting by field and line."""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.catalog import Catalog, default_catalog
from planner.cli.app import main
from planner.cli.schema import schema_text
from planner.errors import PlannerError
from planner.inputs import lines as yaml_lines
from planner.inputs.loader import load_workloads, parse_workloads
from planner.inputs.workloads import parse_tokens
from planner.planning.build import build_plan
from tests.conftest import EXAMPLE, REPO, workload_yaml


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (400_000_000, 400_000_000),
        ("400M", 400_000_000),
        ("1.5B", 1_500_000_000),
        ("250k", 250_000),
        ("2T", 2_000_000_000_000),
        (" 12 ", 12),
        (0, 0),
        (3.0, 3),
    ],
)
def test_token_counts_read_suffixes(text: object, expected: int) -> None:
    assert parse_tokens(text) == expected


@pytest.mark.parametrize("text", ["-5", -1, "-2M", "lots", "12 MB", True, 1.5, None, "1e6"])
def test_token_counts_reject_nonsense(text: object) -> None:
    with pytest.raises(ValueError):
        parse_tokens(text)


def problems_of(path: Path, catalog: Catalog) -> list[str]:
    with pytest.raises(PlannerError) as caught:
        load_workloads(path, catalog)
    assert caught.value.file == str(path)
    return caught.value.render().splitlines()


def test_example_loads(catalog: Catalog) -> None:
    loaded = load_workloads(EXAMPLE, catalog)
    assert loaded.spec.organization == "acme"
    assert [w.name for w in loaded.spec.workloads][:2] == ["support-faq", "contract-review"]
    assert loaded.spec.workloads[0].monthly_tokens.input == 400_000_000
    assert len(loaded.sha256) == 64


def test_negative_volume_names_field_and_line(
    write_workloads: Callable[[str], Path], catalog: Catalog
) -> None:
    path = write_workloads(workload_yaml(monthly_tokens="\n      input: 10M\n      output: -3M"))
    [line] = problems_of(path, catalog)
    assert line.startswith(f"{path}: workloads[0].monthly_tokens.output (line 9): ")
    assert "must not be negative" in line


def test_unknown_key_is_rejected(write_workloads: Callable[[str], Path], catalog: Catalog) -> None:
    path = write_workloads(workload_yaml(tokens_per_month="5M"))
    [line] = problems_of(path, catalog)
    assert "workloads[0].tokens_per_month (line 9): unknown field" in line


def test_unknown_task_lists_the_choices(
    write_workloads: Callable[[str], Path], catalog: Catalog
) -> None:
    path = write_workloads(workload_yaml(task="poetry"))
    [line] = problems_of(path, catalog)
    assert "workloads[0].task (line 5): 'poetry' is not one of" in line
    assert "'rag_qa'" in line


def test_unknown_model_is_rejected(
    write_workloads: Callable[[str], Path], catalog: Catalog
) -> None:
    path = write_workloads(workload_yaml(model="gpt-9"))
    [line] = problems_of(path, catalog)
    assert "workloads[0].model (line 9): unknown model 'gpt-9'" in line
    assert "llama-4-scout" in line


def test_duplicate_names_point_at_the_second(
    write_workloads: Callable[[str], Path], catalog: Catalog
) -> None:
    one = workload_yaml(name="dup")
    second = "\n".join(one.splitlines()[3:])
    path = write_workloads(one + second + "\n")
    [line] = problems_of(path, catalog)
    assert "workloads[1].name (line 9): duplicate workload name 'dup'" in line
    assert "workloads[0]" in line.split(": ", 2)[2]


@pytest.mark.parametrize(
    ("consumers", "needle"),
    [
        ('["10.0.0.300/16"]', "is not a CIDR block"),
        ('["10.0.0.1/16"]', "has host bits set"),
        ('["0.0.0.0/0"]', "admits every address"),
        ("[]", "at least 1 item"),
    ],
)
def test_bad_cidrs(
    write_workloads: Callable[[str], Path], catalog: Catalog, consumers: str, needle: str
) -> None:
    path = write_workloads(workload_yaml(consumers=consumers))
    [line] = problems_of(path, catalog)
    assert "workloads[0].consumers" in line
    assert needle in line


def test_bad_name_is_not_a_dns_label(
    write_workloads: Callable[[str], Path], catalog: Catalog
) -> None:
    path = write_workloads(workload_yaml(name="Support_FAQ"))
    [line] = problems_of(path, catalog)
    assert "workloads[0].name (line 4)" in line and "DNS label" in line


def test_every_problem_is_reported(
    write_workloads: Callable[[str], Path], catalog: Catalog
) -> None:
    path = write_workloads(workload_yaml(task="poetry", data="secret"))
    lines = problems_of(path, catalog)
    assert len(lines) == 2
    assert any(".task" in line for line in lines) and any(".data" in line for line in lines)


def test_malformed_yaml_gives_the_line(
    write_workloads: Callable[[str], Path], catalog: Catalog
) -> None:
    path = write_workloads("organization: acme\nworkloads:\n  - name: [unclosed\n")
    [line] = problems_of(path, catalog)
    assert "malformed YAML" in line and "(line 4)" in line


def test_not_a_mapping(write_workloads: Callable[[str], Path], catalog: Catalog) -> None:
    path = write_workloads("- just\n- a list\n")
    [line] = problems_of(path, catalog)
    assert "expected a mapping" in line


def test_missing_file(tmp_path: Path, catalog: Catalog) -> None:
    [line] = problems_of(tmp_path / "nope.yaml", catalog)
    assert line.endswith("nope.yaml: no such file")


def test_bad_assumption(write_workloads: Callable[[str], Path], catalog: Catalog) -> None:
    text = workload_yaml().replace(
        "workloads:", "assumptions:\n  pricing: lease\n  utilization: 1.5\nworkloads:"
    )
    lines = problems_of(write_workloads(text), catalog)
    assert any("assumptions.pricing (line 4)" in line for line in lines)
    assert any("assumptions.utilization (line 5)" in line for line in lines)


def test_schema_file_is_current() -> None:
    """Editors validate workloads files against schema/workloads.schema.json: it must be fresh.
    Regenerate with `make schema`."""
    committed = (REPO / "schema" / "workloads.schema.json").read_text(encoding="utf-8")
    assert committed == schema_text()


def test_schema_describes_the_contract() -> None:
    schema = json.loads(schema_text())
    assert schema["required"] == ["organization", "region", "workloads"]
    workload = schema["$defs"]["Workload"]
    assert workload["additionalProperties"] is False
    assert set(workload["required"]) == {"name", "task", "data", "monthly_tokens", "consumers"}


# --- Inputs that are refused, not reinterpreted (issue 11). Each goes through the CLI: exit 2,
# the message names the file, the field and the line, and nothing is written.


def refused(capsys: pytest.CaptureFixture[str], project: Path, *args: str) -> list[str]:
    """Run `planner plan ...`, assert it refused the input, and return its error lines."""
    code = main(["plan", *args])
    captured = capsys.readouterr()
    assert code == 2, captured.err
    assert captured.out == ""
    assert "Traceback" not in captured.err
    assert not (project / "plans").exists()
    assert not (project / "Pulumi.dev.yaml").exists()
    lines = captured.err.splitlines()
    assert lines and all(line.startswith("error: ") for line in lines)
    return [line.removeprefix("error: ") for line in lines]


def planned(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[str, list[str]]:
    """Run `planner plan ...`, assert it planned, and return stdout and the warning lines."""
    code = main(["plan", *args])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out, [line for line in captured.err.splitlines() if "warning" in line]


def test_a_repeated_key_in_a_workload_is_refused_naming_both_lines(
    write_workloads: Callable[[str], Path], project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The second `data` would silently win: regulated legal analysis sent to a public API.
    path = write_workloads(workload_yaml(task="legal_analysis", data="regulated\n    data: public"))
    [line] = refused(capsys, project, str(path))
    assert line.startswith(f"{path}: workloads[0].data (line 7): ")
    assert "'data' is given twice in one mapping (lines 6 and 7)" in line


def test_a_repeated_top_level_key_is_refused(
    write_workloads: Callable[[str], Path], project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = workload_yaml().replace("region: us-east-1\n", "region: us-east-1\nregion: us-west-2\n")
    [line] = refused(capsys, project, str(write_workloads(text)))
    assert "workloads.yaml: region (line 3): 'region' is given twice" in line
    assert "(lines 2 and 3)" in line


def test_a_repeated_key_deep_inside_is_refused(
    write_workloads: Callable[[str], Path], project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_workloads(workload_yaml(monthly_tokens="{input: 1M, output: 2M, input: 9B}"))
    [line] = refused(capsys, project, str(path))
    assert "workloads[0].monthly_tokens.input (line 7): 'input' is given twice" in line


def test_a_merge_key_is_not_a_repeated_key(
    write_workloads: Callable[[str], Path], project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """YAML merge keys (`<<: *base`) are how a file shares fields, not a repetition."""
    text = (
        "organization: acme\nregion: us-east-1\nbase: &base\n  task: faq\n"
        "workloads:\n  - <<: *base\n    name: w\n    data: internal\n"
        "    monthly_tokens: {input: 1M, output: 1M}\n    consumers: ['10.0.0.0/16']\n"
    )
    # Refused for the unknown top-level `base`, not for a repeated key.
    [line] = refused(capsys, project, str(write_workloads(text)))
    assert "base (line 3): unknown field" in line


Tree = Any


def _trees() -> st.SearchStrategy[Tree]:
    keys = st.sampled_from(["a", "b", "data", "region"])
    scalars = st.one_of(st.integers(0, 9), st.sampled_from(["x", "public", "regulated"]))
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(st.tuples(keys, children), min_size=1, max_size=4).map(
                lambda pairs: ("map", pairs)
            ),
            st.lists(children, min_size=1, max_size=3).map(lambda items: ("seq", items)),
        ),
        max_leaves=12,
    )


def _render(tree: Tree, indent: int = 0) -> str:
    """Block-style YAML, keeping every key as given (a dumper would drop the repeats)."""
    pad = " " * indent
    kind, body = tree if isinstance(tree, tuple) else ("scalar", tree)
    text = ""
    if kind == "map":
        for key, value in body:
            if isinstance(value, tuple):
                text += f"{pad}{key}:\n{_render(value, indent + 2)}"
            else:
                text += f"{pad}{key}: {value}\n"
    else:
        for item in body:
            if isinstance(item, tuple):
                text += f"{pad}-\n{_render(item, indent + 2)}"
            else:
                text += f"{pad}- {item}\n"
    return text


def _repeats(tree: Tree) -> int:
    if not isinstance(tree, tuple):
        return 0
    kind, body = tree
    if kind == "seq":
        return sum(_repeats(item) for item in body)
    keys = [key for key, _ in body]
    return len(keys) - len(set(keys)) + sum(_repeats(value) for _, value in body)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "data"]), _trees()), min_size=1, max_size=4))
def test_any_mapping_with_a_repeated_key_is_refused(pairs: list[tuple[str, Tree]]) -> None:
    """Property: a file is refused for repeated keys exactly as often as a key repeats."""
    tree = ("map", pairs)
    text = _render(tree)
    expected = _repeats(tree)
    try:
        parse_workloads(text, "w.yaml", default_catalog())
        reported = 0
    except PlannerError as exc:
        reported = sum("is given twice in one mapping" in p.message for p in exc.problems)
        if reported:
            assert all(p.line is not None for p in exc.problems)
    assert reported == expected


@pytest.mark.parametrize(
    ("data", "cidr"),
    [
        ("confidential", "8.8.8.0/24"),
        ("regulated", "0.0.0.0/1"),
        ("regulated", "172.32.0.0/16"),  # just past 172.16.0.0/12
        ("confidential", "2001:db8::/32"),
    ],
)
def test_confidential_and_regulated_consumers_must_be_private(
    write_workloads: Callable[[str], Path],
    project: Path,
    capsys: pytest.CaptureFixture[str],
    data: str,
    cidr: str,
) -> None:
    path = write_workloads(workload_yaml(data=data, consumers=f'["10.1.0.0/16", "{cidr}"]'))
    [line] = refused(capsys, project, str(path))
    assert line.startswith(f"{path}: workloads[0].consumers[1] (line 8): {cidr} is not a private")
    assert f"{data} data may only be called from private ones" in line


@pytest.mark.parametrize("cidr", ["10.0.0.0/8", "172.16.5.0/24", "100.64.0.0/10", "fd12::/16"])
def test_private_ranges_pass_for_regulated_data(
    write_workloads: Callable[[str], Path], capsys: pytest.CaptureFixture[str], cidr: str
) -> None:
    # The stack's networks come from 192.168.0.0/16: 10.0.0.0/8 leaves the default space no room.
    network = "network: {space: 192.168.0.0/16, pools: 192.168.0.0/19, apis: 192.168.128.0/19}\n"
    path = write_workloads(workload_yaml(data="regulated", consumers=f'["{cidr}"]') + network)
    _, warnings = planned(capsys, str(path))
    assert not any("public_consumers" in w for w in warnings)


def test_a_public_range_for_internal_data_is_a_warning(
    write_workloads: Callable[[str], Path], project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_workloads(workload_yaml(data="internal", consumers='["8.8.8.0/24"]'))
    _, warnings = planned(capsys, str(path))
    [warning] = [w for w in warnings if "public_consumers" in w]
    assert "8.8.8.0/24 are public address space" in warning
    plan = json.loads((project / "plans/dev/plan.json").read_text())
    assert [w["code"] for w in plan["workloads"][0]["warnings"]] == [
        "public_consumers",
        "consumers_inside",
        "cross_region_inference",
    ]


def test_a_request_longer_than_a_context_window_rules_the_model_out(
    write_workloads: Callable[[str], Path], project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 151,000 tokens: more than Llama 3.1 8B's and 3.3 70B's 131,072 and Qwen3's 40,960
    # (models.yaml).
    path = write_workloads(
        workload_yaml(task="faq", request="{input_tokens: 150000, output_tokens: 1000}")
    )
    planned(capsys, str(path))
    plan = json.loads((project / "plans/dev/plan.json").read_text())
    economics = plan["workloads"][0]["answers"]["volume_economics"]
    models = {option["model"] for option in economics["options"]}
    assert not models & {"llama-3.1-8b", "llama-3.3-70b", "qwen3-235b-a22b"}
    assert "deepseek-v3.2" in models  # 163,840 tokens: long enough
    assert (
        "151,000-token request is longer than their context window: llama-3.1-8b, "
        "llama-3.3-70b, qwen3-235b-a22b" in economics["reason"]
    )


@pytest.mark.parametrize(
    ("model", "window", "shape"),
    [
        ("qwen3-235b-a22b", "40,960", "{input_tokens: 50000, output_tokens: 1000}"),
        ("claude-opus-4", "200,000", "{input_tokens: 250000, output_tokens: 1000}"),
    ],
)
def test_a_pin_to_a_model_too_short_for_the_request_is_refused(
    write_workloads: Callable[[str], Path],
    project: Path,
    capsys: pytest.CaptureFixture[str],
    model: str,
    window: str,
    shape: str,
) -> None:
    path = write_workloads(workload_yaml(model=model, request=shape))
    [line] = refused(capsys, project, str(path))
    assert line.startswith(f"{path}: workloads[0].model (line 9): a request of ")
    asked = sum(int(n) for n in re.findall(r"\d+", shape))
    assert f"a request of {asked:,} tokens" in line
    assert f"longer than {model}'s context window of {window} tokens" in line


def test_the_default_request_shape_counts_against_a_pin(
    write_workloads: Callable[[str], Path], project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = workload_yaml(model="qwen3-235b-a22b").replace(
        "workloads:",
        "assumptions:\n  request: {input_tokens: 40000, output_tokens: 2000}\nworkloads:",
    )
    [line] = refused(capsys, project, str(write_workloads(text)))
    assert "workloads[0].model (line 11): a request of 42,000 tokens" in line
    assert "assumptions.request" in line and "40,960" in line


def test_every_model_has_a_context_window_with_a_source(catalog: Catalog) -> None:
    for model_id in [*catalog.models, *catalog.api_models]:
        window = catalog.context_windows[model_id]
        assert window.value >= 8192 and window.source and window.date
    assert "genai-prices" in catalog.context_windows["claude-opus-4"].source
    assert "config.json" in catalog.context_windows["llama-3.1-8b"].source


def test_zero_volume_is_a_warning_that_says_what_was_asked(
    write_workloads: Callable[[str], Path], project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_workloads(workload_yaml(monthly_tokens="{input: 0, output: 0}"))
    _, warnings = planned(capsys, str(path))
    [warning] = [w for w in warnings if "zero_volume" in w]
    assert "monthly_tokens is 0 input and 0 output" in warning
    (project / "plans").rename(project / "first")
    (project / "Pulumi.dev.yaml").unlink()
    assert main(["plan", "--strict", str(path)]) == 1


def test_an_absurd_size_is_a_warning_that_says_what_was_asked(
    write_workloads: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # Regulated data is self-hosted: 9,000 trillion tokens a month take a fleet of nodes.
    path = write_workloads(
        workload_yaml(data="regulated", monthly_tokens="{input: 9000T, output: 900T}")
    )
    _, warnings = planned(capsys, str(path))
    [warning] = [w for w in warnings if "large_workload" in w]
    assert "9,000,000,000,000,000 input and 900,000,000,000,000 output tokens" in warning
    assert re.search(r"needs [\d,]+ nodes of \S+ \(warned from 100\)", warning)
    assert "USD a month (warned from 1,000,000)" in warning


def test_an_ordinary_size_gets_no_size_warning(capsys: pytest.CaptureFixture[str]) -> None:
    plan = build_plan(load_workloads(EXAMPLE, default_catalog()), default_catalog(), "dev", "x")
    codes = {w.code for workload in plan.workloads for w in workload.warnings}
    assert not codes & {"large_workload", "zero_volume", "public_consumers", "price_region"}


def test_an_unknown_region_is_refused(
    write_workloads: Callable[[str], Path], project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_workloads(workload_yaml().replace("us-east-1", "xx-moon-1"))
    [line] = refused(capsys, project, str(path))
    assert line.startswith(f"{path}: region (line 2): 'xx-moon-1' is not an AWS region")


def test_a_misspelt_region_gets_a_suggestion(
    write_workloads: Callable[[str], Path], project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_workloads(workload_yaml().replace("us-east-1", "us-easst-1"))
    [line] = refused(capsys, project, str(path))
    assert "region (line 2): 'us-easst-1' is not an AWS region; did you mean 'us-east-1'?" in line


def test_an_unpriced_region_needs_a_price_region(
    write_workloads: Callable[[str], Path], project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_workloads(workload_yaml().replace("us-east-1", "eu-central-1"))
    [line] = refused(capsys, project, str(path))
    assert line.startswith(f"{path}: region (line 2): the catalog has no prices for eu-central-1")
    assert "set assumptions.price_region: us-east-1" in line


def test_a_price_region_stands_in_and_the_plan_says_so(
    write_workloads: Callable[[str], Path], project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = workload_yaml().replace(
        "region: us-east-1\n", "region: eu-central-1\nassumptions:\n  price_region: us-east-1\n"
    )
    _, warnings = planned(capsys, str(write_workloads(text)))
    [warning] = [w for w in warnings if "price_region" in w]
    assert "priced at us-east-1 prices" in warning and "none for eu-central-1" in warning
    plan = json.loads((project / "plans/dev/plan.json").read_text())
    assert plan["region"] == "eu-central-1"
    assert plan["assumptions"]["price_region"] == "us-east-1"
    assert "aws:region: eu-central-1" in (project / "Pulumi.dev.yaml").read_text()


def test_a_price_region_must_have_prices(
    write_workloads: Callable[[str], Path], project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = workload_yaml().replace(
        "region: us-east-1\n", "region: eu-central-1\nassumptions:\n  price_region: eu-west-1\n"
    )
    [line] = refused(capsys, project, str(write_workloads(text)))
    assert "assumptions.price_region (line 4): the catalog has no prices for 'eu-west-1'" in line


def test_the_example_passes_the_published_schema() -> None:
    """What an editor does with the schema: the README's example file must validate."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--schemafile",
            "schema/workloads.schema.json",
            "examples/workloads.yaml",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_bad_file_fails_the_published_schema(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        workload_yaml(monthly_tokens="{input: lots, output: -3}", task="poetry"), encoding="utf-8"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--schemafile",
            str(REPO / "schema" / "workloads.schema.json"),
            str(bad),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    for field in ("monthly_tokens.input", "monthly_tokens.output", "task"):
        assert f"$.workloads[0].{field}" in result.stdout


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"task": "summarisation"}, "workloads[0].task (line 5): 'summarisation' is not one of"),
        ({"data": "confidental"}, "workloads[0].data (line 6): 'confidental' is not one of"),
        ({"model": "gpt-4.2"}, "workloads[0].model (line 9): unknown model 'gpt-4.2'"),
    ],
)
def test_a_near_miss_gets_did_you_mean(
    write_workloads: Callable[[str], Path],
    project: Path,
    capsys: pytest.CaptureFixture[str],
    fields: dict[str, str],
    expected: str,
) -> None:
    [line] = refused(capsys, project, str(write_workloads(workload_yaml(**fields))))
    assert expected in line
    suggestion = {"summarisation": "summarization", "confidental": "confidential"}
    value = next(iter(fields.values()))
    assert line.endswith(f"did you mean {suggestion.get(value, 'gpt-4.1')!r}?")


def test_a_misspelt_field_name_gets_did_you_mean(
    write_workloads: Callable[[str], Path], project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = workload_yaml().replace("consumers:", "consumer:")
    lines = refused(capsys, project, str(write_workloads(text)))
    assert any(
        "workloads[0].consumer (line 8): unknown field; did you mean 'consumers'?" in line
        for line in lines
    )
    assert any("workloads[0].consumers (line 4): required field missing" in line for line in lines)


@pytest.mark.parametrize(
    ("fields", "region", "expected"),
    [
        (
            {"monthly_tokens": "[100M, 20M]"},
            "us-east-1",
            "workloads[0].monthly_tokens (line 7): expected a mapping of fields (input, output), "
            "got a list",
        ),
        (
            {"capacity_reservation_id": "cr-xyz"},
            "us-east-1",
            "workloads[0].capacity_reservation_id (line 9): 'cr-xyz' is not an EC2 capacity "
            "reservation id",
        ),
        ({}, "Frankfurt", "region (line 2): 'Frankfurt' is not an AWS region name"),
        ({"consumers": "10.0.0.0/16"}, "us-east-1", "expected a list, got '10.0.0.0/16'"),
    ],
)
def test_messages_use_the_files_words_not_the_librarys(
    write_workloads: Callable[[str], Path],
    project: Path,
    capsys: pytest.CaptureFixture[str],
    fields: dict[str, str],
    region: str,
    expected: str,
) -> None:
    text = workload_yaml(**fields).replace("us-east-1", region)
    [line] = refused(capsys, project, str(write_workloads(text)))
    assert expected in line
    for library_word in ("MonthlyTokens", "Input should be", "instance of", "^", "[0-9a-f]"):
        assert library_word not in line


def test_crossover_refuses_a_pin_too_short_for_the_request(
    write_workloads: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_workloads(
        workload_yaml(model="qwen3-235b-a22b", request="{input_tokens: 50000, output_tokens: 1000}")
    )
    assert main(["crossover", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"{path}: workloads[0].model (line 9): a request of 51,000 tokens" in err


def test_no_message_speaks_the_librarys_language(
    write_workloads: Callable[[str], Path], project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file with a bit of everything wrong: every message is in the file's words."""
    path = write_workloads(
        """
        organization: ""
        region: 5
        assumptions:
          utilization: abc
          request: 5
          price_date: tomorrow
        workloads:
          - name: w
            task: faq
            data: internal
            monthly_tokens: {input: 1M, output: 1M}
            consumers: "10.0.0.0/8"
            request: {input_tokens: 0, output_tokens: 1}
            concurrency: 1.5
            peak_tokens_per_second: [1]
          - 7
        """
    )
    lines = refused(capsys, project, str(path))
    assert len(lines) == 10
    classes = ("MonthlyTokens", "RequestShape", "Assumptions", "WorkloadsFile", "Workload ")
    for line in lines:
        assert re.search(r"\(line \d+\)", line), line
        assert "Input should" not in line and "String should" not in line, line
        assert not any(name in line for name in classes), line
    assert any("price_date (line 6): 'tomorrow' is not a date (YYYY-MM-DD)" in x for x in lines)
    assert any("organization (line 1): must not be empty" in x for x in lines)


_PRIVATE_BLOCKS = [  # (first, last) address as integers: RFC 1918, RFC 6598
    (10 << 24, (10 << 24) + 2**24 - 1),
    ((172 << 24) + (16 << 16), (172 << 24) + (31 << 16) + 2**16 - 1),
    ((192 << 24) + (168 << 16), (192 << 24) + (168 << 16) + 2**16 - 1),
    ((100 << 24) + (64 << 16), (100 << 24) + (127 << 16) + 2**16 - 1),
]


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.integers(0, 2**32 - 1),
        # Near and inside the private blocks too, where the edges are.
        st.sampled_from(_PRIVATE_BLOCKS).flatmap(
            lambda block: st.integers(max(block[0] - 2**20, 0), block[1] + 2**20)
        ),
    ),
    st.integers(1, 32),
    st.sampled_from(["regulated", "public"]),
)
def test_a_range_is_refused_for_regulated_data_iff_it_leaves_private_space(
    address: int, prefix: int, data: str
) -> None:
    """Property, against integer arithmetic: refused iff the block is not inside a private one;
    other data classes are never refused for it."""
    first = address & ~(2 ** (32 - prefix) - 1) & (2**32 - 1)
    last = first + 2 ** (32 - prefix) - 1
    cidr = f"{ipaddress.ip_address(first)}/{prefix}"
    text = workload_yaml(data=data, consumers=f'["{cidr}"]')
    inside = any(low <= first and last <= high for low, high in _PRIVATE_BLOCKS)
    try:
        parse_workloads(text, "w.yaml", default_catalog())
        refused_it = False
    except PlannerError as exc:
        [problem] = exc.problems
        assert problem.field == "workloads[0].consumers[0]" and problem.line == 8
        refused_it = True
    assert refused_it == (data == "regulated" and not inside)


def test_many_problems_parse_the_file_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lines come from the one node tree: a file is not parsed again per problem (that made
    1,000 bad workloads take minutes; bench/error_bench.py times it)."""
    parses = []
    real = yaml_lines._Loader

    def counting(text: str) -> Any:
        parses.append(text)
        return real(text)

    monkeypatch.setattr(yaml_lines, "_Loader", counting)
    monkeypatch.setattr(yaml, "compose", None)  # the old way, per problem
    body = "".join(
        f"  - {{name: w{i}, task: poetry, data: internal, consumers: ['10.0.0.0/8'],"
        f" monthly_tokens: {{input: 1M, output: 1M}}}}\n"
        for i in range(50)
    )
    with pytest.raises(PlannerError) as caught:
        parse_workloads(
            f"organization: a\nregion: us-east-1\nworkloads:\n{body}", "w", default_catalog()
        )
    assert [p.line for p in caught.value.problems] == list(range(4, 54))
    assert len(parses) == 1


@pytest.mark.parametrize(("prompt", "compared"), [(100000, True), (140000, False)])
def test_crossover_compares_no_api_too_short_for_the_request(
    write_workloads: Callable[[str], Path],
    capsys: pytest.CaptureFixture[str],
    prompt: int,
    compared: bool,
) -> None:
    """deepseek-v3.2-api takes 128,000 tokens (genai-prices), the weights 163,840 (config.json):
    a 141,000-token request may be self-hosted, but that API is no comparison for it (the pin
    admits the same weights sold as an API, the only API the workload may use)."""
    path = write_workloads(
        workload_yaml(
            data="public",
            model="deepseek-v3.2",
            request=f"{{input_tokens: {prompt}, output_tokens: 1000}}",
        )
    )
    assert main(["crossover", str(path)]) == 0
    out = capsys.readouterr().out
    assert "self_hosted/deepseek-v3.2" in out
    assert ("deepseek-v3.2-api" in out) is compared
    assert ("none: its tier and perimeter admit no API" in out) is not compared


# --- Consumers that name where the callers run (issue 12).

VPC_CONSUMERS = """[
      {cidr: 10.20.0.0/16, vpc: vpc-0a1b2c3d4e5f60718,
       subnets: [subnet-0a1b2c3d4e5f60718, subnet-0b1c2d3e4f5a60719]},
      {cidr: 10.22.0.0/16, account: "111122223333"},
      10.30.0.0/16]"""


def test_consumers_name_a_vpc_an_account_or_a_plain_range(
    write_workloads: Callable[[str], Path], project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_workloads(workload_yaml(consumers=VPC_CONSUMERS))
    planned(capsys, str(path))
    plan = json.loads((project / "plans/dev/plan.json").read_text())
    assert plan["workloads"][0]["consumers"] == [
        {
            "cidr": "10.20.0.0/16",
            "vpc": "vpc-0a1b2c3d4e5f60718",
            "subnets": ["subnet-0a1b2c3d4e5f60718", "subnet-0b1c2d3e4f5a60719"],
            "account": None,
            "namespace": None,
            "site": None,
        },
        {"cidr": "10.22.0.0/16", "vpc": None, "subnets": [], "account": "111122223333",
         "namespace": None, "site": None},
        {"cidr": "10.30.0.0/16", "vpc": None, "subnets": [], "account": None,
         "namespace": None, "site": None},
    ]  # fmt: skip
    markdown = (project / "plans/dev/plan.md").read_text()
    assert (
        "called from 10.20.0.0/16 in vpc-0a1b2c3d4e5f60718 (2 subnet(s)), 10.22.0.0/16 in "
        "account 111122223333, 10.30.0.0/16." in markdown
    )


@pytest.mark.parametrize(
    ("entry", "field", "message"),
    [
        ("10.0.0.0/33", "consumers[0]", "'10.0.0.0/33' is not a CIDR block"),
        ("{cidr: 10.0.0.0/33}", "consumers[0].cidr", "'10.0.0.0/33' is not a CIDR block"),
        (
            "{cidr: 10.1.0.0/16, vpc: vpc-0a1b2c3d4e5f60718}",
            "consumers[0]",
            "vpc vpc-0a1b2c3d4e5f60718 needs subnets",
        ),
        (
            "{cidr: 10.1.0.0/16, subnets: [subnet-0a1b2c3d4e5f60718]}",
            "consumers[0]",
            "subnets need the vpc they are in",
        ),
        (
            '{cidr: 10.1.0.0/16, account: "1234"}',
            "consumers[0].account",
            "'1234' is not an AWS account id: 12 digits, quoted",
        ),
        (
            "{cidr: 10.1.0.0/16, account: 111122223333}",
            "consumers[0].account",
            "an account id is quoted text, got 111122223333",
        ),
        (
            "{cidr: 10.1.0.0/16, vpc: vpc-1, subnets: [subnet-0a1b2c3d4e5f60718]}",
            "consumers[0].vpc",
            "'vpc-1' is not a VPC id",
        ),
        (
            "{cidr: 10.1.0.0/16, vpc: vpc-0a1b2c3d4e5f60718, subnets: [sn-1]}",
            "consumers[0].subnets[0]",
            "'sn-1' is not a subnet id",
        ),
        (
            '{cidr: 10.1.0.0/16, vpc: vpc-0a1b2c3d4e5f60718, account: "111122223333", '
            "subnets: [subnet-0a1b2c3d4e5f60718]}",
            "consumers[0]",
            "give vpc (this account) or account (another one), not both",
        ),
        (
            "{cidr: 10.1.0.0/16, vpcs: vpc-0a1b2c3d4e5f60718}",
            "consumers[0].vpcs",
            "unknown field; did you mean 'vpc'?",
        ),
    ],
)
def test_a_bad_consumer_entry_is_refused_in_the_files_words(
    write_workloads: Callable[[str], Path],
    project: Path,
    capsys: pytest.CaptureFixture[str],
    entry: str,
    field: str,
    message: str,
) -> None:
    path = write_workloads(workload_yaml(consumers=f"\n      - {entry}"))
    [line] = refused(capsys, project, str(path))
    assert line.startswith(f"{path}: workloads[0].{field} (line 9): {message}"), line
    assert "Consumer" not in line  # the library's class name stays out of the message


def test_a_private_data_consumer_mapping_must_be_private(
    write_workloads: Callable[[str], Path], project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_workloads(
        workload_yaml(data="regulated", consumers='[{cidr: 8.8.8.0/24, account: "111122223333"}]')
    )
    [line] = refused(capsys, project, str(path))
    assert line.startswith(f"{path}: workloads[0].consumers[0] (line 8): 8.8.8.0/24 is not")
