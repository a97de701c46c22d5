"""What a workloads file's validation error says: pydantic's errors turned into one sentence
each, in the file's terms (the value as written, the bound, the choices, a close match)."""

from __future__ import annotations

import difflib
import types
import typing
from enum import Enum
from typing import Any

from pydantic import BaseModel

from planner.inputs.lines import Loc
from planner.inputs.workloads import (
    LIMIT_REASONS,
    WorkloadsFile,
    yaml_number,
)


def did_you_mean(value: object, choices: typing.Iterable[str]) -> str:
    """ "; did you mean 'x'?" where value is close to one of the choices, else ""."""
    if not isinstance(value, str):
        return ""
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _unwrap(annotation: Any) -> Any:
    """X | None -> X; Annotated[X, ...] -> X; list[X] stays (the caller steps into it with an
    index)."""
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def _type_at(loc: Loc) -> Any:
    """The annotation of the field at loc in WorkloadsFile (None where loc leaves the model)."""
    current: Any = WorkloadsFile
    for part in loc:
        current = _unwrap(current)
        if isinstance(part, str) and _tagged(current, part) is not None:
            current = _tagged(current, part)  # a union member, by its `kind` (sites)
        elif isinstance(part, int):
            args = typing.get_args(current)
            if typing.get_origin(current) is not list or not args:
                return None
            current = args[0]
        elif isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(part)
            if field is None:
                return None
            current = field.annotation
        else:
            return None
    return _unwrap(current)


def _tagged(union: Any, tag: str) -> type[BaseModel] | None:
    """The member of a union of models whose `kind` is this tag (pydantic puts the tag of a
    discriminated union in an error's location), or None."""
    if not (isinstance(union, types.UnionType) or typing.get_origin(union) is typing.Union):
        return None
    for member in typing.get_args(union):
        if isinstance(member, type) and issubclass(member, BaseModel):
            kind = member.model_fields.get("kind")
            if kind is not None and typing.get_args(kind.annotation) == (tag,):
                return member
    return None


def _fields_at(loc: Loc) -> list[str]:
    parent = _type_at(loc)
    if isinstance(parent, type) and issubclass(parent, BaseModel):
        return list(parent.model_fields)
    return []


def _described(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    return repr(value)


# Fields whose schema pattern is a regular expression: what the pattern means, in words.
_PATTERN_WORDS = {
    "region": "an AWS region name such as us-east-1",
    "name": "a DNS label: at most 63 lowercase letters, digits and '-', starting and ending with "
    "a letter or digit",
    "capacity_reservation_id": "an EC2 capacity reservation id: cr- and 8 to 17 hex digits",
    "capacity_reservation_zone": "an availability zone name such as us-east-1a",
    "vpc": "a VPC id: vpc- and 8 to 17 hex digits",
    "subnets": "a subnet id: subnet- and 8 to 17 hex digits",
    "account": "an AWS account id: 12 digits, quoted",
    "namespace": "a Kubernetes namespace name, a DNS label: at most 63 lowercase letters, "
    "digits and '-', starting and ending with a letter or digit",
}


def as_written(raw: Any, loc: Loc, kind: str = "") -> Loc:
    """The field as the file spells it: a consumer given as a plain CIDR is `consumers[0]`, not
    the `consumers[0].cidr` it stands for, and a site's field is `sites[0].cost`, without the
    `kubernetes` tag pydantic puts in the location of a member of a union by kind (an unknown
    or missing kind is the `kind` field's problem: `sites[0].kind`)."""
    if kind.startswith("union_tag_"):
        return (*loc, "kind")
    if loc[:1] == ("sites",) and len(loc) > 2 and _tagged(_site_union(), str(loc[2])):
        return loc[:2] + loc[3:]
    if loc[-1:] != ("cidr",):
        return loc
    value = raw
    for part in loc[:-1]:
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError):
            return loc
    return loc[:-1] if isinstance(value, str) else loc


def _site_union() -> Any:
    return _unwrap(typing.get_args(_unwrap(WorkloadsFile.model_fields["sites"].annotation))[0])


