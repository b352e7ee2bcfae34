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
from urllib.parse import urlsplit

from rtrag.cli.safe import SafeStream, one_line
from rtrag.core.errors import ConfigError, RagError, ResourceMissing, UserError
from rtrag.core.shown import clipped

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_STACK_NAME = "RealtimeRag"
ERROR_TEXT_CHARS = 600  # an AWS error report quoted in a one-line message


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
    """The boto3 session of ``--profile`` / ``--region`` (else AWS_PROFILE, AWS_REGION, the profile's Region).
    Checks, before any call, that it has a Region and credentials, and names every one that is missing at once."""
    import boto3
    from botocore.exceptions import PartialCredentialsError, ProfileNotFound

    from rtrag.cli.hints import message

    try:
        # botocore reads AWS_DEFAULT_REGION; AWS_REGION is what the seed's scripts and the AWS SDKs use.
        session = boto3.Session(profile_name=args.profile, region_name=args.region or os.environ.get("AWS_REGION"))
        region = session.region_name
        # Found as the first call would find them (environment, AWS files, else an EC2 or container metadata
        # endpoint); a profile that assumes a role or uses SSO is only refreshed on its first call.
        credentials = session.get_credentials()
    except ProfileNotFound as exc:
        raise UserError(message("profile_not_found", profile=exc.kwargs.get("profile") or args.profile,
                                source="--profile" if args.profile else "AWS_PROFILE")) from None
    except PartialCredentialsError as exc:
        raise UserError(message("partial_credentials", provider=_provider(exc.kwargs.get("provider")),
                                missing=exc.kwargs.get("cred_var"))) from None
    if not region and credentials is None:
        raise UserError(message("no_region_no_credentials"))
    if not region:
        raise UserError(message("no_region"))
    if credentials is None:
        raise UserError(message("no_credentials"))
    return session


def explain(exc: BaseException, *, region: str | None = None) -> str:
    """One line that names the cause of ``exc`` and the fix (``hints.MESSAGES``, or the message of a typed error,
    whose text names both); AWS's own report is kept whole, on one line, bounded."""
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import (
        NoCredentialsError,
        NoRegionError,
        ParamValidationError,
        PartialCredentialsError,
        ProfileNotFound,
        ProxyConnectionError,
        SSLError,
        UnknownServiceError,
    )

    from rtrag.cli.hints import message

    where = f" in {region}" if region else ""
    original = exc
    text = str(exc)
    if isinstance(exc, ResourceMissing):
        resource = exc.resource
        return message("resource_missing", missing=text, where=where, what=resource.what, flag=resource.flag,
                       env=resource.env, output=resource.output)
    if isinstance(exc, UserError):
        from rtrag.cli.hints import workflow_hint  # loads the workflows only when one of their errors is shown

        return workflow_hint(exc) or text
    if isinstance(exc, ConfigError):
        return text
    if isinstance(exc, RagError) and isinstance(exc.__cause__, Exception):
        text = f"{text} {exc.__cause__}"
        exc = exc.__cause__
    if isinstance(exc, ProfileNotFound):
        return message("profile_not_found", profile=exc.kwargs.get("profile"), source="--profile or AWS_PROFILE")
    if isinstance(exc, PartialCredentialsError):
        return message("partial_credentials", provider=_provider(exc.kwargs.get("provider")),
                       missing=exc.kwargs.get("cred_var"))
    if isinstance(exc, NoCredentialsError):
        return message("no_credentials")
    if isinstance(exc, NoRegionError):
        return message("no_region")
    if isinstance(exc, UnknownServiceError):
        return message("no_s3vectors_client")
    if isinstance(exc, ParamValidationError):
        # botocore refused the request before sending it; its report says which parameter and why.
        call = str(original).split(" failed: ", 1)[0] if original is not exc else "request not sent"
        return message("invalid_parameter", call=call, report=_joined(exc.kwargs.get("report", "")))
    if isinstance(exc, ProxyConnectionError):
        return message("proxy_failed", proxy=_endpoint(exc.kwargs.get("proxy_url")))
    if isinstance(exc, SSLError):
        return message("tls_failed", endpoint=_endpoint(exc.kwargs.get("endpoint_url")))
    if isinstance(exc, BotoConnectionError):  # no route to the endpoint: no network, a proxy, a wrong Region
        endpoint = exc.kwargs.get("endpoint_url")
        return message("cannot_reach", endpoint=_endpoint(endpoint), region=region or "the Region",
                       service=_service(endpoint))
    if "ExpiredToken" in text or "InvalidClientTokenId" in text or "UnrecognizedClientException" in text:
        return message("expired_credentials")
    if "inference profile" in text:
        return message("inference_profile", where=where, profile=_nova_profile(region))
    if "AccessDenied" in text and ("don't have access to the model" in text or "model access" in text.lower()):
        return message("model_access", where=where)
    if "AccessDenied" in text:
        return message("not_authorized", detail=_joined(str(original)))
    lowered = text.lower()
    if "throttling" in lowered or "toomanyrequests" in lowered:  # a stream's errors are lowerCamelCase
        return message("throttled")
    if "model identifier is invalid" in lowered or ("bedrock" in lowered and "resourcenotfound" in lowered):
        return message("model_unknown", where=where, profile=_nova_profile(region))
    if "modelnotready" in lowered:
        return message("model_not_ready")
    if "bedrock" in lowered and ("input is too long" in lowered or "too many input tokens" in lowered):
        return message("input_too_long")
    if "Kinesis" in text and "ResourceNotFound" in text:
        return message("stream_not_found", where=where, detail=_joined(str(original)))
    if "S3 Vectors" in text and "NotFound" in text:
        return message("vectors_not_found", where=where, detail=_joined(str(original)))
    return _joined(str(original))


