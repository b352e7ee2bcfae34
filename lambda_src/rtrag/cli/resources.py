"""The deployed pipeline as a command sees it: one AWS session (the AWS composition root, ``rtrag.aws.compose``),
and each resource named by its flag, then its environment variable, then the stack's output (``contract.Resource``),
in the order every script uses; the outputs are read only when something is still unnamed."""

from __future__ import annotations

import argparse
import os
from typing import Any

from rtrag.aws.compose import AwsBackend
from rtrag.cli.common import default_stack_name, make_session
from rtrag.core import contract
from rtrag.core.contract import Resource
from rtrag.core.errors import UserError


class StackOutputs:
    """The deployed stack's outputs, read once, only if a name is not given by a flag or the environment."""

    def __init__(self, backend: AwsBackend, stack_name: str | None):
        self.backend = backend
        self.stack_name = stack_name or default_stack_name()
        self._outputs: dict[str, str] | None = None

    def get(self, key: str) -> str:
        if self._outputs is None:
            self._outputs = self._read()
        if key not in self._outputs:
            raise UserError(f"stack {self.stack_name} has no output {key}: redeploy it with `make deploy`")
        return self._outputs[key]

    def _read(self) -> dict[str, str]:
        from botocore.exceptions import ClientError

        try:
            stacks = self.backend.client("cloudformation").describe_stacks(StackName=self.stack_name)["Stacks"]
        except ClientError as exc:
            if "does not exist" in str(exc):
                raise UserError(
                    f"stack {self.stack_name} is not deployed in {self.backend.region}: run `make deploy`, "
                    "pass --stack-name or --region, or name the resources with flags / environment variables"
                ) from None
            raise
        return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def flag_value(args: argparse.Namespace, resource: Resource) -> str | None:
    """What the command line gave for ``resource`` (None when the script has no such flag or it was not given)."""
    return getattr(args, resource.flag.lstrip("-").replace("-", "_"), None) or None


class AwsResources:
    """The stack's resources for one command: names resolved on first use, one session and its clients."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.backend = AwsBackend(make_session(args))
        self.outputs = StackOutputs(self.backend, args.stack_name)

    def name(self, resource: Resource, *, hint: str = "") -> str:
        """The flag, else ``$env``, else the stack output; ``hint`` is added when none names it."""
        given = flag_value(self.args, resource) or os.environ.get(resource.env)
        if given:
            return given
        try:
            return self.outputs.get(resource.output)
        except UserError as exc:
            extra = f"; {hint}" if hint else ""
            raise UserError(f"{exc} (or name {resource.what} with {resource.flag} or {resource.env}){extra}") from None

    def optional(self, resource: Resource) -> str | None:
        """The flag, ``$env``, else the stack output, else None (for things that have a default)."""
        try:
            return self.name(resource)
        except UserError:
            return None

    def deployed(self, resource: Resource) -> str | None:
        """The pipeline's own ``resource`` (``$env``, else the stack output; no flag), or None."""
        if os.environ.get(resource.env):
            return os.environ[resource.env]
        try:
            return self.outputs.get(resource.output)
        except UserError:
            return None

    def stream(self) -> Any:
        return self.backend.stream(self.name(contract.STREAM))

    def dead_letters(self) -> Any:
        return self.backend.dead_letters(self.name(contract.DEAD_LETTER_BUCKET))


def add_resource_arguments(parser: argparse.ArgumentParser, *resources: Resource) -> None:
    """A flag for each of ``resources``, with the help text saying where its default comes from."""
    for resource in resources:
        parser.add_argument(resource.flag, help=f"{resource.what} (default: {resource.env}, then the stack's "
                            f"{resource.output})")
