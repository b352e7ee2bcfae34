"""The workflows' typed errors and fixes in the scripts' own terms: a workflow names the cause and, as a type or a
``Fix``, the remedy; only this module names the command-line flags that apply it. ``MESSAGES`` holds every message
the command line words itself (README's Troubleshooting table lists each)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from rtrag.core import contract
from rtrag.core.errors import UserError
from rtrag.core.regions import UnsupportedRegion

if TYPE_CHECKING:
    from rtrag.workflows.redrive import Fix

# By the name of each ``rtrag.workflows.redrive.Fix``: every script words its errors through this module, and the
# workflows load only where one of their errors is worded (``workflow_hint``).
FIX_HINTS = {
    "FORCE": "--force sends it again",
    "CORRECT_OR_FORCE": "fix the producer and put the corrected event, or pass --force",
    "REPLAY_FROM_ARCHIVE": "replay them from the archive instead: reindex.py --from-archive --since <their date>",
}
SOURCE_FLAGS = {"directory": "--from-dir", "file": "--from-jsonl"}


def pause_indexer(function: str | None) -> str:
    """How to keep the deployed indexer off its index for a while (a replay or repair into it), and back."""
    name = function or "<the stack's IndexerFunctionName>"
    return (f"disable the indexer's event source mapping (`aws lambda list-event-source-mappings --function-name {name}` "
            "gives its UUID; `aws lambda update-event-source-mapping --uuid UUID --no-enabled`), run this with "
            "--indexer-disabled, then enable it again (`--enabled`): what was put on the stream meanwhile is indexed "
            "then")


def with_fix(message: str, fix: Fix | None) -> str:
    """``message`` followed by the command line's wording of ``fix``, if there is one."""
    return f"{message} ({FIX_HINTS[fix.name]})" if fix is not None else message


def workflow_hint(exc: UserError) -> str | None:
    # Imported here: every command wording its errors loads this module, and the workflows only matter to the
    # commands that use them. Local mode (numpy with it) is not imported at all: its errors can only have been
    # raised if it is loaded.
    from rtrag.workflows.checkpoint import CheckpointConflict, CheckpointUnreadable
    from rtrag.workflows.sources import InvalidWindow, SourceNotFound

    local = sys.modules.get("rtrag.local.compose")

    text = str(exc)
    if isinstance(exc, InvalidWindow):
        return f"--{exc.bound} {text}" if exc.bound else f"{text}: --since must not be after --until"
    if isinstance(exc, SourceNotFound):
        fix = f": use {SOURCE_FLAGS[exc.exists_as]}" if exc.exists_as else ""
        return f"{SOURCE_FLAGS[exc.kind]} {text}{fix}"
    if isinstance(exc, CheckpointUnreadable):
        return f"{text}: pass --restart to replay from the start (it is overwritten)"
    if isinstance(exc, CheckpointConflict):
        return f"{text}: pass another --checkpoint, or --restart to overwrite it"
    if isinstance(exc, UnsupportedRegion):
        return (f"{text} (pass --region with one of them), or name another answering model with "
                f"{contract.ANSWER_MODEL.flag} or {contract.ANSWER_MODEL.env}")
    if local is not None and isinstance(exc, local.LocalIndexMissing):
        return f"{text}: build it with `reindex.py --local --to-index --vector-index {exc.name}`"
    if local is not None and isinstance(exc, local.LocalIndexEmpty):
        if exc.name:
            return f"{text}: fill it with `python scripts/reindex.py --local --to-index --vector-index {exc.name}`"
        return (f"{text}: put documents first, e.g. the sample corpus with `python scripts/put_event.py --local "
                "--file scripts/sample_corpus.jsonl` (or run `make demo`)")
    return None


