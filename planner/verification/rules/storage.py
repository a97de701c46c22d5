"""Storage rules: S3 buckets (public access, encryption, versioning, and a policy that keeps
TLS and object access to the VPC endpoint)."""

from __future__ import annotations

import json
import re
from typing import Any

from planner.graph.resources import Graph, Resource, Unknown
from planner.verification.aws_network import Network
from planner.verification.aws_types import BUCKET_TYPES, KMS_KEY
from planner.verification.expectations import Expectations
from planner.verification.policies import policy_document, statements
from planner.verification.registry import Finding, rule


def _for_bucket(graph: Graph, kind: str, bucket: Resource) -> list[Resource]:
    return [r for r in graph.users(bucket, kind) if graph.ref(r, "bucket") is bucket]


@rule(
    "buckets",
    "public access blocked, SSE-KMS with a customer key, versioning, TLS and "
    "bucket policy keeping object reads, writes and deletes to the VPC endpoint",
    *BUCKET_TYPES,
)
def _buckets(graph: Graph, network: Network, expect: Expectations) -> list[Finding]:
    found = []
    for bucket in graph.of_type(*BUCKET_TYPES):
        label = bucket.label
        blocks = _for_bucket(
            graph, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", bucket
        )
        settings = (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        )
        if not any(all(b.inputs.get(s) is True for s in settings) for b in blocks):
            found.append(
                Finding("buckets", label, "public access not blocked on all four settings")
            )
        encryption = _for_bucket(
            graph,
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            bucket,
        )
        if not any(
            (
                (rule.get("applyServerSideEncryptionByDefault") or {}).get("sseAlgorithm")
                == "aws:kms"
                and graph.refs(e, "rules", KMS_KEY)
            )
            for e in encryption
            for rule in e.inputs.get("rules") or []
        ):
            found.append(
                Finding("buckets", label, "not encrypted with SSE-KMS under a customer key")
            )
        versioning = _for_bucket(graph, "aws:s3/bucketVersioning:BucketVersioning", bucket)
        if not any(
            (v.inputs.get("versioningConfiguration") or {}).get("status") == "Enabled"
            for v in versioning
        ):
            found.append(Finding("buckets", label, "versioning is not enabled"))
        policies = _for_bucket(graph, "aws:s3/bucketPolicy:BucketPolicy", bucket)
        texts = [p.inputs.get("policy") for p in policies]
        if any(isinstance(t, Unknown) for t in texts):
            found.append(
                Finding.unknown(
                    "buckets", label, "the bucket policy is known only after `pulumi up`"
                )
            )
            continue
        found_statements = [s for t in texts if (d := policy_document(t)) for s in statements(d)]
        denies = [s for s in found_statements if s.get("Effect") == "Deny"]
        if not any("aws:SecureTransport" in json.dumps(s.get("Condition")) for s in denies):
            found.append(Finding("buckets", label, "the bucket policy does not deny plain HTTP"))
        outside = [s for s in denies if "aws:SourceVpce" in json.dumps(s.get("Condition"))]
        if not outside:
            found.append(
                Finding(
                    "buckets",
                    label,
                    "the bucket policy does not deny access outside the VPC endpoint",
                )
            )
        else:
            # Object data (the weights) is what stays inside; bucket configuration may be
            # managed from outside (the deployer), so s3:* is not demanded.
            missing = [
                action
                for action in ENDPOINT_ONLY_ACTIONS
                if not any(_action_covered(action, s.get("Action")) for s in outside)
            ]
            if missing:
                found.append(
                    Finding(
                        "buckets",
                        label,
                        "the bucket policy does not deny "
                        + ", ".join(missing)
                        + " outside the VPC endpoint",
                    )
                )
    return found


# What a bucket policy must deny outside the VPC endpoint: reading, writing, deleting objects.
ENDPOINT_ONLY_ACTIONS = ("s3:GetObject", "s3:PutObject", "s3:DeleteObject")


def _action_covered(action: str, listed: Any) -> bool:
    """Whether a statement's Action (a string or a list, with IAM's `*` and `?` wildcards,
    case-insensitive) includes the action."""
    patterns = [listed] if isinstance(listed, str) else list(listed or [])
    for pattern in patterns:
        regex = re.escape(str(pattern).lower()).replace(r"\*", ".*").replace(r"\?", ".")
        if re.fullmatch(regex, action.lower()):
            return True
    return False
