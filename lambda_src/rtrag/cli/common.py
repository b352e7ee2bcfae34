"""What the command-line scripts share: their parsers and help, the AWS session, one-line error messages and
progress on a terminal (the deployed resources' names: ``rtrag.cli.resources``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rtrag.cli.safe import SafeStream, one_line
from rtrag.core.errors import ConfigError, RagError, ResourceMissing, UserError

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_STACK_NAME = "RealtimeRag"


def default_stack_name() -> str:
    """The stack name from cdk.json's context, as `make deploy` uses it."""
    try:
        context = json.loads((REPO_ROOT / "cdk.json").read_text()).get("context", {})
    except (OSError, ValueError):
        return DEFAULT_STACK_NAME
    return str(context.get("stack_name") or DEFAULT_STACK_NAME)


def script_parser(prog: str, doc: str, **kwargs: Any) -> argparse.ArgumentParser:
    """A parser whose --help shows the script's docstring: its text as the description, its examples after."""
    text, found, examples = doc.partition("\nexamples:\n")
    return argparse.ArgumentParser(prog=prog, description=text.strip(),
                                   epilog=f"examples:\n{examples.rstrip()}" if found else None,
                                   formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)


def add_aws_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("AWS")
    group.add_argument("--profile", help="AWS CLI profile to use (default: AWS_PROFILE or the default profile)")
    group.add_argument("--region", help="AWS Region (default: AWS_REGION or the profile's Region)")
    group.add_argument("--stack-name", default=None,
                       help=f"stack whose outputs name the resources (default from cdk.json: {default_stack_name()})")


def make_session(args: argparse.Namespace) -> Any:
    import boto3
    from botocore.exceptions import ProfileNotFound

    try:
        # botocore reads AWS_DEFAULT_REGION; AWS_REGION is what the seed's scripts and the AWS SDKs use.
        session = boto3.Session(profile_name=args.profile, region_name=args.region or os.environ.get("AWS_REGION"))
    except ProfileNotFound:
        raise UserError(f"AWS profile {args.profile!r} not found: check --profile / AWS_PROFILE and ~/.aws/config")
    if not session.region_name:
        raise UserError("no AWS Region: pass --region or set AWS_REGION (the Region the stack is deployed in)")
    return session


def explain(exc: BaseException, *, region: str | None = None) -> str:
    """One line that names the cause of ``exc`` and the fix."""
    from botocore.exceptions import (
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
        UnknownServiceError,
    )

    where = f" in {region}" if region else ""
    original = exc
    text = str(exc)
    if isinstance(exc, ResourceMissing):
        resource = exc.resource
        return (f"{text}{where}: deploy the stack (`make deploy`), or name {resource.what} with {resource.flag} "
                f"or {resource.env}")
    if isinstance(exc, UserError):
        from rtrag.cli.hints import workflow_hint  # loads the workflows only when one of their errors is shown

        return workflow_hint(exc) or text
    if isinstance(exc, ConfigError):
        return text
    if isinstance(exc, RagError) and isinstance(exc.__cause__, Exception):
        text = f"{text} {exc.__cause__}"
        exc = exc.__cause__
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return "no AWS credentials found: run `aws configure` (or `aws sso login`), set AWS_PROFILE, or pass --profile"
    if isinstance(exc, NoRegionError):
        return "no AWS Region: pass --region or set AWS_REGION"
    if isinstance(exc, UnknownServiceError):
        return "this boto3 has no S3 Vectors client: run `pip install -r requirements.txt` (boto3 1.39.5 or newer)"
    if isinstance(exc, EndpointConnectionError):
        if "s3vectors" in text:
            return f"S3 Vectors is not available{where}: deploy to and use a Region that offers it (e.g. us-east-1)"
        return f"cannot reach AWS ({exc}): check the network, --region and AWS_ENDPOINT_URL"
    if "ExpiredToken" in text or "InvalidClientTokenId" in text or "UnrecognizedClientException" in text:
        return "AWS credentials are expired or invalid: refresh them (`aws sso login`, new keys) and retry"
    if "inference profile" in text:
        return ("this model must be called through an inference profile" + where +
                ": pass --model-id us.amazon.nova-lite-v1:0 (or eu./apac. for those geographies)")
    if "AccessDenied" in text and ("don't have access to the model" in text or "model access" in text.lower()):
        return ("model access is not enabled" + where + ": open the Bedrock console, Model access, and enable "
                "Amazon Titan Text Embeddings V2 and Amazon Nova Lite")
    if "AccessDenied" in text:
        return (f"not authorized ({_first_line(text)}): attach the stack's ProducerPolicyArn, AskerPolicyArn or "
                "(for reindex.py and redrive.py) OperatorPolicyArn managed policy to your user or role")
    if "Throttling" in text or "TooManyRequests" in text:
        return ("throttled by AWS even after retries: wait a minute and retry, or ask for a higher quota "
                "(Service Quotas, Amazon Bedrock)")
    if "Kinesis" in text and "ResourceNotFound" in text:
        return f"the Kinesis stream was not found{where}: deploy the stack (`make deploy`) or pass --stream-name"
    if "S3 Vectors" in text and "NotFound" in text:
        return (f"the vector bucket or index was not found{where}: deploy the stack (`make deploy`) or pass "
                "--vector-bucket / --vector-index")
    return _first_line(str(original))


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def current_region(args: argparse.Namespace) -> str | None:
    return args.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")


def run_cli(main: Callable[[], int], *, region: Callable[[], str | None] = lambda: None) -> int:
    """Run a CLI body: known failures print one line on stderr and exit 1, without a traceback. Everything it
    prints goes through ``SafeStream``: no control sequence from a document reaches the terminal."""
    from botocore.exceptions import BotoCoreError, ClientError

    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = SafeStream(stdout), SafeStream(stderr)  # type: ignore[assignment]
    try:
        return main()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`... | head`): stop quietly, and point stdout at /dev/null so that the interpreter's
        # last flush does not raise again (the Python documentation's recipe for SIGPIPE).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stdout.fileno())
        return 141  # what a shell reports for a process ended by SIGPIPE
    except (RagError, BotoCoreError, ClientError) as exc:
        print(f"error: {one_line(explain(exc, region=region()))}", file=sys.stderr)
        return 1
    finally:
        sys.stdout, sys.stderr = stdout, stderr


def progress_printer(label: str, stream: Any = None) -> Callable[[int, int], None]:
    """A progress callback that redraws one line on a terminal and stays quiet in logs and pipes."""
    out = getattr(stream or sys.stderr, "raw", stream or sys.stderr)  # its carriage return is ours: not escaped
    if not out.isatty():
        return lambda done, total: None

    def show(done: int, total: int) -> None:
        width = 30
        filled = width * done // max(total, 1)
        out.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done >= total:
            out.write("\n")
        out.flush()

    return show
