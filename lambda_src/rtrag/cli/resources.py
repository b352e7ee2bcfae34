"""The deployed pipeline as a command sees it: one AWS session (the AWS composition root, ``rtrag.aws.compose``),
and each resource named by its flag, then its environment variable, then the stack's output (``contract.Resource``),
in the order every script uses; the outputs are read only when something is still unnamed."""

from __future__ import annotations

import argparse
import os
from typing import Any

from rtrag.aws.compose import AwsBackend
from rtrag.cli.common import default_stack_name, make_session
from rtrag.cli.hints import message
from rtrag.core import contract, names
from rtrag.core.contract import Resource
from rtrag.core.errors import UserError
from rtrag.core.shown import clipped, shown

# The names S3 Vectors' rules govern: checked as they are given, so a bad one is named with where it came from
# instead of failing later as an invalid request parameter.
NAME_RULES = {contract.VECTOR_BUCKET: names.validate_bucket_name, contract.VECTOR_INDEX: names.validate_index_name}


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
            raise UserError(message("stack_output_missing", stack=self.stack_name, key=key))
        return self._outputs[key]

    def _read(self) -> dict[str, str]:
        from botocore.exceptions import ClientError

        try:
            stacks = self.backend.client("cloudformation").describe_stacks(StackName=self.stack_name)["Stacks"]
        except ClientError as exc:
            if "does not exist" in str(exc):
                raise UserError(message("stack_not_deployed", stack=self.stack_name,
                                        region=self.backend.region)) from None
            raise
        return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def flag_value(args: argparse.Namespace, resource: Resource) -> str | None:
    """What the command line gave for ``resource`` (None when the script has no such flag or it was not given)."""
    return getattr(args, resource.flag.lstrip("-").replace("-", "_"), None) or None


def named_by_flag(args: argparse.Namespace, *resources: Resource) -> Resource | None:
    """The first of ``resources`` the command line names: in local mode, an AWS resource it does not have."""
    return next((resource for resource in resources if flag_value(args, resource) is not None), None)


class AwsResources:
    """The stack's resources for one command: names resolved on first use, one session and its clients."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.backend = AwsBackend(make_session(args))
        self.outputs = StackOutputs(self.backend, args.stack_name)

    def given(self, resource: Resource) -> str | None:
        """The flag, else ``$env`` (refused in one line if it breaks the resource's naming rules), else None."""
        flag = flag_value(self.args, resource)
        value = flag or os.environ.get(resource.env)
        return checked_name(resource, value, source=resource.flag if flag else resource.env) if value else None

    def name(self, resource: Resource, *, hint: str = "") -> str:
        """The flag, else ``$env``, else the stack output; ``hint`` is added when none names it."""
        given = self.given(resource)
        if given:
            return given
        try:
            return self.outputs.get(resource.output)
        except UserError as exc:
            raise UserError(message("also_name_it", message=exc, what=resource.what, flag=resource.flag,
                                    env=resource.env, hint=f"; {hint}" if hint else "")) from None

    def optional(self, resource: Resource) -> str | None:
        """The flag, ``$env``, else the stack output, else None (for things that have a default)."""
        given = self.given(resource)
        if given:
            return given
        try:
            return self.outputs.get(resource.output)
        except UserError:
            return None

    def indexer_function(self) -> str | None:
        """The deployed indexer's function name (the stack's output), or None when the stack does not say."""
        try:
            return self.outputs.get(contract.OUTPUT_INDEXER_FUNCTION)
        except UserError:
            return None

    def max_ts_skew_seconds(self) -> int:
        """How far ahead of its arrival the deployed indexer lets an event's ts be (``$MAX_TS_SKEW_SECONDS``, else
        the stack's output), which events put back on its stream must meet; the default for a stack deployed before
        the output, or a value that is not a whole number."""
        raw = os.environ.get(contract.ENV_MAX_TS_SKEW_SECONDS)
        if not raw:
            try:
                raw = self.outputs.get(contract.OUTPUT_MAX_TS_SKEW)
            except UserError:
                raw = None
        try:
            return int(raw) if raw else contract.DEFAULT_MAX_TS_SKEW_SECONDS
        except ValueError:
            return contract.DEFAULT_MAX_TS_SKEW_SECONDS

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


def checked_name(resource: Resource, name: str, *, source: str) -> str:
    """``name`` as ``source`` (a flag or an environment variable) gave it, if it is a valid name for ``resource``."""
    rule = NAME_RULES.get(resource)
    if rule is not None:
        try:
            rule(name)
        except names.InvalidName as exc:
            raise UserError(message("invalid_name", source=source, value=shown(name), what=resource.what,
                                    reason=clipped(exc), output=resource.output)) from None
    return name


def add_resource_arguments(parser: argparse.ArgumentParser, *resources: Resource) -> None:
    """A flag for each of ``resources``, with the help text saying where its default comes from."""
    for resource in resources:
        parser.add_argument(resource.flag, help=f"{resource.what} (default: {resource.env}, then the stack's "
                            f"{resource.output})")
