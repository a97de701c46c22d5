"""Cloud API access, one component per provider: the key in Secrets Manager, and per workload an IAM
policy that reads that one secret (or, for a provider reached with an IAM role such as Bedrock,
invokes the planned models) and nothing else. What a provider takes is its catalog entry's
(planner/data/providers.yaml: auth, invoke)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from planner import names
from planner.catalog import InferenceProfile, Invoke, Provider
from planner.planfile import ProviderAccess
from stacks.addressing import WorkloadCost
from stacks.aws.identity import policy_json, secret_read_policy
from stacks.aws.kms import kms_key
from stacks.aws.lookups import Lookups
from stacks.settings import guarded


@dataclass
class ApiAccessArgs:
    access: ProviderAccess
    # Its catalog entry: how callers authenticate, the actions and ARNs that invoke a model.
    provider: Provider
    workloads: list[WorkloadCost]
    # Catalog model id -> the provider's own model id, for the model ARNs.
    provider_model_ids: dict[str, str]
    lookups: Lookups
    tags: dict[str, str]
    protect: bool
    # The key from `pulumi config set --secret <provider>_api_key`, if set.
    api_key: pulumi.Output[str] | None = None
    # Catalog model id -> its cross-region inference profile, where the provider serves it so only
    # (one foundation model may be planned through a geographic and a global profile).
    inference_profiles: dict[str, InferenceProfile] = field(default_factory=dict)


def model_arns(
    lookups: Lookups,
    invoke: Invoke,
    models: list[str],
    model_ids: Mapping[str, str],
    profiles: Mapping[str, InferenceProfile] | None = None,
) -> list[str]:
    """The planned models (catalog ids; model_ids gives the provider's) by ARN, in the
    provider's ARN forms (invoke), no wildcard: in this region, or, for a model served only
    through a cross-region inference profile, the profile and the model in every destination
    region (Amazon Bedrock User Guide, "Prerequisites for inference profiles": a policy for a
    profile allows the profile and the foundation model in each of its regions). A global
    profile may route to any commercial region, which IAM matches with the model's region-less
    ARN (invoke.any_region_model_arn; Bedrock User Guide, global cross-Region inference),
    beside the model in this region. load_catalog checks a profile's forms are given."""

    def arn(template: str | None, region: str, **ids: str) -> str:
        assert template is not None  # load_catalog: a provider with profiles gives its forms
        return template.format(
            partition=lookups.partition, region=region, account=lookups.account_id, **ids
        )

    region = lookups.region
    arns = set()
    for model in models:
        model_id = model_ids[model]
        profile = (profiles or {}).get(model)
        if profile is None:
            arns.add(arn(invoke.model_arn, region, model_id=model_id))
            continue
        arns.add(arn(invoke.profile_arn, region, profile_id=profile.id))
        if profile.scope == "global":
            arns.add(arn(invoke.model_arn, region, model_id=model_id))
            arns.add(arn(invoke.any_region_model_arn, region, model_id=model_id))
            continue
        arns.update(
            arn(invoke.model_arn, destination, model_id=model_id)
            for destination in profile.destination_regions
        )
    return sorted(arns)


class ApiAccess(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: ApiAccessArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(names.API_ACCESS, name, None, opts)
        access, lookups = args.access, args.lookups
        child = pulumi.ResourceOptions(parent=self)
        self.secret: aws.secretsmanager.Secret | None = None
        self.policies: dict[str, aws.iam.Policy] = {}
        fill_hint = None

        if access.secret_config_key is not None:
            key = kms_key(
                f"{name}-key",
                f"ai-infra-planner: {access.provider} API key",
                lookups,
                args.tags,
                args.protect,
                self,
                services=[],
            )
            self.secret = aws.secretsmanager.Secret(
                f"{name}-api-key",
                description=f"{access.provider} API key for {', '.join(access.workloads)}",
                kms_key_id=key.arn,
                recovery_window_in_days=30,
                tags=args.tags,
                opts=guarded(args.protect, self),
            )
            if args.api_key is not None:
                # The only resource that ever holds the key's value.
                aws.secretsmanager.SecretVersion(
                    f"{name}-api-key",
                    secret_id=self.secret.id,
                    secret_string=args.api_key,
                    opts=guarded(args.protect, self),
                )
            else:
                fill_hint = (
                    f"the secret is empty: run `pulumi config set --secret "
                    f"{access.secret_config_key}` and `pulumi up`"
                )
                pulumi.log.warn(f"{access.provider}: {fill_hint}", resource=self)
            for workload in args.workloads:
                self.policies[workload.name] = aws.iam.Policy(
                    f"{workload.name}-api-access",
                    description=f"{workload.name}: read the {access.provider} API key, only that",
                    policy=pulumi.Output.all(self.secret.arn, key.arn).apply(
                        lambda values: secret_read_policy(values[0], values[1], lookups)
                    ),
                    tags=workload.tags,
                    opts=child,
                )
        else:
            invoke = args.provider.invoke
            assert invoke is not None  # load_catalog: an iam_role provider gives its actions
            arns = model_arns(
                lookups, invoke, access.models, args.provider_model_ids, args.inference_profiles
            )
            for workload in args.workloads:
                self.policies[workload.name] = aws.iam.Policy(
                    f"{workload.name}-api-access",
                    description=f"{workload.name}: invoke the planned "
                    f"{args.provider.short_name} models, only those",
                    policy=policy_json(
                        [
                            {
                                "Sid": "InvokePlannedModels",
                                "Effect": "Allow",
                                "Action": list(invoke.actions),
                                "Resource": arns,
                            }
                        ]
                    ),
                    tags=workload.tags,
                    opts=child,
                )
        self.fill_hint = fill_hint
        self.monthly_cost_usd = pulumi.Output.from_input(
            round(sum(w.monthly_cost_usd for w in args.workloads), 2)
        )
        self.register_outputs(
            {
                "secret_arn": self.secret.arn if self.secret else None,
                "policy_arns": {name: policy.arn for name, policy in self.policies.items()},
                "monthly_cost_usd": self.monthly_cost_usd,
            }
        )
