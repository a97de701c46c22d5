"""Numbers a workloads file may not hold: .inf, -.inf, .nan and numbers so large the arithmetic
overflows are refused by the schema (exit 2, one message naming the file, the field and its
line, nothing written); every problem of a file is reported in one run; and a plan cites the
per-user speed it priced a workload at (issue 14 review)."""

from __future__ import annotations

import json
import math
import re
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from planner.catalog import Catalog, default_catalog
from planner.cli.app import main
from planner.cli.schema import schema_text
from planner.errors import PlannerError
from planner.inputs.loader import LoadedWorkloads, parse_with_lines, parse_workloads
from planner.inputs.workloads import WorkloadsFile
from planner.planning.build import build_plan
from tests.conftest import workload_yaml
from tests.helpers import only
from tests.test_workloads import refused

Path_ = tuple[int | str, ...]


def _unwrap(annotation: Any) -> Any:
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(args) == 1:
            return _unwrap(args[0])
    return annotation


def numeric_fields(model: type[BaseModel] = WorkloadsFile, at: Path_ = ()) -> list[Path_]:
    """Every number of the schema, found from the models (a new number field is covered here
    without editing this test), lists stepped into at their first item."""
    found: list[Path_] = []
    for name, info in model.model_fields.items():
        annotation = _unwrap(info.annotation)
        path = (*at, name)
        if typing.get_origin(annotation) is list:
            annotation, path = _unwrap(typing.get_args(annotation)[0]), (*path, 0)
        if annotation in (int, float):
            found.append(path)
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found.extend(numeric_fields(annotation, path))
    return found


def dotted(path: Path_) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


# A file giving every number of the schema a good value (serving_efficiency aside: any value of
# it is refused). It plans: a refusal below is the bad number's alone.
GOOD: dict[str, Any] = {
    "organization": "acme",
    "region": "us-east-1",
    "assumptions": {
        "utilization": 0.5,
        "memory_reserve": 0.1,
        "user_output_tps": 30,
        "request": {"input_tokens": 2000, "output_tokens": 400},
        "engineer_usd_per_month": 15000,
        "pool_fte": 0.5,
        "amortization_months": 36,
    },
    "workloads": [
        {
            "name": "w",
            "task": "faq",
            "data": "internal",
            "monthly_tokens": {"input": 100_000_000, "output": 20_000_000},
            "consumers": [{"cidr": "10.0.0.0/16", "account": "111122223333"}],
            "peak_tokens_per_second": 500,
            "request": {"input_tokens": 1000, "output_tokens": 200},
            "concurrency": 20,
            "user_output_tps": 40,
            "cached_input_fraction": 0.5,
            "cache_write_fraction": 0.1,
        }
    ],
}
FIELDS = numeric_fields()
SCHEMA = json.loads(schema_text())  # as published (test_workloads checks the file is current)
BAD: list[float] = [math.inf, -math.inf, math.nan, 1e300, -1e300, 10**400]


def finite(value: float) -> bool:
    """Whole numbers are finite however long (math.isfinite cannot take one past 1e308)."""
    return isinstance(value, int) or math.isfinite(value)


def with_value(path: Path_, value: object, doc: dict[str, Any] | None = None) -> str:
    doc = json.loads(json.dumps(doc or GOOD))
    node: Any = doc
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return yaml.safe_dump(doc, sort_keys=False)


def line_of(text: str, value: object) -> int:
    """The line the value is written on (each bad value is written once)."""
    spelled = yaml.safe_dump(value).splitlines()[0]
    [line] = [n for n, row in enumerate(text.splitlines(), 1) if row.endswith(f": {spelled}")]
    return line


def test_every_number_of_the_schema_is_covered_and_bounded() -> None:
    """The walk finds the numbers the review named, the good file gives each a value, and the
    published schema bounds each one above."""
    names = {dotted(path) for path in FIELDS}
    assert {
        "workloads[0].peak_tokens_per_second",
        "workloads[0].user_output_tps",
        "assumptions.user_output_tps",
        "assumptions.engineer_usd_per_month",
        "assumptions.pool_fte",
        "assumptions.amortization_months",
        "workloads[0].monthly_tokens.input",
        "workloads[0].request.output_tokens",
        "workloads[0].concurrency",
    } <= names
    for path in FIELDS:
        assert math.isfinite(_bounds(path)[1]), dotted(path)
        if path[-1] != "serving_efficiency":
            node: Any = GOOD
            for part in path:
                node = node[part]
            assert isinstance(node, int | float), dotted(path)


