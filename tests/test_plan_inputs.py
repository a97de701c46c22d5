"""A plan is held to the workloads file it hashes (check_fresh): its hash matching the file is not
enough, since a hand-edited plan keeps the hash. Each value the plan copies from the file (a
workload's name, task, data class, consumers and monthly tokens; the organization, the region,
the capacity reservations, a Kubernetes site's settings) edited in the plan, together with
whatever would make the plan-file checks pass again (a lowered data class with the perimeters
lowered to match, as an outside review did), is refused by the program, verify and preview, exit
2, naming the plan's field."""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pulumi import RunError

from planner.catalog import default_catalog
from planner.cli import main
from planner.graph.offline import run_program
from planner.inputs.loader import parse_workloads
from planner.planfile import Plan as PlanModel
from planner.planfile import check_fresh
from planner.planfile.input_checks import input_problems
from tests import test_plan_file
from tests.conftest import EXAMPLE
from tests.test_sites import _plan, _spill_file

# The example planned once for the module (the plan file tests' fixture).
example_plan = test_plan_file.example_plan

Plan = dict[str, Any]
SELF = 1  # contract-review: regulated, self-hosted in the example
API = 3  # code-review: internal, through an API


def _lower_data(plan: Plan) -> None:
    """The review's edit: every workload's data internal, every perimeter contractual."""
    for workload in plan["workloads"]:
        workload["data"] = "internal"
        workload["answers"]["data_sensitivity"]["perimeter"] = "contractual"
    for pool in plan["pools"]:
        pool["perimeter"] = "contractual"


def _one(path: str, value: Any) -> Callable[[Plan], None]:
    def edit(plan: Plan) -> None:
        *parents, last = path.split(".")
        node: Any = plan
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[int(last) if last.isdigit() else last] = value

    return edit


def _reservation(plan: Plan) -> None:
    plan["pools"][0]["capacity_reservation_id"] = "cr-0123456789abcdef0"
    plan["pools"][0]["capacity_reservation_zone"] = "us-east-1a"


def _add_consumer(plan: Plan) -> None:
    plan["workloads"][SELF]["consumers"].append({"cidr": "10.98.0.0/16"})


def _region(plan: Plan) -> None:
    """Another region, priced as the file's (else the plan checks refuse its prices)."""
    plan["region"] = "us-west-2"
    plan["assumptions"]["price_region"] = "us-east-1"


# (edit, a field the refusal must name)
EDITS: dict[str, tuple[Callable[[Plan], None], str]] = {
    "data lowered with its perimeters": (_lower_data, f"workloads[{SELF}].data"),
    "data of one workload": (_one(f"workloads.{API}.data", "public"), f"workloads[{API}].data"),
    "task": (_one(f"workloads.{API}.task", "faq"), f"workloads[{API}].task"),
    "consumer range": (
        _one(f"workloads.{SELF}.consumers.0.cidr", "10.99.0.0/16"),
        f"workloads[{SELF}].consumers[0]",
    ),
    "consumer account": (
        _one(f"workloads.{SELF}.consumers.0.account", "123456789012"),
        f"workloads[{SELF}].consumers[0]",
    ),
    "consumer added": (_add_consumer, f"workloads[{SELF}].consumers"),
    "input tokens": (
        _one(f"workloads.{API}.answers.volume_economics.monthly_input_tokens", 1),
        f"workloads[{API}].answers.volume_economics.monthly_input_tokens",
    ),
    "output tokens": (
        _one(f"workloads.{API}.answers.volume_economics.monthly_output_tokens", 1),
        f"workloads[{API}].answers.volume_economics.monthly_output_tokens",
    ),
    "organization": (_one("organization", "evil"), "organization"),
    "region": (_region, "region"),
    "capacity reservation": (_reservation, "pools[0].capacity_reservation_id"),
}


def _write(project: Path, plan: Plan, edit: Callable[[Plan], None] | None) -> Path:
    edited = copy.deepcopy(plan)
    if edit is not None:
        edit(edited)
    (project / "examples").mkdir(exist_ok=True)
    shutil.copy(EXAMPLE, project / "examples" / "workloads.yaml")
    path = project / "plans" / "dev" / "plan.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(edited, indent=2))
    return path


