"""Secrets rules: API keys only in Secrets Manager under a customer key, never in plain text
(any input, user data decoded, stack outputs, the plan file and the program's log, searched for
the providers' key formats); KMS keys rotate."""

from __future__ import annotations

import base64
import binascii
import gzip
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from planner.catalog import DATA_DIR
from planner.graph.resources import Graph, Secret, Unknown
from planner.verification.aws_network import Network
from planner.verification.aws_types import KMS_KEY, SECRET_TYPE, SECRET_VERSION
from planner.verification.expectations import Expectations
from planner.verification.registry import Finding, rule
from planner.verification.values import article


@dataclass(frozen=True)
class KeyFormat:
    """A provider's credential shape (planner/data/verify/key_formats.yaml)."""

    name: str
    pattern: re.Pattern[str]
    prefix: re.Pattern[str] | None  # the fixed start, shown before the ellipsis; None: show all


def _key_formats() -> list[KeyFormat]:
    data = yaml.safe_load((DATA_DIR / "verify" / "key_formats.yaml").read_text(encoding="utf-8"))
    formats = []
    for entry in data["formats"]:
        pattern = entry["pattern"]
        if entry.get("whole_token", True):
            # Not part of a longer identifier: keys are made of letters, digits, `_` and `-`.
            pattern = rf"(?<![A-Za-z0-9_-])(?:{pattern})(?![A-Za-z0-9_-])"
        prefix = None if entry.get("shown") == "all" else re.compile(entry["prefix"])
        formats.append(KeyFormat(entry["name"], re.compile(pattern), prefix))
    return formats


KEY_FORMATS = _key_formats()


def _strings_in(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _strings_in(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings_in(item, f"{path}[{index}]")
    elif isinstance(value, str):
        yield path, value
        if path.endswith("userData"):
            decoded = user_data_text(value)
            if decoded:
                yield f"{path} (decoded)", decoded


GZIP_MAGIC = b"\x1f\x8b"  # the first two bytes of gzip data (RFC 1952)


def user_data_text(value: str) -> str:
    """User data as the instance reads it: base64 (as a launch template holds it), gzip
    compressed or not (cloud-init uncompresses gzip content before it reads it: cloud-init
    docs, "User-data formats", gzip compressed content); "" when it is neither."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return ""
    if raw[:2] == GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError):
            return ""
    return raw.decode("utf-8", "replace")


def _mask(key: str, prefix: re.Pattern[str] | None) -> str:
    """What a report may show of a key: its fixed prefix and last four characters."""
    if prefix is None:
        return key
    start = prefix.match(key)
    return f"{start[0] if start else ''}…{key[-4:]} ({len(key)} chars)"


def keys_in(text: str) -> list[str]:
    """Each credential in the text, as a report shows it (masked), in order of appearance."""
    found: list[tuple[int, str]] = []
    for key in KEY_FORMATS:
        for match in key.pattern.finditer(text):
            found.append((match.start(), f"{article(key.name)}, {_mask(match[0], key.prefix)}"))
    return list(dict.fromkeys(text for _, text in sorted(found)))


@rule(
    "secrets",
    "API keys only in Secrets Manager under a customer key; never in plain text",
)
def _secrets(graph: Graph, network: Network, expect: Expectations) -> list[Finding]:
    found = []
    for secret in graph.of_type(SECRET_TYPE):
        if not graph.refs(secret, "kmsKeyId", KMS_KEY):
            found.append(Finding("secrets", secret.label, "not encrypted with a customer key"))
    for version in graph.of_type(SECRET_VERSION):
        for key in ("secretString", "secretBinary"):
            value = version.inputs.get(key)
            if value is not None and not isinstance(value, Secret | Unknown):
                found.append(
                    Finding(
                        "secrets",
                        version.label,
                        f"{key} is not marked secret: it is stored and shown in plain text",
                    )
                )
    for resource in graph.resources.values():
        for path, text in _strings_in(resource.inputs):
            if resource.type == SECRET_VERSION and path.startswith("secret"):
                continue
            found.extend(
                Finding("secrets", resource.label, f"{path} holds {key}, in plain text")
                for key in keys_in(text)
            )
    return found


def plaintext_outputs(outputs: dict[str, Any]) -> list[Finding]:
    return [
        Finding("secrets", f"stack output {path}", f"holds {key}, in plain text")
        for path, text in _strings_in(outputs)
        for key in keys_in(text)
    ]


@rule(
    "key-rotation",
    "KMS keys rotate",
    KMS_KEY,
)
def _key_rotation(graph: Graph, network: Network, expect: Expectations) -> list[Finding]:
    return [
        Finding("key-rotation", key.label, "rotation is off")
        for key in graph.of_type(KMS_KEY)
        if key.inputs.get("enableKeyRotation") is not True
    ]
