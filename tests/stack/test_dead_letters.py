"""The dead-letter bucket: private, encrypted, TLS only, expiring, and emptied on destroy unless data is retained."""

from __future__ import annotations

from aws_cdk.assertions import Match

from stacks.settings import Settings

from .helpers import dead_letter_bucket


def test_bucket_is_encrypted_private_and_expires_dead_letters(template):
    template.has_resource_properties("AWS::S3::Bucket", {
        "BucketEncryption": {"ServerSideEncryptionConfiguration": [
            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
        ]},
        "PublicAccessBlockConfiguration": {
            "BlockPublicAcls": True, "BlockPublicPolicy": True,
            "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
        },
        "LifecycleConfiguration": {"Rules": [Match.object_like({
            "Status": "Enabled",
            "ExpirationInDays": Settings().dead_letter_expiration_days,
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
        })]},
        "BucketName": Match.absent(),
    })


def test_bucket_policy_denies_requests_without_tls(template):
    template.has_resource_properties("AWS::S3::BucketPolicy", {
        "PolicyDocument": {"Statement": Match.array_with([Match.object_like({
            "Effect": "Deny",
            "Action": "s3:*",
            "Principal": {"AWS": "*"},
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        })])},
    })


def test_by_default_destroy_deletes_the_bucket_and_its_objects(resources, template):
    bucket_id, bucket = dead_letter_bucket(resources)
    assert bucket["DeletionPolicy"] == "Delete"
    template.has_resource_properties("Custom::S3AutoDeleteObjects", {"BucketName": {"Ref": bucket_id}})
