"""The one way this stack makes a bucket: private, SSE-S3, TLS only, owner-enforced, with a lifecycle."""

from __future__ import annotations

from typing import Any

from aws_cdk import RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct


def private_bucket(scope: Construct, construct_id: str, *, lifecycle_rules: list[s3.LifecycleRule],
                   retain_on_destroy: bool, **extra: Any) -> s3.Bucket:
    """A bucket nobody outside this account can reach; emptied and deleted on destroy unless data is retained."""
    return s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        lifecycle_rules=lifecycle_rules,
        removal_policy=RemovalPolicy.RETAIN if retain_on_destroy else RemovalPolicy.DESTROY,
        # Emptying the bucket on destroy is only wanted when its contents are not being kept.
        auto_delete_objects=not retain_on_destroy,
        **extra,
    )
