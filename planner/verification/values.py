"""How the verifier reads a resource's input values, which the sources give loosely (a string or
a list of them; a boolean or its text), and the article its messages put before a noun."""

from __future__ import annotations

from typing import Any


def items(value: Any) -> list[Any]:
    """A field's values: a list's items, a scalar alone (an Unknown too), none for None."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def strings(value: Any) -> list[str]:
    """A string or a list's strings (anything else: none)."""
    return [v for v in items(value) if isinstance(v, str)]


def truthy(value: Any) -> bool:
    """True, or the text "true" in any case."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def article(noun: str) -> str:
    """The noun with "a" or "an" before it."""
    return ("an " if noun[0] in "aeiouAEIOU" else "a ") + noun