def _nova_profile(region: str | None) -> str:
    """Nova Lite's inference profile for ``region`` (the one the stack uses), or a generic hint."""
    from rtrag.core.regions import UnsupportedRegion, nova_lite_profile

    try:
        return nova_lite_profile(region)
    except UnsupportedRegion:  # unknown, or no profile serves it (the stack refuses it at deploy)
        return "us.amazon.nova-lite-v1:0 (eu./apac. for those geographies)"


def _joined(text: str) -> str:
    """``text`` on one line (its lines joined with "; "), bounded: an AWS report is kept whole unless huge."""
    return clipped("; ".join(line.strip() for line in text.strip().splitlines() if line.strip()),
                   ERROR_TEXT_CHARS) or ""


def _provider(name: str | None) -> str:
    """Where botocore found credentials, in a user's words."""
    return {"env": "the environment", "shared-credentials-file": "the shared credentials file",
            "config-file": "the AWS config file"}.get(name or "", name or "the credential chain")


def _endpoint(url: str | None) -> str:
    """An endpoint URL without its path and query (which may carry a bucket or key), for a message."""
    if not url:
        return "the AWS endpoint"
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else url


def _service(url: str | None) -> str:
    """The AWS service an endpoint URL belongs to (``https://kinesis.us-east-1.amazonaws.com`` -> kinesis)."""
    host = urlsplit(url or "").hostname or ""
    if host.endswith((".amazonaws.com", ".api.aws", ".amazonaws.com.cn")):
        return f"the {host.split('.')[0]} service"
    return "the service"


def current_region(args: argparse.Namespace) -> str | None:
    """The Region a command runs in, for its messages: ``--region``, the environment, else the profile's."""
    region = args.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        return region
    import boto3
    from botocore.exceptions import BotoCoreError

    try:
        return boto3.Session(profile_name=getattr(args, "profile", None)).region_name
    except BotoCoreError:
        return None


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
        for detail in getattr(exc, "details", ()):
            print(f"  {one_line(detail)}", file=sys.stderr)  # each escaped: no detail can forge a line
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
