"""CrossGuard policy pack: `pulumi preview --policy-pack policy` (from the project directory).

One mandatory stack validation policy runs the same checks as `planner verify`.

Pulumi's Python policy runtime runs this file from the pack's directory (runpy.run_path), with
the interpreter of the virtualenv PulumiPolicy.yaml names: the project's own, where `make`
installs the project (pyproject.toml packages planner, stacks and policy). So the checks are
imported as the installed package `policy`, like the planner they call, with no path of the
repository's spelled out here."""

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyPack,
    StackValidationPolicy,
)

from policy.checks import stack_validation

PolicyPack(
    name="ai-infra-planner",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[
        StackValidationPolicy(
            name="perimeter-and-security-rules",
            description="No way out of a sensitive workload's network but the allowed ones, and "
            "every rule of security-rules.md (`planner verify`).",
            validate=stack_validation,
            config_schema=PolicyConfigSchema(
                properties={
                    "allow_unprotected": {"type": "boolean"},
                    "plan": {"type": "string"},
                    "clusters": {"type": "object"},
                }
            ),
        )
    ],
)
