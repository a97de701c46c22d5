"""`planner schema [--plan]`: the JSON Schema of the workloads file, or of plan.json."""

from __future__ import annotations

import argparse
import json

from planner.inputs.workloads import WorkloadsFile


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    schema = commands.add_parser("schema", help="print the workloads file's JSON Schema")
    schema.add_argument(
        "--plan", action="store_true", help="plan.json's JSON Schema instead (its schema_version)"
    )
    schema.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print(plan_schema_text() if args.plan else schema_text(), end="")
    return 0


def plan_schema_text() -> str:
    """plan.json's JSON Schema (schema/plan.schema.json): what `planner plan` writes, for
    scripts and reviewers that read plans (its schema_version is fixed to this planner's)."""
    from planner.planfile import SCHEMA_VERSION, Plan

    schema = Plan.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"ai-infra-planner plan.json, schema version {SCHEMA_VERSION}"
    schema["properties"]["schema_version"]["const"] = SCHEMA_VERSION
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def schema_text() -> str:
    schema = WorkloadsFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "ai-infra-planner workloads file"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
