"""A pool's weights bucket: versioned, encrypted with the pool's key, never public, its objects
read and written only through the pool's S3 gateway endpoint (and by the one principal allowed to
upload the weights from outside). The Ray heads' leases of multi-node replicas live in it too."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from stacks.aws.identity import policy_json
from stacks.aws.lookups import Lookups
from stacks.boot import lifecycle_figures
from stacks.settings import guarded

# The leases' keys, ray/<pool>/replica-<n>/head, in the pool's weights bucket.
LEASE_ROOT = "ray/"
# The object-level actions a bucket policy keeps to the VPC endpoint: reading, writing and
# deleting weights (Service Authorization Reference, Amazon S3, actions on the `object`
# resource type, and ListBucket, which lists them). Bucket configuration (policy, tags,
# encryption, versioning) stays reachable for the deployer: denying s3:* there would lock
# Pulumi out of the bucket after the first `up`.
OBJECT_ACTIONS = (
    "s3:AbortMultipartUpload",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:GetObject",
    "s3:GetObjectAttributes",
    "s3:GetObjectVersion",
    "s3:GetObjectVersionAttributes",
    "s3:ListBucket",
    "s3:ListBucketVersions",
    "s3:ListMultipartUploadParts",
    "s3:PutObject",
    "s3:RestoreObject",
)


@dataclass(frozen=True)
class WeightsBucket:
    bucket: aws.s3.Bucket
    # What the bucket policy waits for (keep_to_endpoint).
    public_access: aws.s3.BucketPublicAccessBlock


def weights_bucket(
    name: str,
    key_arn: pulumi.Input[str],
    tags: dict[str, str],
    protect: bool,
    parent: pulumi.Resource,
) -> WeightsBucket:
    """The bucket and its configuration: versioning, lifecycle, encryption, no public access."""
    child = pulumi.ResourceOptions(parent=parent)
    bucket = aws.s3.Bucket(f"{name}-weights", tags=tags, opts=guarded(protect, parent))
    versioning = aws.s3.BucketVersioning(
        f"{name}-weights",
        bucket=bucket.id,
        versioning_configuration={"status": "Enabled"},
        opts=child,
    )
    # Versioning keeps every version a write replaces: the Ray heads' leases, rewritten every
    # LEASE_RENEW_S seconds per replica (stacks/aws/nodes.py), would pile up forever. One
    # lifecycle configuration per bucket (pulumi-aws BucketLifecycleConfiguration: a second one
    # fights the first), after the versioning it acts on (as pulumi-aws's versioned-bucket
    # example does).
    lifecycle = lifecycle_figures()
    aws.s3.BucketLifecycleConfiguration(
        f"{name}-weights",
        bucket=bucket.id,
        rules=[
            {
                "id": "expire-replaced-leases",
                "status": "Enabled",
                "filter": {"prefix": LEASE_ROOT},
                "noncurrent_version_expiration": {
                    "noncurrent_days": lifecycle.lease_noncurrent_days
                },
            },
            {
                # An interrupted upload of a checkpoint leaves parts billed as storage.
                # An empty filter: the whole bucket (pulumi-aws docs, "Specifying an empty
                # filter").
                "id": "abort-incomplete-uploads",
                "status": "Enabled",
                "filter": {},
                "abort_incomplete_multipart_upload": {
                    "days_after_initiation": lifecycle.abort_multipart_days
                },
            },
        ],
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[versioning]),
    )
    aws.s3.BucketServerSideEncryptionConfiguration(
        f"{name}-weights",
        bucket=bucket.id,
        rules=[
            {
                "apply_server_side_encryption_by_default": {
                    "sse_algorithm": "aws:kms",
                    "kms_master_key_id": key_arn,
                },
                "bucket_key_enabled": True,
            }
        ],
        opts=child,
    )
    public_access = aws.s3.BucketPublicAccessBlock(
        f"{name}-weights",
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=child,
    )
    return WeightsBucket(bucket, public_access)


def gateway_endpoint_policy(bucket: aws.s3.Bucket, lookups: Lookups) -> pulumi.Output[str]:
    """The S3 gateway endpoint reaches the weights bucket and ECR's layer bucket, nothing else."""
    layer_bucket = f"arn:{lookups.partition}:s3:::prod-{lookups.region}-starport-layer-bucket/*"
    return bucket.arn.apply(
        lambda arn: policy_json(
            [
                {
                    "Sid": "WeightsBucketOnly",
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": ["s3:GetObject", "s3:ListBucket", "s3:PutObject"],
                    "Resource": [arn, f"{arn}/*"],
                },
                {
                    "Sid": "EcrImageLayers",
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:GetObject",
                    "Resource": layer_bucket,
                },
            ]
        )
    )


def keep_to_endpoint(
    name: str,
    weights: WeightsBucket,
    endpoint: aws.ec2.VpcEndpoint,
    uploader_arn: str | None,
    parent: pulumi.Resource,
) -> aws.s3.BucketPolicy:
    """The bucket's policy (bucket_policy): its objects through the endpoint only."""
    return aws.s3.BucketPolicy(
        f"{name}-weights",
        bucket=weights.bucket.id,
        policy=pulumi.Output.all(weights.bucket.arn, endpoint.id).apply(
            lambda values: bucket_policy(values[0], values[1], uploader_arn)
        ),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[weights.public_access]),
    )


def bucket_policy(bucket_arn: str, endpoint_id: str, uploader_arn: str | None) -> str:
    """Deny plain HTTP, and deny reading, writing and deleting objects not through the pool's
    VPC endpoint (but for the one principal allowed to upload weights, when the stack names
    one). The deployer keeps managing the bucket itself from outside the VPC."""
    not_through_endpoint: dict[str, dict[str, str]] = {
        "StringNotEquals": {"aws:SourceVpce": endpoint_id}
    }
    if uploader_arn:
        not_through_endpoint["ArnNotEquals"] = {"aws:PrincipalArn": uploader_arn}
    resources = [bucket_arn, f"{bucket_arn}/*"]
    return policy_json(
        [
            {
                "Sid": "DenyPlainHttp",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": resources,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
            {
                "Sid": "DenyObjectsOutsideTheVpcEndpoint",
                "Effect": "Deny",
                "Principal": "*",
                "Action": list(OBJECT_ACTIONS),
                "Resource": resources,
                "Condition": not_through_endpoint,
            },
        ]
    )
