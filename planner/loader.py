"""Read a workloads file: YAML -> pydantic model, every problem reported by field path and line."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from planner.catalog import Catalog
from planner.errors import PlannerError, Problem
from planner.workloads import WorkloadsFile

# The C loader is several times faster; the pure-Python one gives the same data.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class LoadedWorkloads:
    path: Path
    spec: WorkloadsFile
    sha256: str


def field_path(loc: tuple[int | str, ...]) -> str:
    """('workloads', 1, 'monthly_tokens', 'input') -> 'workloads[1].monthly_tokens.input'."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _line_of(text: str, loc: tuple[int | str, ...]) -> int | None:
    """The 1-based line of the YAML node at loc (or of its nearest existing parent)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == part:
                    # A key's own line reads better than its value's for a missing or bad value.
                    child = value if isinstance(value, yaml.CollectionNode) else key
                    break
        elif (
            isinstance(node, yaml.SequenceNode)
            and isinstance(part, int)
            and 0 <= part < len(node.value)
        ):
            child = node.value[part]
        if child is None:
            break
        node = child
        line = node.start_mark.line + 1
    return line


def _message(error: Any) -> str:
    message = str(error["msg"])
    if error["type"] == "extra_forbidden":
        return "unknown field (check its spelling; the schema lists every field)"
    if error["type"] == "enum":
        expected = error.get("ctx", {}).get("expected", "")
        return f"{error['input']!r} is not one of {expected}"
    return message.removeprefix("Value error, ")


def parse_workloads(text: str, file: str, catalog: Catalog) -> WorkloadsFile:
    try:
        raw = yaml.load(text, Loader=_Loader)  # a safe loader: CSafeLoader or SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise PlannerError.single(file, "", f"malformed YAML: {problem}", line) from None
    if not isinstance(raw, dict):
        raise PlannerError.single(file, "", "expected a mapping with organization and workloads")
    try:
        spec = WorkloadsFile.model_validate(raw)
    except ValidationError as exc:
        problems = [
            Problem(field_path(err["loc"]), _message(err), _line_of(text, err["loc"]))
            for err in exc.errors()
        ]
        raise PlannerError(file, problems) from None
    problems = []
    first_seen: dict[str, int] = {}
    for index, workload in enumerate(spec.workloads):
        if workload.name in first_seen:
            loc: tuple[int | str, ...] = ("workloads", index, "name")
            problems.append(
                Problem(
                    field_path(loc),
                    f"duplicate workload name {workload.name!r} "
                    f"(first used by workloads[{first_seen[workload.name]}])",
                    _line_of(text, loc),
                )
            )
        first_seen.setdefault(workload.name, index)
        if (
            workload.model is not None
            and workload.model not in catalog.models
            and workload.model not in catalog.api_models
        ):
            loc = ("workloads", index, "model")
            known = ", ".join(sorted([*catalog.models, *catalog.api_models]))
            problems.append(
                Problem(
                    field_path(loc),
                    f"unknown model {workload.model!r}; the catalog has: {known}",
                    _line_of(text, loc),
                )
            )
    if problems:
        raise PlannerError(file, problems)
    return spec


def load_workloads(path: Path, catalog: Catalog) -> LoadedWorkloads:
    file = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PlannerError.single(file, "", "no such file") from None
    except OSError as exc:
        raise PlannerError.single(file, "", f"cannot read: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PlannerError.single(file, "", f"not UTF-8 text ({exc.reason})") from None
    spec = parse_workloads(text, file, catalog)
    return LoadedWorkloads(path=path, spec=spec, sha256=hashlib.sha256(data).hexdigest())
