"""CrossGuard policy pack: `pulumi preview --policy-pack policy` (from the project directory).

One mandatory stack validation policy runs the same checks as `planner verify`."""

import sys
from pathlib import Path

# The pack runs from this directory with the project's virtualenv; the checks live in the repo.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

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
                }
            ),
        )
    ],
)
