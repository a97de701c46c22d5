"""`planner preview`'s two outputs over the offline preview (planner.graph.preview): the shape of
`pulumi preview --json` with the resources' costs, and the text listing with its cost breakdown."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pulumi
from pulumi.runtime import rpc

from planner import names
from planner.fmt import usd, usd_cents, usd_signed
from planner.graph.preview import SECRET, Preview
from planner.outputs import versioned

UNKNOWN = rpc.UNKNOWN  # how `pulumi preview --json` writes a value known only after apply
LABEL = "OFFLINE PREVIEW: the real program run under Pulumi's mocks; not `pulumi preview`"


def _value(value: Any) -> Any:
    """An input as `pulumi preview --json` shows it: secrets masked, unknowns as the sentinel."""
    if rpc.is_rpc_secret(value):
        return SECRET
    if isinstance(value, pulumi.output.Unknown):
        return UNKNOWN
    if isinstance(value, dict):
        return {key: _value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_value(item) for item in value]
    return value


def render_json(preview: Preview) -> str:
    """The shape of `pulumi preview --json`: steps, each with op and newState."""
    stack_urn = preview.run.stack_urn
    steps: list[dict[str, Any]] = [
        {
            "op": "create",
            "urn": stack_urn,
            "newState": {
                "type": "pulumi:pulumi:Stack",
                "urn": stack_urn,
                "custom": False,
                "parent": "",
                "inputs": {},
                "propertyDependencies": {},
            },
        }
    ]
    for _, resource in preview.ordered():
        steps.append(
            {
                "op": "create",
                "urn": resource.urn,
                "newState": {
                    "type": resource.type,
                    "urn": resource.urn,
                    "custom": resource.custom,
                    "parent": resource.parent,
                    "protect": resource.protect,
                    "retainOnDelete": resource.retain_on_delete,
                    "inputs": _value(resource.inputs),
                    "propertyDependencies": resource.dependencies,
                },
            }
        )
    document = {
        "offline": LABEL,
        "config": preview.config,
        "steps": steps,
        "changeSummary": {"create": len(steps)},
        "costs": {
            "resources": [
                {
                    "urn": c.urn,
                    "monthlyUsd": c.monthly_usd,
                    "quantity": c.quantity,
                    "usage": c.usage,
                    "source": c.source,
                }
                for c in preview.costs
            ],
            "resourcesMonthlyUsd": preview.total_usd,
            "poolResourcesMonthlyUsd": preview.pools_usd,
            # Only where the plan has cluster pools: their nodes, among the pools' resources.
            **(
                {"siteNodesMonthlyUsd": preview.site_nodes_usd}
                if any(p.site in {s.name for s in preview.plan.sites} for p in preview.plan.pools)
                else {}
            ),
            "sharedAccessMonthlyUsd": preview.shared_access_usd,
            "connectionsMonthlyUsd": preview.connections_usd,
            "staffMonthlyUsd": preview.plan.totals.staff_usd,
            "apiTokensMonthlyUsd": preview.plan.totals.api_tokens_usd,
            "totalMonthlyUsd": preview.grand_total_usd,
            "planTotalMonthlyUsd": preview.plan.totals.monthly_cost_usd,
        },
    }
    return json.dumps(versioned("preview", document), indent=2, sort_keys=True) + "\n"


def render_text(preview: Preview) -> str:
    run = preview.run
    lines = [
        LABEL,
        f"Stack {names.PROJECT}-{preview.stack}: {len(run.resources) + 1} to create",
        "",
    ]
    lines.append(f"+ pulumi:pulumi:Stack  {names.PROJECT}-{preview.stack}")
    for depth, resource in preview.ordered():
        lines.append(f"{'    ' * depth}+ {resource.type}  {resource.name}")
    lines += ["", "Resources by type:"]
    for token, count in sorted(Counter(r.type for r in run.resources).items()):
        lines.append(f"  {count:>4}  {token}")
    lines += ["", "Monthly cost of the resources (list prices; usage charges listed, not added):"]
    width = max((len(c.name) for c in preview.costs), default=10)
    for cost in sorted(preview.costs, key=lambda c: (-c.monthly_usd, c.name)):
        usage = f"  + usage: {cost.usage}" if cost.usage else ""
        lines.append(
            f"  {cost.name:<{width}}  {usd_cents(cost.monthly_usd):>12} USD  {cost.quantity}{usage}"
        )
    totals = preview.plan.totals
    width = max(width, 30)

    def row(label: str, amount: float, note: str = "") -> str:
        return f"  {label:<{width}}  {usd_cents(amount):>12} USD{note}"

    # A kind the plan has none of gets no line ("staff 0.00 USD (0 pool(s))" is noise).
    pools, apis = bool(preview.plan.pools), bool(preview.plan.providers)
    on_sites = any(p.site in {s.name for s in preview.plan.sites} for p in preview.plan.pools)
    lines += [
        *([row("self-hosted pools' resources", preview.pools_usd, "  (nodes, network pieces)")]
          if pools else []),
        *([row("  of which cluster sites' nodes", preview.site_nodes_usd,
               "  (bought hardware at the sites' node-month, no AWS bill)")]
          if on_sites else []),
        *([row("shared access' resources", preview.shared_access_usd, "  (API boundaries, keys)")]
          if apis else []),
        *([row("consumer connections' resources", preview.connections_usd,
               f"  ({len(preview.plan.connections)} in consumer VPCs)")]
          if preview.connections_usd or preview.plan.connections else []),
        row("resources total", preview.total_usd),
        *([row("staff (plan)", totals.staff_usd, f"  ({len(preview.plan.pools)} pool(s))")]
          if pools else []),
        *([row("API tokens (plan)", totals.api_tokens_usd)] if apis else []),
        row("total", preview.grand_total_usd, "  a month"),
    ]  # fmt: skip
    if preview.agrees and on_sites:
        # The stack's AWS budget leaves the cluster pools out (they have no AWS bill).
        lines.append("  (the plan's total to the cent; the stack's budget is its AWS share)")
    elif preview.agrees:
        lines.append("  (the plan's total to the cent, and the stack's budget)")
    else:
        lines.append(
            f"  the plan's total is {usd(totals.monthly_cost_usd)}: the stack's resources "
            f"differ from what the plan priced by "
            f"{usd_signed(preview.grand_total_usd - totals.monthly_cost_usd)}"
        )
    lines += [
        "",
        f"{preview.free_resources} resources cost "
        "nothing by themselves (IAM, security groups, routes, subnets, ...).",
        LABEL,
    ]
    return "\n".join(lines) + "\n"
