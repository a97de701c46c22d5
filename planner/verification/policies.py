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


def policy_unknown(endpoint: Resource) -> bool:
    """The endpoint's policy is known only after `pulumi up` (a real preview of a new stack):
    nothing that rests on it is proven."""
    return isinstance(endpoint.inputs.get("policy"), Unknown)


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
        link = expect.link_of(service)
        if link is not None:
            if any("*" in r for r in resources):
                return "policy names models by wildcard"
            if expect.provider_models:
                allowed = set(expect.provider_models)
                invoke = expect.links[link].invoke
                profile = invoke.profile_resource() if invoke else None
                stray = [r for r in resources if _profile_model(r, profile) not in allowed]
                if stray:
                    return f"policy admits models not planned: {', '.join(stray)}"
        if service.endswith(".s3") and any(
            r in ("*", "arn:aws:s3:::*", "arn:aws:s3:::*/*") for r in resources
        ):
            return "policy admits every bucket"
    return None


def _profile_model(arn: str, profile_resource: str | None) -> str:
    """The model an ARN names: a cross-region inference profile's (its ARN's resource part
    starts with the provider's profile_resource, Bedrock's `inference-profile/`) id is the
    model's with the profile's geography in front (us., eu., apac., jp., global. ...; the
    catalog's profiles are checked to be so when it loads)."""
    name = arn.rsplit("/", 1)[-1]
    parts = arn.split(":")
    profile = (
        profile_resource is not None and len(parts) > 5 and parts[5].startswith(profile_resource)
    )
    return name.partition(".")[2] if profile and "." in name else name