# Every message the command line words itself about the environment a command runs in (profile, Region,
# credentials, network, the deployed stack and its resources, AWS's answers), as a template: the cause, then after
# the first ": " the fix. ``message`` is the one way ``rtrag.cli`` words them, so README's Troubleshooting table can
# list each (tests/test_error_messages.py holds the two to each other). Fields are filled by ``str.format``.
MESSAGES = {
    "profile_not_found": ("AWS profile {profile!r} (from {source}) was not found: check its name "
                          "(`aws configure list-profiles`), or pass another --profile / AWS_PROFILE"),
    "no_region": "no AWS Region: pass --region or set AWS_REGION (the Region the stack is deployed in)",
    "no_credentials": ("no AWS credentials found: run `aws configure` (or `aws sso login`), set AWS_PROFILE, or "
                       "pass --profile"),
    "no_region_no_credentials": ("no AWS Region and no AWS credentials found: pass --region or set AWS_REGION (the "
                                 "Region the stack is deployed in), and run `aws configure` (or `aws sso login`), "
                                 "set AWS_PROFILE, or pass --profile"),
    "partial_credentials": ("incomplete AWS credentials in {provider} ({missing} is missing): set both "
                            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or unset them and use --profile"),
    "expired_credentials": "AWS credentials are expired or invalid: refresh them (`aws sso login`, new keys) and retry",
    "cannot_reach": ("cannot reach {endpoint}: check the network connection and proxy settings (HTTPS_PROXY), and "
                     "that {region} is the Region you mean (--region / AWS_REGION) and offers {service}"),
    "proxy_failed": "cannot connect to the proxy {proxy}: check HTTPS_PROXY / HTTP_PROXY, or unset them",
    "tls_failed": ("TLS certificate check failed for {endpoint}: behind a TLS-inspecting proxy, point AWS_CA_BUNDLE "
                   "at its CA certificate"),
    "invalid_parameter": ("invalid AWS request parameter ({call}): {report}: correct the value given by its flag or "
                          "environment variable"),
    "invalid_name": ("{source}={value} is not a valid name for {what} ({reason}): correct it, or leave it out to use "
                     "the stack's {output} output"),
    "no_s3vectors_client": ("this boto3 has no S3 Vectors client: run `pip install -r requirements.txt` (boto3 1.39.5 "
                            "or newer)"),
    "stack_not_deployed": ("stack {stack} is not deployed in {region}: run `make deploy`, pass --stack-name or "
                           "--region, or name the resources with flags / environment variables"),
    "stack_output_missing": "stack {stack} has no output {key}: redeploy it with `make deploy`",
    "resource_missing": ("{missing}{where}: check --region, or name {what} with {flag} or {env} (the stack's "
                         "{output} output names the deployed one; `make deploy` creates it)"),
    "stream_not_found": ("Kinesis stream not found{where} ({detail}): check --region, and name the stream with "
                         "--stream-name or STREAM_NAME (the stack's StreamName output)"),
    "vectors_not_found": ("vector bucket or index not found{where} ({detail}): check --region, --vector-bucket / "
                          "VECTOR_BUCKET and --vector-index / VECTOR_INDEX (the stack's VectorBucketName and "
                          "VectorIndexName outputs)"),
    "inference_profile": "this model must be called through an inference profile{where}: pass --model-id {profile}",
    "model_unknown": ("Bedrock does not know this model or inference profile{where} (a stale --model-id or "
                      "ANSWER_MODEL, or a profile of another geography): pass --model-id {profile}, or leave it out "
                      "for the stack's AnswerModelId"),
    "model_not_ready": "the Bedrock model is not ready yet (it is being loaded): retry in a minute",
    "input_too_long": ("the prompt is longer than the model takes: ask with a smaller --top-k, or a shorter "
                       "question"),
    "model_access": ("model access is not enabled{where}: open the Bedrock console, Model access, and enable Amazon "
                     "Titan Text Embeddings V2 and Amazon Nova Lite"),
    "not_authorized": ("not authorized ({detail}): attach the stack's ProducerPolicyArn, AskerPolicyArn or (for "
                       "reindex.py and redrive.py) OperatorPolicyArn managed policy to your user or role"),
    "throttled": ("throttled by AWS even after retries: wait a minute and retry, or ask for a higher quota (Service "
                  "Quotas, Amazon Bedrock)"),
    "also_name_it": "{message} (or name {what} with {flag} or {env}){hint}",
}


def message(name: str, /, **fields: object) -> str:
    """The command line's message ``name`` of ``MESSAGES``, with ``fields`` filled in (``key`` among them)."""
    return MESSAGES[name].format(**fields)
