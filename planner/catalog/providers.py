"""The catalog's cloud API providers (providers.yaml): how callers reach and authenticate to each,
and, for a provider reached through PrivateLink, its interface endpoint's service and what
invoking a model takes (IAM actions, ARN forms). The stack and `planner verify` read these; no
code names a provider."""

from __future__ import annotations

import re
import string
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from planner.catalog.base import _Data
from planner.catalog.vocabulary import DataClass


class ProviderAuth(_Data):
    """How a provider's callers authenticate: `api_key`, a key the stack keeps in Secrets
    Manager; `iam_role`, the caller's IAM role (no secret; the stack grants the provider's
    invoke actions on the planned models)."""

    kind: Literal["api_key", "iam_role"]
    source: str
    date: str


class PrivateLinkEndpoint(_Data):
    """A PrivateLink provider's interface endpoint: the AWS service it connects to
    (com.amazonaws.{region}.<service>), whose private DNS name <service>.{region}.<DNS suffix>
    callers call, and how reports name it."""

    service: str
    label: str
    source: str
    date: str

    @field_validator("service")
    @classmethod
    def _service_name(cls, value: str) -> str:
        # The last part of an AWS service name (com.amazonaws.{region}.<service>): the stack's
        # resource names and the verifier's match are built from it.
        if not re.fullmatch(r"[a-z0-9][a-z0-9.-]*[a-z0-9]", value):
            raise ValueError(
                f"{value!r} is not an endpoint service's name (e.g. bedrock-runtime, the end of "
                "com.amazonaws.{region}.bedrock-runtime)"
            )
        return value


ARN_FIELDS = ("partition", "region", "account", "model_id", "profile_id")


class Invoke(_Data):
    """What invoking a model of an `iam_role` provider takes: the IAM actions, and the ARN forms
    (templates over ARN_FIELDS) of a model in one region, of a cross-region inference profile, and
    of a model in any region (what a `global` inference profile routes to)."""

    actions: list[str]
    model_arn: str
    profile_arn: str | None = None
    any_region_model_arn: str | None = None
    source: str
    date: str

    @field_validator("actions")
    @classmethod
    def _iam_actions(cls, actions: list[str]) -> list[str]:
        for action in actions:
            service, sep, name = action.partition(":")
            if not sep or not service or not name or "*" in action or "?" in action:
                raise ValueError(f"{action!r} is not one IAM action (service:Action, no wildcard)")
        if not actions:
            raise ValueError("names no action")
        return actions

    @field_validator("model_arn", "profile_arn", "any_region_model_arn")
    @classmethod
    def _arn_template(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        try:  # what str.format reads, as the stack fills it: a stray brace is refused here
            fields = [f for _, f, _, _ in string.Formatter().parse(value) if f is not None]
        except ValueError as exc:
            raise ValueError(f"{value!r} is not an ARN template: {exc}") from None
        unknown = sorted(set(fields) - set(ARN_FIELDS))
        if not value.startswith("arn:{partition}:") or unknown:
            raise ValueError(
                f"{value!r} is not an ARN template: it starts arn:{{partition}}: and names only "
                f"{', '.join('{' + f + '}' for f in ARN_FIELDS)}"
                + (f" (unknown: {', '.join(unknown)})" if unknown else "")
            )
        # The policy grants the planned models by ARN, never by wildcard: each form names its
        # model (or profile), and nothing else may match more than one resource.
        needed = "profile_id" if info.field_name == "profile_arn" else "model_id"
        if needed not in fields:
            raise ValueError(f"{value!r} does not name {{{needed}}}: it would grant every one")
        if "*" in value or "?" in value:
            raise ValueError(f"{value!r} has a wildcard: the policy names the planned models only")
        return value

    def profile_resource(self) -> str | None:
        """The resource part of a profile ARN before the profile's id (`inference-profile/`)."""
        if self.profile_arn is None:
            return None
        return self.profile_arn.split(":", 5)[-1].split("{profile_id}")[0]


class FirstCallNote(_Data):
    """A one-time step before the provider's models whose provider_model_id starts with
    model_prefix are first invoked (plan.md says it before the first call)."""

    model_prefix: str
    note: str
    source: str
    date: str


class Provider(_Data):
    name: str
    # How plans, stacks and reports name the provider in a sentence.
    short_name: str
    hosts: list[str]
    private_link: bool
    max_data: DataClass
    auth: ProviderAuth
    # private_link: its interface endpoint.
    endpoint: PrivateLinkEndpoint | None = None
    # iam_role: the actions and ARNs that invoke its models.
    invoke: Invoke | None = None
    before_first_call: list[FirstCallNote] = Field(default_factory=list)

    @model_validator(mode="after")
    def _capabilities(self) -> Provider:
        """The pieces the stack builds from each capability are given, and only the combinations
        the stack builds: a PrivateLink endpoint whose policy names models by ARN needs callers
        with an IAM role; an IAM-role provider is reached only through its endpoint."""
        if self.private_link and self.endpoint is None:
            raise ValueError("private_link: true needs `endpoint` (its interface endpoint service)")
        if not self.private_link and self.endpoint is not None:
            raise ValueError("`endpoint` is given but private_link is false")
        if self.auth.kind == "iam_role" and self.invoke is None:
            raise ValueError("auth iam_role needs `invoke` (the IAM actions and model ARN forms)")
        if self.auth.kind == "api_key" and self.invoke is not None:
            raise ValueError("`invoke` is given but callers authenticate with an API key")
        if self.auth.kind == "iam_role" and not self.private_link:
            raise ValueError(
                "auth iam_role needs private_link: true (the stack reaches an IAM-role provider "
                "only through its interface endpoint)"
            )
        if self.private_link and self.auth.kind != "iam_role":
            raise ValueError(
                "private_link: true needs auth iam_role (the endpoint's policy admits the planned "
                "models by ARN, which only IAM-authorized calls are checked against)"
            )
        return self

    @property
    def needs_api_key(self) -> bool:
        return self.auth.kind == "api_key"
