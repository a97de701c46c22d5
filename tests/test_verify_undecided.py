"""`planner verify` never passes what it cannot decide, nor crashes on what it cannot read (an
outside review of the gates): a malformed preview step or two steps of one URN are bad input
(exit 2, one line naming the step); values known only after `pulumi up` where a route's
destination or a rule's address should be are read as every address and reported UNKNOWN,
never dropped; a model endpoint's consumers are held to addresses it can prove; SARIF under
--fail-on-unknown says what the exit status says."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from pulumi.runtime import rpc

from planner.cli import main
from planner.errors import PlannerError
from planner.graph.resources import graph_from_preview

TYPE = "aws:ec2/securityGroup:SecurityGroup"
URN = f"urn:pulumi:dev::ai-infra-planner::ai-infra-planner:index:Pool${TYPE}::nodes"


def step(op: str = "create", **state: Any) -> dict[str, Any]:
    new = {"type": TYPE, "urn": URN, "custom": True, "inputs": {"name": "nodes"}}
    new.update(state)
    return {"op": op, "urn": URN, "newState": new}


def refused(steps: list[Any]) -> str:
    with pytest.raises(PlannerError) as raised:
        graph_from_preview({"steps": steps}, "p.json")
    [problem] = raised.value.problems
    return f"{problem.field}: {problem.message}"


def test_a_step_the_verifier_cannot_read_is_refused_naming_it() -> None:
    assert refused([step(), {"op": "create", "urn": URN, "newState": {"urn": URN}}]) == (
        "steps[1].newState.type: missing"
    )
    assert refused([step(type="SecurityGroup")]).startswith(
        "steps[0].newState.type: 'SecurityGroup' is not a resource type"
    )
    assert refused([step(inputs=["cidrIpv4", "0.0.0.0/0"])]) == (
        "steps[0].newState.inputs: a list, not an object"
    )
    assert refused([step(propertyDependencies={"vpcId": "urn:pulumi:x::y::vpc"})]) == (
        "steps[0].newState.propertyDependencies.vpcId: not a list of URNs"
    )
    assert refused([step(propertyDependencies=[])]) == (
        "steps[0].newState.propertyDependencies: a list, not an object"
    )
    assert refused([step(urn=7)]) == "steps[0].newState.urn: 7 is not a URN"
    assert refused([{"op": "create", "urn": URN}]).startswith("steps[0].newState: missing")
    assert refused([3]) == "steps[0]: not a preview step (an object)"
    # What leaves the stack is not read, however it is written; null inputs and dependencies
    # are none, as the engine writes them.
    gone = {"op": "delete", "urn": URN, "oldState": {"inputs": []}}
    graph = graph_from_preview(
        {"steps": [gone, step(inputs=None, propertyDependencies={"vpcId": None})]}
    )
    assert graph.resources[URN].inputs == {} and graph.resources[URN].deps == {"vpcId": ()}


def test_two_steps_of_one_urn_are_refused_unless_one_replacement() -> None:
    open_rule = step(inputs={"cidrIpv4": "0.0.0.0/0"})
    for first, last in ((step(), open_rule), (open_rule, step())):
        assert refused([first, last]).startswith(
            f"steps[1].urn: {URN} is also steps[0]'s: two steps declare one resource"
        )
    # The engine writes a replacement as create-replacement, replace and delete-replaced, one
    # URN: one resource, as long as both kept halves say the same.
    new = step("create-replacement", inputs={"name": "new"})
    graph = graph_from_preview(
        {"steps": [new, {**copy.deepcopy(new), "op": "replace"}, step("delete-replaced")]}
    )
    assert graph.resources[URN].inputs == {"name": "new"}
    assert refused([new, step("replace")]).startswith("steps[1].urn: ")
    # A --refresh read of what exists gives way to the step that says what it becomes.
    refresh = step("refresh", inputs={"cidrIpv4": "10.0.0.0/8"})
    for steps in ([refresh, open_rule], [open_rule, refresh]):
        assert (
            graph_from_preview({"steps": steps}).resources[URN].inputs
            == open_rule["newState"]["inputs"]
        )


def test_verify_refuses_a_malformed_step_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    preview = tmp_path / "preview.json"
    for steps, said in (
        ([step(), {"op": "same", "urn": URN, "newState": {"urn": URN, "inputs": {}}}], (
            "steps[1].newState.type: missing"
        )),
        ([step(inputs=[rpc.UNKNOWN])], "steps[0].newState.inputs: a list, not an object"),
        ([step(), step(inputs={"cidrIpv4": "0.0.0.0/0"})], f"steps[1].urn: {URN} is also"),
    ):  # fmt: skip
        preview.write_text(json.dumps({"steps": steps}))
        assert main(["verify", "--preview", str(preview)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"preview.json: {said}" in err, err
        assert "Traceback" not in err
