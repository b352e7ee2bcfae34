"""What AWS errors mean for the pipeline: retry later, or never (dead-letter)."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from rtrag.core.errors import TransientError, UnindexableDocument

# Client errors that a retry cannot fix for the same input. Everything else (throttling after botocore's retries,
# 5xx, timeouts, access denied or a missing index while an operator fixes the configuration) is retried by the
# event source mapping and, once its retries are used up, kept whole by its on-failure destination.
PERMANENT_CODES = frozenset({"ValidationException"})


def error_code(exc: BaseException) -> str:
    """The AWS error code of ``exc``. An error inside an event stream (Bedrock ConverseStream's) names it in
    lowerCamelCase (``throttlingException``); it is given as the API's own code (``ThrottlingException``)."""
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "ClientError")
        return code[:1].upper() + code[1:]
    return type(exc).__name__


def classify(exc: ClientError | BotoCoreError, *, action: str) -> TransientError | UnindexableDocument:
    """Wrap an AWS error in the pipeline's own type, keeping the AWS error code and message."""
    code = error_code(exc)
    if isinstance(exc, ClientError) and code in PERMANENT_CODES:
        message = exc.response.get("Error", {}).get("Message", str(exc))
        return UnindexableDocument(f"{action} rejected the input: {code}: {message}", code=code)
    return TransientError(f"{action} failed: {code}: {exc}", code=code)


AWS_ERRORS = (ClientError, BotoCoreError)
