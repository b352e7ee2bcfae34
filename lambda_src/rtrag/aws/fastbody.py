"""Request bodies botocore does not walk: the base of the indexer's fast paths (``s3vectors.FastPutVectors``,
``ledger.FastBatchWrite``, ``ledger.FastBatchGet``).

botocore validates and serializes a request value by value in Python; for the indexer's bulk requests that costs
more CPU than the rest of its work. A fast path takes the bulky values out of the parameters before botocore walks
them (``before-parameter-build``: ``take`` leaves placeholders and returns what it took, or None to leave the
request to botocore), then writes them into the serialized JSON body just before the request is signed
(``before-call``: ``body``). botocore keeps everything else: endpoint resolution, signing (of the body it is
given), retries, error parsing. Our own checks have checked the values taken, as botocore's validation would have.
"""

from __future__ import annotations

import json
from typing import Any


class FastBody:
    """One operation's fast path. Subclasses set ``operation`` (``"service.Operation"``) and implement ``take``
    and ``body``. ``install`` is idempotent, and does nothing for a client that is not botocore's."""

    operation = ""

    @classmethod
    def install(cls, client: Any) -> None:
        from botocore.client import BaseClient  # loaded with the client; importing it here keeps cold starts short

        if not isinstance(client, BaseClient):  # the benchmarks and tests may hand a plain fake
            return
        events = client.meta.events
        events.register(f"before-parameter-build.{cls.operation}", cls._stash, unique_id=f"{cls.operation}.stash")
        events.register(f"before-call.{cls.operation}", cls._write, unique_id=f"{cls.operation}.body")

    @classmethod
    def take(cls, params: dict[str, Any]) -> Any | None:
        raise NotImplementedError

    @classmethod
    def body(cls, envelope: dict[str, Any], taken: Any) -> str:
        raise NotImplementedError

    @classmethod
    def _stash(cls, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        taken = cls.take(params)
        if taken is not None:
            context[cls.operation] = taken

    @classmethod
    def _write(cls, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        taken = context.pop(cls.operation, None)
        if taken is not None:
            # botocore's body, with the placeholders: small
            params["body"] = cls.body(json.loads(params["body"]), taken).encode("utf-8")
