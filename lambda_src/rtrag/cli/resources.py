"""What the operations scripts (reindex.py, redrive.py) share: the deployed pipeline's resources, each named by
a flag, then an environment variable, then the stack's output (the order every script uses), with one AWS session
and its clients."""

from __future__ import annotations

import argparse
import os
from typing import Any

from rtrag.aws.kinesis import KinesisStream
from rtrag.cli.common import StackOutputs, client, make_session, resolve
from rtrag.core.errors import UserError


class AwsResources:
    """The stack's resources for one command: names resolved on first use, clients made once."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.session = make_session(args)
        self.outputs = StackOutputs(self.session, args.stack_name)
        self._clients: dict[str, Any] = {}

    def client(self, service: str, **config: Any) -> Any:
        if service not in self._clients:
            self._clients[service] = client(self.session, service, **config)
        return self._clients[service]

    def name(self, flag: str | None, env: str, output: str, *, hint: str = "") -> str:
        """``flag``, else ``$env``, else the stack output ``output``; ``hint`` is added to a failure."""
        try:
            return resolve(flag, env, self.outputs, output)
        except UserError as exc:
            if not hint:
                raise
            raise UserError(f"{exc}; {hint}") from None

    def optional(self, env: str, output: str) -> str | None:
        """``$env``, else the stack output, else None (for settings that have a default)."""
        if os.environ.get(env):
            return os.environ[env]
        try:
            return self.outputs.get(output)
        except UserError:
            return None

    def stream_name(self) -> str:
        return self.name(getattr(self.args, "stream_name", None), "STREAM_NAME", "StreamName",
                         hint="or pass --stream-name")

    def stream(self) -> KinesisStream:
        return KinesisStream(self.client("kinesis"), stream_name=self.stream_name())

    def dead_letter_bucket(self) -> str:
        return self.name(getattr(self.args, "dead_letter_bucket", None), "DEAD_LETTER_BUCKET",
                         "DeadLetterBucketName", hint="or pass --dead-letter-bucket")


def add_resource_arguments(parser: argparse.ArgumentParser, *, stream: bool = True) -> None:
    """The resource flags both scripts take."""
    if stream:
        parser.add_argument("--stream-name", help="Kinesis stream (default: STREAM_NAME, then the stack's "
                            "StreamName)")
    parser.add_argument("--dead-letter-bucket", help="default: DEAD_LETTER_BUCKET, then the stack's "
                        "DeadLetterBucketName")
