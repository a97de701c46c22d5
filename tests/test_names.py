"""One home for the names several modules share (planner/names.py, issue 15): the tags the
stacks write and verify reads, the stack config keys, the component type tokens."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from planner import names
from planner.graph.offline import OfflineRun, run_program
from tests.test_stacks import plan_project

REPO = Path(__file__).resolve().parent.parent
# `ai-infra-planner:` followed by a name: a tag, config key or type token spelled out.
SPELLED = re.compile(r"ai-infra-planner:[A-Za-z]")
# The pull-request comment's hidden marker is HTML, not a tag: it lives with the diff's comment.
ALLOWED = {("planner/render/diff_report.py", '"<!-- ai-infra-planner:plan-diff -->"')}


def test_no_code_spells_out_a_shared_name() -> None:
    found = []
    for folder in ("planner", "stacks", "policy", "bench"):
        for path in sorted((REPO / folder).rglob("*.py")):
            relative = path.relative_to(REPO).as_posix()
            if relative == "planner/names.py":
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if SPELLED.search(line) and not any(
                    relative == file and text in line for file, text in ALLOWED
                ):
                    found.append(f"{relative}:{number}: {line.strip()}")
    main = (REPO / "__main__.py").read_text(encoding="utf-8")
    found += [f"__main__.py: {line}" for line in main.splitlines() if SPELLED.search(line)]
    assert found == []


def test_the_check_finds_a_spelled_out_tag() -> None:
    assert SPELLED.search('tags.get("ai-infra-planner:pool")')
    assert not SPELLED.search('"ai-infra-planner: API egress network logs"')


def test_the_values_deployed_stacks_carry() -> None:
    """Changing one of these replaces or retags deployed resources: they stay as they were."""
    assert names.INFERENCE_POOL == "ai-infra-planner:index:InferencePool"
    assert names.TAG_POOL == "ai-infra-planner:pool"
    assert names.CONFIG_PLAN == "ai-infra-planner:plan"
    assert names.TAG_MONTHLY_USD == "ai-infra-planner:monthly-usd"


@pytest.fixture
def example_run(project: Path) -> OfflineRun:
    return run_program(project, "dev", plan_project(project, None))


def test_every_planner_tag_the_example_writes_is_a_known_one(example_run: OfflineRun) -> None:
    known = {
        value
        for key, value in vars(names).items()
        if key.startswith("TAG_") and isinstance(value, str) and key != "TAG_PREFIX"
    }
    written = {
        key
        for resource in example_run.resources
        for key in (resource.inputs.get("tags") or {})
        if isinstance(key, str) and key.startswith(f"{names.TAG_PREFIX}:")
    }
    assert written and written <= known, written - known