@pytest.mark.parametrize("value", BAD, ids=["inf", "-inf", "nan", "1e300", "-1e300", "10^400"])
@pytest.mark.parametrize("field", FIELDS, ids=dotted)
def test_a_bad_number_is_one_message_naming_field_and_line(
    field: Path_,
    value: float,
    write_workloads: Callable[[str], Path],
    project: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = with_value(field, value)
    path = write_workloads(text)
    [line] = refused(capsys, project, str(path))
    assert line.startswith(f"{path}: {dotted(field)} (line {line_of(text, value)}): "), line
    said = line.split("): ", 1)[1]
    if finite(value):
        assert re.search(r"at most|at least|more than|less than|too large|negative", said), said
    else:
        assert "finite" in said and yaml.safe_dump(value).splitlines()[0] in said, said


@pytest.mark.parametrize(
    ("fragment", "field", "said"),
    [
        # The review's files (/work/review14-scratch/bad/w7.yaml, w8.yaml, w3.yaml).
        ("peak_tokens_per_second: .inf", "workloads[0].peak_tokens_per_second", "not .inf"),
        ("user_output_tps: .inf", "workloads[0].user_output_tps", "not .inf"),
        ("peak_tokens_per_second: 1e300", "workloads[0].peak_tokens_per_second", "got '1e300'"),
        ("concurrency: 1e300", "workloads[0].concurrency", "concurrency"),
        ("monthly_tokens: {input: 400M, output: 1000000T}", "monthly_tokens.output", "10,000T"),
        ("request: {input_tokens: 2B, output_tokens: 400}", "request.input_tokens", "context"),
        ("user_output_tps: 0.001", "workloads[0].user_output_tps", "at least 1"),
    ],
)
def test_the_reviews_numbers_are_refused_with_the_reason(
    fragment: str,
    field: str,
    said: str,
    write_workloads: Callable[[str], Path],
    project: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    key, value = fragment.split(": ", 1)
    path = write_workloads(workload_yaml(**{key: value}))
    [line] = refused(capsys, project, str(path))
    assert f"{field} (line " in line and said in line, line


@pytest.mark.parametrize(
    ("assumption", "said"),
    [
        ("engineer_usd_per_month: .inf", "not .inf"),
        ("pool_fte: .inf", "not .inf"),
        ("amortization_months: .inf", "not .inf"),
        ("user_output_tps: .inf", "not .inf"),
        ("utilization: 1.0e-300", "at least 0.01"),
        ("amortization_months: 1.0e-300", "at least 1"),
    ],
)
def test_a_bad_assumption_is_refused(
    assumption: str,
    said: str,
    write_workloads: Callable[[str], Path],
    project: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = workload_yaml().replace("workloads:", f"assumptions:\n  {assumption}\nworkloads:")
    [line] = refused(capsys, project, str(write_workloads(text)))
    field = assumption.split(":")[0]
    assert f"workloads.yaml: assumptions.{field} (line 4): " in line and said in line, line


def _bounds(field: Path_) -> tuple[float, float, bool, bool, bool]:
    """(least, most, whole number, least excluded, most excluded) of a field, from the
    published schema."""
    schema = SCHEMA
    node: dict[str, Any] = schema
    for part in field:
        while "$ref" in node or "anyOf" in node:
            if "$ref" in node:
                node = schema["$defs"][node["$ref"].rsplit("/", 1)[1]]
            else:
                node = next(n for n in node["anyOf"] if n.get("type") != "null")
        node = node["items"] if isinstance(part, int) else node["properties"][part]
    branches = node.get("anyOf", [node])
    [number] = [b for b in branches if b.get("type") in ("integer", "number")]
    least = number.get("minimum", number.get("exclusiveMinimum", -math.inf))
    most = number.get("maximum", number.get("exclusiveMaximum", math.inf))
    return (
        least,
        most,
        number["type"] == "integer",
        "exclusiveMinimum" in number,
        "exclusiveMaximum" in number,
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([f for f in FIELDS if f[-1] != "serving_efficiency"]),
    st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.floats(-10, 10),
        st.integers(-(10**20), 10**20),
        st.integers(-(10**400), 10**400),
        st.sampled_from([10**8, 10**9, 10**10, 10**16, 10**16 + 1, 240, 10**4, 10**6, 1000]),
    ),
)
def test_a_number_is_accepted_iff_the_published_schema_admits_it(
    field: Path_, value: float
) -> None:
    """Property: any number in any field is either accepted, finite and within the published
    schema's bounds, or refused with one problem naming that field; never an exception."""
    least, most, whole, least_out, most_out = _bounds(field)
    admitted = (
        finite(value)
        and (value > least if least_out else value >= least)
        and (value < most if most_out else value <= most)
        and (not whole or isinstance(value, int) or value.is_integer())
    )
    text = with_value(field, value)
    try:
        spec = parse_workloads(text, "w.yaml", default_catalog())
    except PlannerError as exc:
        assert not admitted, exc.render()
        [problem] = exc.problems
        assert problem.field == dotted(field) and problem.line is not None
        return
    assert admitted
    node: Any = spec
    for part in field:
        node = node[part] if isinstance(part, int) else getattr(node, part)
    assert math.isfinite(node) and least <= node <= most


def test_the_bounds_plan_to_finite_figures_and_past_them_is_refused(
    write_workloads: Callable[..., Path], project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The good file plans; so does one at the bounds (the largest volume and peak, the slowest
    reader, the lowest utilization), its arithmetic finite: a plan, not an OverflowError. One
    step past each bound is refused."""
    doc = json.loads(json.dumps(GOOD))
    doc["assumptions"].update(utilization=0.01, user_output_tps=1, amortization_months=1)
    doc["assumptions"].update(engineer_usd_per_month=10**6, pool_fte=1000)
    workload = doc["workloads"][0]
    workload.update(data="regulated", peak_tokens_per_second=10**10, user_output_tps=1)
    workload["monthly_tokens"] = {"input": "10000T", "output": "10000T"}
    del workload["concurrency"]
    for name, planned in (("good.yaml", GOOD), ("bounds.yaml", doc)):
        path = write_workloads(yaml.safe_dump(planned, sort_keys=False), name)
        out = project / name.removesuffix(".yaml")
        code = main(["plan", str(path), "--out", str(out), "--no-stack-config"])
        assert code == 0, capsys.readouterr().err
        total = json.loads((out / "plan.json").read_text(encoding="utf-8"))["totals"]
        assert math.isfinite(total["monthly_cost_usd"]) and total["monthly_cost_usd"] > 0
    capsys.readouterr()
    for field, past in (
        (("assumptions", "utilization"), 0.009),
        (("assumptions", "user_output_tps"), 0.99),
        (("workloads", 0, "user_output_tps"), 0.99),
        (("workloads", 0, "peak_tokens_per_second"), 1.01e10),
        (("workloads", 0, "monthly_tokens", "input"), "10001T"),
    ):
        path = write_workloads(with_value(field, past, doc))
        [line] = refused(capsys, project, str(path))
        assert f": {dotted(field)} (line " in line, line


def test_a_request_bound_admits_every_context_window(catalog: Catalog) -> None:
    """The request bound never refuses a request a model could read: past the longest window,
    the context-window check says which models are too short."""
    windows = [window.value for window in catalog.context_windows.values()]
    most = _bounds(("workloads", 0, "request", "input_tokens"))[1]
    assert math.isfinite(most) and max(windows) * 2 < most


# --- Every problem in one run (review item 4).


def test_a_schema_error_does_not_hide_the_rules_past_the_schema(
    write_workloads: Callable[[str], Path], project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The review's w6.yaml: three problems, three messages, in the order of their lines."""
    path = write_workloads(
        """
        organization: acme
        region: us-east-9
        assumptions:
          serving_efficiency: 0.4
        workloads:
          - name: c
            task: faq
            data: internal
            monthly_tokens: {input: -400M, output: 80M}
            consumers: [10.20.0.0/16]
        """
    )
    lines = refused(capsys, project, str(path))
    assert len(lines) == 3, lines
    assert lines[0].startswith(f"{path}: region (line 2): 'us-east-9' is not an AWS region")
    assert lines[1].startswith(f"{path}: assumptions.serving_efficiency (line 4): ")
    assert "no longer an assumption" in lines[1]
    assert lines[2].startswith(f"{path}: workloads[0].monthly_tokens.input (line 9): ")


def test_one_bad_workload_does_not_hide_another_ones_problems(
    write_workloads: Callable[[str], Path], project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each workload that passes the schema is still checked against the catalog, and each
    assumption that passes it too."""
    path = write_workloads(
        """
        organization: acme
        region: us-east-1
        assumptions:
          utilization: 5
          instance_types: [p9.48xlarge]
        workloads:
          - {name: a, task: faq, data: internal, monthly_tokens: {input: .inf, output: 1M},
             consumers: ['10.0.0.0/16']}
          - {name: b, task: faq, data: internal, monthly_tokens: {input: 1M, output: 1M},
             consumers: ['10.0.0.0/16'], model: gpt-9}
          - {name: c, task: faq, data: regulated, monthly_tokens: {input: 1M, output: 1M},
             consumers: ['8.8.8.0/24'], peak_tokens_per_second: -1}
        """
    )
    lines = refused(capsys, project, str(path))
    fields = [line.split(" (line")[0].removeprefix(f"{path}: ") for line in lines]
    assert fields == [
        "assumptions.utilization",
        "assumptions.instance_types[0]",
        "workloads[0].monthly_tokens.input",
        "workloads[1].model",
        "workloads[2].peak_tokens_per_second",
    ], lines


@pytest.mark.parametrize(
    ("region", "price_region", "expected"),
    [
        # A refused price_region is not also "missing" for an unpriced region.
        ("ap-south-2", "5", ["assumptions.price_region"]),
        # A refused region does not hide an unpriced price_region, nor adds a region message.
        ("Frankfurt", "xx-nowhere-1", ["region", "assumptions.price_region"]),
    ],
)
def test_a_refused_field_is_one_message_not_two(
    region: str,
    price_region: str,
    expected: list[str],
    write_workloads: Callable[[str], Path],
    project: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = workload_yaml(concurrency="-1").replace("us-east-1", region)
    text = text.replace("workloads:", f"assumptions:\n  price_region: {price_region}\nworkloads:")
    lines = refused(capsys, project, str(write_workloads(text)))
    fields = [line.split(": ", 1)[1].split(" (line")[0] for line in lines]
    assert fields == [*expected, "workloads[0].concurrency"], lines


# --- The plan cites the per-user speed it used (review item 5).


def _self_hosted(text: str, catalog: Catalog) -> tuple[Any, Any]:
    spec, lines = parse_with_lines(text, "workloads.yaml", catalog)
    loaded = LoadedWorkloads(Path("workloads.yaml"), spec, "0" * 64, lines)
    plan = build_plan(loaded, catalog, "dev", "workloads.yaml")
    workload = only(plan)
    option = next(
        o for o in workload.answers.volume_economics.options if o.placement == "self_hosted"
    )
    return plan, option


def test_a_workloads_own_speed_is_the_figure_cited(catalog: Catalog) -> None:
    """The review's w4.yaml: priced at the workload's 50 tok/s a user, so the option cites the
    workload's field with its line, not the assumption's 30, and the formula shows 50."""
    text = workload_yaml(data="regulated", monthly_tokens="{input: 400M, output: 80M}")
    text += "    user_output_tps: 50\n"
    plan, option = _self_hosted(text, catalog)
    assert option.throughput.user_output_tps == 50
    assert "workload.w.user_output_tps" in option.figures
    assert "assumption.user_output_tps" not in option.figures
    cited = plan.figures["workload.w.user_output_tps"]
    assert cited.value == 50
    assert cited.source == "set in the workloads file: workloads[0].user_output_tps (line 9)"
    assert "at 2,000/400 tokens and 50 tok/s per user" in option.formula


def test_without_its_own_speed_a_workload_cites_the_assumption(catalog: Catalog) -> None:
    text = workload_yaml(data="regulated", monthly_tokens="{input: 400M, output: 80M}")
    plan, option = _self_hosted(text, catalog)
    assert option.throughput.user_output_tps == 30
    assert "assumption.user_output_tps" in option.figures
    assert not any(key.startswith("workload.") for key in plan.figures)
    assert "at 2,000/400 tokens and 30 tok/s per user" in option.formula
