"""Policy documents (IAM's JSON grammar, as identity, bucket and endpoint policies share it):
reading them, and whether a VPC endpoint's policy is narrower than full access."""

from __future__ import annotations

import json
from typing import Any

from planner.graph.resources import Resource, Unknown
from planner.verification.expectations import Expectations


def policy_document(value: Any) -> dict[str, Any] | None:
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None
    return None


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    statements = document.get("Statement") or []
    if isinstance(statements, dict):
        statements = [statements]
    return [s for s in statements if isinstance(s, dict)]


def as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value]
    return []


def endpoint_policy_problem(endpoint: Resource, expect: Expectations) -> str | None:
    """Why an endpoint's policy is broader than allowed, or None."""
    policy = endpoint.inputs.get("policy")
    if policy is None or policy == "":
        return "policy is missing: full access"
    if isinstance(policy, Unknown):
        return None  # known after apply: the rule's check reports it as an UNKNOWN
    document = policy_document(policy)
    if document is None:
        return "policy cannot be read"
    service = str(endpoint.inputs.get("serviceName", ""))
    for statement in statements(document):
        if statement.get("Effect") != "Allow":
            continue
        actions, resources = as_list(statement.get("Action")), as_list(statement.get("Resource"))
        if "*" in actions and "*" in resources and not statement.get("Condition"):
            return "policy grants full access"
        if service.endswith(".bedrock-runtime"):
            if any("*" in r for r in resources):
                return "policy names models by wildcard"
            if expect.bedrock_models:
                allowed = {m for m in expect.bedrock_models}
                stray = [r for r in resources if _profile_model(r) not in allowed]
                if stray:
                    return f"policy admits models not planned: {', '.join(stray)}"
        if service.endswith(".s3") and any(
            r in ("*", "arn:aws:s3:::*", "arn:aws:s3:::*/*") for r in resources
        ):
            return "policy admits every bucket"
    return None


def _profile_model(arn: str) -> str:
    """The Bedrock model an ARN names: a cross-region inference profile's id is the model's with
    the profile's geography in front (us., eu., apac., jp., global. ...)."""
    name = arn.rsplit("/", 1)[-1]
    parts = arn.split(":")
    profile = len(parts) > 5 and parts[5].startswith("inference-profile/")
    return name.partition(".")[2] if profile and "." in name else name
