"""Exception types of the pipeline. Each says what went wrong and what fixes it, and keeps the AWS error code."""

from __future__ import annotations


class RagError(Exception):
    """Base class of the pipeline's own errors. ``details``: lines that follow the message (one per bad input
    line, say); a command line prints each on a line of its own."""

    details: tuple[str, ...] = ()


class UserError(RagError):
    """A failure the user can fix; the message names the cause and the fix (a CLI prints it as it is)."""


class ResourceMissing(UserError):
    """A deployed resource does not exist: a wrong name or Region, or the stack is not deployed. ``resource`` (a
    ``contract.Resource``) says which, so a command line can name the flag and variable that name it."""

    def __init__(self, message: str, *, resource: object):
        super().__init__(message)
        self.resource = resource


class InvalidFilter(UserError):
    """A metadata filter that S3 Vectors would reject; the message names the bad part and the fix."""


class ConfigError(RagError):
    """A setting (environment variable, flag or context value) is missing or invalid."""


class InvalidEvent(RagError):
    """A document event breaks the data contract; it can never be indexed as it is (dead-letter it)."""

    def __init__(self, reason: str, *, doc_id: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.doc_id = doc_id


class LimitExceeded(RagError):
    """A request would break a documented S3 Vectors limit; raised before the request is sent."""


class UnindexableDocument(RagError):
    """The document is well formed but a service rejected its content permanently (dead-letter it)."""

    def __init__(self, reason: str, *, code: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.code = code


class TransientError(RagError):
    """A service failed in a way that a later retry can fix (throttling after retries, 5xx, timeouts)."""

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        self.code = code
