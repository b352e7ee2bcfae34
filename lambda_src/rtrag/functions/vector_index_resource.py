"""The custom resource function of the vector bucket and index: the CDK Provider framework's ``onEvent`` handler.

The work is in ``rtrag.aws.index_lifecycle`` (create, update, delete) and ``rtrag.aws.index_resource``
(properties, names); this module gives it an S3 Vectors client and structured logs.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from rtrag.aws.compose import CONNECT_TIMEOUT_S, AwsBackend
from rtrag.aws.index_lifecycle import handle_event, logger

# The function's timeout (stacks/vector_index.py sets it) bounds every call with its retries: 3 attempts of at
# most 5 s to connect and 15 s to read, with botocore's backoff between them, stay under a minute of it.
FUNCTION_TIMEOUT_S = 120
ATTEMPTS = 3
READ_TIMEOUT_S = 15
assert ATTEMPTS * (CONNECT_TIMEOUT_S + READ_TIMEOUT_S) + 2 * 20 < FUNCTION_TIMEOUT_S  # 20 s: botocore's max backoff


@lru_cache(maxsize=1)
def _s3vectors_client() -> Any:
    # Created on first use, not at import: importing stays free of AWS configuration (tests, tooling). Every call
    # with its retries ends well within the function's timeout, so CloudFormation shows our message, not a
    # timeout: ATTEMPTS x (connect + read) + backoff < FUNCTION_TIMEOUT_S.
    return AwsBackend().client("s3vectors", read_timeout=READ_TIMEOUT_S, attempts=ATTEMPTS)


def on_event(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """CDK Provider framework onEvent entry point."""
    logger.clear_state()
    # The event also carries the presigned ResponseURL, so log its identifying fields only.
    logger.append_keys(
        request_type=event.get("RequestType"),
        logical_resource_id=event.get("LogicalResourceId"),
        physical_resource_id=event.get("PhysicalResourceId"),
        stack_id=event.get("StackId"),
    )
    try:
        response = handle_event(_s3vectors_client(), event)
    except Exception:
        logger.exception("vector index custom resource failed")
        raise
    logger.info("vector index custom resource done", response=response)
    return response
