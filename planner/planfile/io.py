"""Reading plan.json back: its schema version, strict types and every check (checks.py), each
problem named by its field; and refusing a plan whose workloads file changed since."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from planner.catalog import Catalog, default_catalog
from planner.errors import PlannerError, Problem
from planner.inputs.loader import parse_with_lines
from planner.planfile.checks import plan_problems
from planner.planfile.input_checks import input_problems
from planner.planfile.plan import Plan

SCHEMA_VERSION = 11


def read_plan(path: Path, catalog: Catalog | None = None) -> Plan:
    """Load plan.json and check it whole: a missing, malformed, other-version or inconsistent
    plan (a negative cost or node count, a model or instance type the catalog does not have,
    totals that do not add up, a pool or provider and its workloads that disagree) is a
    PlannerError listing every problem with its field."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
        # NaN and Infinity are no JSON; Python's json reads them: mark them for pydantic to name.
        raw = json.loads(text, parse_constant=lambda constant: None)
    except FileNotFoundError:
        raise PlannerError.single(file, "", "no such plan: run `planner plan` first") from None
    except IsADirectoryError:
        raise PlannerError.single(file, "", "a directory, not a plan file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PlannerError.single(file, "", f"cannot read the plan: {exc}") from None
    if not isinstance(raw, dict) or raw.get("schema_version") != SCHEMA_VERSION:
        found = raw.get("schema_version") if isinstance(raw, dict) else None
        raise PlannerError.single(
            file,
            "schema_version",
            f"expected {SCHEMA_VERSION}, found {found!r}: plan again with this planner",
        )
    try:
        # Strict, from the JSON text: a count is a whole number and a flag true or false, as
        # the planner writes them ("2", 2.0 or true for a node count is refused, not converted).
        plan = Plan.model_validate_json(text, strict=True)
    except ValidationError as exc:
        # A union reports each of its types: one problem a field (for a union of enums, as
        # pools[].pricing is, one list of every value they take).
        by_field: dict[str, list[Any]] = {}
        for error in exc.errors():
            by_field.setdefault(_field(error["loc"]), []).append(error)
        problems = [
            Problem(where, f"{_message(errors[0], _choices(errors))}: plan again")
            for where, errors in by_field.items()
        ]
        raise PlannerError(file, problems) from None
    problems = plan_problems(plan, catalog or default_catalog())
    if problems:
        raise PlannerError(file, problems)
    return plan


# Parts of a pydantic error location that name a type of a union, not a field of the file.
_UNION_PARTS = {"str", "float", "int", "bool", "none", "list[int]"}


def _field(loc: tuple[int | str, ...]) -> str:
    """('workloads', 1, 'pool') -> workloads[1].pool: the field as the JSON file has it."""
    text = ""
    for part in loc:
        if isinstance(part, str) and (
            part in _UNION_PARTS or part.startswith(("function-", "str-enum["))
        ):
            continue
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _json_value(value: Any) -> str:
    """A value as the plan file writes it."""
    if isinstance(value, float) and value != value:
        return "NaN"
    try:
        return json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):
        return repr(value)


# pydantic's error kinds in the plan file's words (no "Input should be ...").
_KIND_WORDS = {
    "int_type": "expected a whole number",
    "int_from_float": "expected a whole number",
    "int_parsing": "expected a whole number",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "finite_number": "expected a finite number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "string_type": "expected text",
    "list_type": "expected a list",
    "tuple_type": "expected a list",
    "dict_type": "expected an object",
    "model_type": "expected an object",
    "model_attributes_type": "expected an object",
    "dataclass_type": "expected an object",
    "dataclass_exact_type": "expected an object",
    "none_required": "expected null",
}


_CHOICE_KINDS = ("enum", "literal_error")


def _choices(errors: list[Any]) -> list[str] | None:
    """The values a field takes where each type of it is a choice (an enum, a literal)."""
    if not all(error["type"] in _CHOICE_KINDS for error in errors):
        return None
    return [
        choice
        for error in errors
        for choice in re.findall(r"'([^']*)'", str(error.get("ctx", {}).get("expected", "")))
    ]


def _message(error: Any, choices: list[str] | None = None) -> str:
    from planner.inputs.messages import did_you_mean

    kind, given = error["type"], error.get("input")
    shown = "" if isinstance(given, dict | list) else f", found {_json_value(given)}"
    if kind == "missing":
        return "missing"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind in _CHOICE_KINDS:
        choices = choices or _choices([error]) or []
        return (
            f"{_json_value(given)} is not one of {', '.join(choices)}{did_you_mean(given, choices)}"
        )
    if kind in _KIND_WORDS:
        return _KIND_WORDS[kind] + shown
    message = str(error["msg"]).removeprefix("Value error, ")
    return message.replace("Input should be ", "expected ") + shown


def check_fresh(
    plan: Plan, plan_file: Path, project_dir: Path, catalog: Catalog | None = None
) -> None:
    """Refuse a plan whose workloads file changed since it was planned, or whose copies of the
    file's values (a workload's data class, consumers, ...) were edited since: what was reviewed
    is what gets deployed. The file is read and parsed once."""
    workloads = project_dir / plan.workloads_file
    try:
        data = workloads.read_bytes()
    except OSError as exc:
        raise PlannerError.single(
            str(plan_file), "workloads_file", f"cannot read {workloads}: {exc.strerror}"
        ) from None
    if hashlib.sha256(data).hexdigest() != plan.inputs_sha256:
        raise PlannerError.single(
            str(plan_file),
            "inputs_sha256",
            f"stale plan: {plan.workloads_file} changed since this plan was made; run "
            f"`planner plan {plan.workloads_file} --stack {plan.stack}` and review the new plan",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PlannerError.unreadable(str(workloads), exc, "workloads file") from None
    try:
        spec, _ = parse_with_lines(text, str(workloads), catalog or default_catalog())
    except PlannerError as exc:
        # The file the plan was made from no longer loads (the catalog changed since): the
        # plan is blamed, each problem naming where in the workloads file it is.
        raise PlannerError(
            str(plan_file),
            [
                Problem(
                    "workloads_file",
                    f"{problem.render(plan.workloads_file)}; plan again with `planner plan`",
                )
                for problem in exc.problems
            ],
        ) from None
    problems = input_problems(plan, spec, plan.workloads_file)
    if problems:
        raise PlannerError(str(plan_file), problems)