def test_the_example_plan_matches_its_file(example_plan: Plan, project: Path) -> None:
    """The precondition of the edits below: the unedited plan passes (and its hash matches)."""
    path = _write(project, example_plan, None)
    plan = PlanModel.model_validate_json(path.read_text())
    check_fresh(plan, path, project, default_catalog())
    assert main(["verify", "plans/dev/plan.json"]) == 0


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_an_edited_copy_of_the_workloads_file_is_refused(
    edit: str, example_plan: Plan, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    change, field = EDITS[edit]
    path = _write(project, example_plan, change)
    before = path.read_text()
    relative = "plans/dev/plan.json"
    for args in (["verify", relative], ["preview", relative]):
        code = main(args)
        out, err = capsys.readouterr()
        assert code == 2, (args, out, err)
        assert out == "" and "Traceback" not in err
        assert f"error: {relative}: {field}: " in err, err
        assert "examples/workloads.yaml gives" in err
    config = {"ai-infra-planner:plan": relative, "aws:region": example_plan["region"]}
    with pytest.raises(RunError) as raised:
        run_program(project, "dev", config)
    assert f"{relative}: {field}: " in str(raised.value)
    assert path.read_text() == before  # nothing was rewritten


def _site_plan() -> tuple[PlanModel, str]:
    text = _spill_file(1)
    return _plan(text, "per-workload"), text


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("context", "other-admin"),
        ("gpus_per_node", 4),
        ("nodes", 50),
        ("node_selector", {"x": "y"}),
        ("storage_class", "slow"),
        ("weights_source", "s3://evil/weights"),
        ("tolerations", [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]),
        ("load_balancer", None),
    ],
)
def test_an_edited_site_is_refused(field: str, value: Any) -> None:
    plan, text = _site_plan()
    spec = parse_workloads(text, "workloads.yaml", default_catalog())
    assert input_problems(plan, spec, "workloads.yaml") == []
    site = plan.sites[0].model_copy(update={field: value})
    edited = plan.model_copy(update={"sites": [site]})
    problems = input_problems(edited, spec, "workloads.yaml")
    assert [p.field for p in problems] == [f"sites[0].{field}"], problems


def test_a_renamed_workload_is_refused() -> None:
    """Names are compared in order: a renamed workload names its own field."""
    plan, text = _site_plan()
    spec = parse_workloads(text, "workloads.yaml", default_catalog())
    renamed = [replace(w, name="ghost") if i == 0 else w for i, w in enumerate(plan.workloads)]
    problems = input_problems(plan.model_copy(update={"workloads": renamed}), spec, "w.yaml")
    assert "workloads[0].name" in [p.field for p in problems]
    fewer = plan.model_copy(update={"workloads": plan.workloads[1:]})
    assert [p.field for p in input_problems(fewer, spec, "w.yaml")] == ["workloads"]


def test_a_workloads_file_that_no_longer_loads_blames_the_plan(
    example_plan: Plan, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The hash matches but the file does not load (here a task no catalog knows; in life the
    catalog changed since the plan): the program refuses the plan, naming the plan's
    workloads_file and where in the workloads file the problem is, not a traceback."""
    path = _write(project, example_plan, None)
    workloads = project / "examples" / "workloads.yaml"
    text = workloads.read_text().replace("task: faq", "task: faqq", 1)
    assert "faqq" in text
    workloads.write_text(text)
    edited = json.loads(path.read_text())
    edited["inputs_sha256"] = hashlib.sha256(text.encode()).hexdigest()
    path.write_text(json.dumps(edited, indent=2))
    code = main(["preview", "plans/dev/plan.json"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and "Traceback" not in err
    lines = err.splitlines()
    assert lines and all(
        line.startswith("error: plans/dev/plan.json: workloads_file: examples/workloads.yaml: ")
        for line in lines
    ), err
    assert "faqq" in err and "(line " in err


def test_verify_of_a_preview_holds_the_plan_to_its_workloads_file(
    example_plan: Plan, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`verify --preview` checks a preview against the plan, so the plan must be what its
    workloads file says, as the program holds it before it deploys: a plan edited by hand after
    its preview was made (data classes lowered, the hash intact) passed (an outside review)."""
    relative = "plans/dev/plan.json"
    _write(project, example_plan, None)
    assert main(["preview", relative, "--json"]) == 0
    (project / "preview.json").write_text(capsys.readouterr().out)
    assert main(["verify", "--preview", "preview.json", relative]) == 0
    capsys.readouterr()
    _write(project, example_plan, _lower_data)
    code = main(["verify", "--preview", "preview.json", relative])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and "Traceback" not in err
    assert f"error: {relative}: workloads[{SELF}].data: " in err, err