# pydantic's bound errors: the key of the bound in the error's context, and its words.
_BOUNDS = {
    "less_than_equal": ("le", "at most"),
    "less_than": ("lt", "less than"),
    "greater_than_equal": ("ge", "at least"),
    "greater_than": ("gt", "more than"),
}


def _shown(value: Any) -> str:
    """A number as the file wrote it (text stays text: '1e300')."""
    if isinstance(value, float | int) and not isinstance(value, bool):
        return yaml_number(value)
    return repr(value)


def _bound_message(kind: str, error: Any, name: str) -> str:
    key, words = _BOUNDS[kind]
    bound = error.get("ctx", {}).get(key)
    if isinstance(bound, float) and bound.is_integer():
        bound = int(bound)
    text = f"{bound:,}" if isinstance(bound, int) else f"{bound:,g}"
    message = f"must be {words} {text}, got {_shown(error.get('input'))}"
    # The reason of a limit, not of a plain sign (peak_tokens_per_second > 0 needs none).
    if name in LIMIT_REASONS and (kind.startswith("less") or bound):
        message += f" ({LIMIT_REASONS[name]})"
    return message


def message(error: Any) -> str:
    loc: Loc = tuple(error["loc"])
    kind = error["type"]
    value = error.get("input")
    name = str(loc[-1]) if loc else ""
    if len(loc) > 1 and isinstance(loc[-1], int):
        name = str(loc[-2])  # an item of a list: the list's words (subnets[0] -> subnets)
    if kind == "finite_number":
        return f"must be a finite number, not {_shown(value)}"
    if kind in _BOUNDS:
        return _bound_message(kind, error, name)
    # A whole number too long for a float or a 64-bit integer (`10` and 400 zeros).
    too_large = kind == "float_type" and isinstance(value, int) and not isinstance(value, bool)
    if kind == "int_parsing_size" or too_large:
        reason = f" ({LIMIT_REASONS[name]})" if name in LIMIT_REASONS else ""
        return f"is far too large a number, got {_shown(value)}{reason}"
    if kind == "extra_forbidden":
        hint = did_you_mean(name, _fields_at(loc[:-1]))
        return f"unknown field{hint or ' (check its spelling; the schema lists every field)'}"
    if kind == "enum":
        field_type = _type_at(loc)
        choices = (
            [m.value for m in field_type]
            if isinstance(field_type, type) and issubclass(field_type, Enum)
            else []
        )
        listed = ", ".join(repr(choice) for choice in choices)
        return f"{value!r} is not one of {listed}{did_you_mean(value, choices)}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        fields = ", ".join(_fields_at(loc))
        return f"expected a mapping of fields ({fields}), got {_described(value)}"
    if kind == "list_type":
        return f"expected a list, got {_described(value)}"
    if kind == "string_type" and name == "account":
        return (
            f"an account id is quoted text, got {_described(value)}: unquoted, YAML reads it as "
            'a number and drops leading zeros (write account: "012345678901")'
        )
    if kind == "string_type":
        return f"expected text, got {_described(value)}"
    if kind == "missing":
        return "required field missing"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        expected = error.get("ctx", {}).get("expected_tags", "")
        given = error.get("ctx", {}).get("tag")
        what = f"unknown kind {given!r}" if given is not None else "kind missing"
        return f"{what}: one of {expected}"
    if kind == "string_pattern_mismatch":
        return f"{value!r} is not {_PATTERN_WORDS.get(name, 'in the expected format')}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "too_short":
        return f"must have at least {error.get('ctx', {}).get('min_length', 1)} item(s)"
    if kind.startswith("date_"):
        return f"{value!r} is not a date (YYYY-MM-DD)"
    message = str(error["msg"]).removeprefix("Value error, ")
    # pydantic's "Input should be a valid number": the file's value, not the library's input.
    return (
        "must be " + message.removeprefix("Input should be ")
        if message.startswith("Input should be ")
        else message
    )


# --- Rules the model alone cannot state: they need the catalog or several fields at once.
