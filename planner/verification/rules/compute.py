"""Compute rules: the instance metadata service (IMDSv2, one hop) and encrypted disks."""

from __future__ import annotations

from planner import names
from planner.graph.resources import Graph
from planner.verification.aws_network import Network
from planner.verification.aws_types import EBS_VOLUME, INSTANCE, KMS_KEY, LAUNCH_TEMPLATE
from planner.verification.expectations import Expectations
from planner.verification.registry import Finding, rule
from planner.verification.values import truthy


@rule(
    "imdsv2",
    "launch templates and instances require IMDSv2 tokens, hop limit 1",
    LAUNCH_TEMPLATE,
    INSTANCE,
)
def _imdsv2(graph: Graph, network: Network, expect: Expectations) -> list[Finding]:
    found = []
    for holder in graph.of_type(LAUNCH_TEMPLATE, INSTANCE):
        options = holder.inputs.get("metadataOptions") or {}
        if options.get("httpTokens") != "required":
            found.append(Finding("imdsv2", holder.label, "does not require IMDSv2 tokens"))
        hops = options.get("httpPutResponseHopLimit")
        # Two hops only where a container on the host needs it, and the resource says why.
        allowed = 2 if holder.tags().get(names.TAG_IMDS_HOP_LIMIT_REASON) else 1
        if isinstance(hops, int | float) and hops > allowed:
            found.append(
                Finding(
                    "imdsv2",
                    holder.label,
                    f"hop limit {hops:g}: one is enough, two only with the tag "
                    f"{names.TAG_IMDS_HOP_LIMIT_REASON} saying why",
                )
            )
    return found


@rule(
    "disks",
    "EBS volumes encrypted with a customer-managed KMS key",
    LAUNCH_TEMPLATE,
    EBS_VOLUME,
    INSTANCE,
)
def _disks(graph: Graph, network: Network, expect: Expectations) -> list[Finding]:
    found = []
    for template in graph.of_type(LAUNCH_TEMPLATE):
        for mapping in template.inputs.get("blockDeviceMappings") or []:
            ebs = (mapping or {}).get("ebs") or {}
            if not truthy(ebs.get("encrypted")) or not ebs.get("kmsKeyId"):
                found.append(
                    Finding(
                        "disks",
                        template.label,
                        f"volume {mapping.get('deviceName')} is not encrypted with a customer key",
                    )
                )
        if template.inputs.get("blockDeviceMappings") and not graph.refs(
            template, "blockDeviceMappings", KMS_KEY
        ):
            found.append(
                Finding("disks", template.label, "volumes' key is not a customer key of the stack")
            )
    for volume in graph.of_type(EBS_VOLUME):
        if not truthy(volume.inputs.get("encrypted")) or not graph.refs(
            volume, "kmsKeyId", KMS_KEY
        ):
            found.append(Finding("disks", volume.label, "not encrypted with a customer key"))
    for instance in graph.of_type(INSTANCE):
        root = instance.inputs.get("rootBlockDevice") or {}
        if not truthy(root.get("encrypted")) or not root.get("kmsKeyId"):
            found.append(
                Finding("disks", instance.label, "root volume not encrypted with a customer key")
            )
    return found
