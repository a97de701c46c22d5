"""The Pulumi URNs of the example stack (issue 15): a restructure of the code must leave every
resource's URN as it was, or an existing stack would see replacements on its next `pulumi up`.
The example is planned both ways (the default optimum, and per workload, which uses every kind of
component) and run through the real __main__.py under Pulumi's mocks; the URNs are compared with
tests/golden/example-urns-*.txt. Regenerate with UPDATE_GOLDEN=1 only after a change that means
to rename resources, and say so in the change."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from planner.cli import main
from planner.graph.offline import run_program
from tests.conftest import EXAMPLE

GOLDEN = Path(__file__).resolve().parent / "golden"
CONFIG = {"ai-infra-planner:plan": "plans/dev/plan.json", "aws:region": "us-east-1"}


@pytest.mark.parametrize("strategy", ["optimal", "per-workload"])
def test_the_example_stacks_urns_are_unchanged(
    strategy: str, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "examples").mkdir()
    shutil.copy(EXAMPLE, project / "examples" / "workloads.yaml")
    assert main(["plan", "examples/workloads.yaml", "--strategy", strategy]) == 0
    capsys.readouterr()
    run = run_program(project, "dev", CONFIG)
    urns = sorted({r.urn for r in run.resources} | {run.stack_urn})
    assert len(urns) > 50, "the example stack registered too few resources to compare"
    text = "".join(f"{urn}\n" for urn in urns)
    path = GOLDEN / f"example-urns-{strategy}.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{path.name} differs: resources would be replaced"
