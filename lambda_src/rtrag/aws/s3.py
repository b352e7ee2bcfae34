"""The dead-letter bucket: the indexer writes dead letters into it, redrive lists, reads and marks them (the same
interface as local mode's dead-letter directory, ``rtrag.local.deadletters``)."""

from __future__ import annotations

import json
from typing import Any

from rtrag.aws.errors import AWS_ERRORS, classify, error_code
from rtrag.core import contract
from rtrag.core.deadletters import DeadLetter
from rtrag.core.errors import ResourceMissing, UserError


class S3DeadLetters:
    """Dead letters as JSON objects in the dead-letter bucket."""

    def __init__(self, client: Any, *, bucket: str):
        self.client = client
        self.bucket = bucket

    def write(self, letter: DeadLetter) -> str:
        return self.write_object(letter.key, letter.to_json())

    def write_object(self, key: str, body: dict[str, Any]) -> str:
        """Store ``body`` as JSON under ``key`` (as ``LocalDeadLetters.write_object`` does); returns the key."""
        payload = json.dumps(body, ensure_ascii=False, indent=1).encode("utf-8")
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=payload, ContentType="application/json")
        except AWS_ERRORS as exc:
            raise classify(exc, action=f"S3 PutObject into dead-letter bucket {self.bucket}") from exc
        return key

    def list(self, prefix: str = "") -> list[str]:
        keys: list[str] = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                keys.extend(item["Key"] for item in page.get("Contents", []))
        except AWS_ERRORS as exc:
            if error_code(exc) == "NoSuchBucket":
                raise ResourceMissing(f"dead-letter bucket {self.bucket} does not exist",
                                      resource=contract.DEAD_LETTER_BUCKET) from None
            raise classify(exc, action=f"S3 ListObjectsV2 on dead-letter bucket {self.bucket}") from exc
        return sorted(keys)

    def read(self, key: str) -> dict[str, Any]:
        letter = self.find(key)
        if letter is None:
            raise UserError(f"no dead letter {key} in s3://{self.bucket}: see `redrive.py list`")
        return letter

    def find(self, key: str) -> dict[str, Any] | None:
        """The JSON object stored under ``key``, or None when there is none: one GetObject. (S3 answers a missing
        key with 404 only to a caller allowed s3:ListBucket; without it, 403, which is raised as denied.)"""
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except AWS_ERRORS as exc:
            if error_code(exc) in ("NoSuchKey", "404"):
                return None
            raise classify(exc, action=f"S3 GetObject on dead-letter bucket {self.bucket}") from exc
        try:
            letter = json.loads(body)
        except ValueError as exc:
            raise UserError(f"s3://{self.bucket}/{key} is not JSON ({exc}); it is not a dead letter") from None
        if not isinstance(letter, dict):
            raise UserError(f"s3://{self.bucket}/{key} holds JSON but not an object; it is not a dead letter")
        return letter
