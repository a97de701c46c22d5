"""The workloads file: parsing, validation and error reporting by field and line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from planner.catalog import Catalog
from planner.cli import schema_text
from planner.errors import PlannerError
from planner.loader import load_workloads
from planner.workloads import parse_tokens
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
