"""What ``ask.py`` and ``evaluate.py`` share: their retrieval options, the filter they build from them, and the
``Asker`` of the backend they name (the local pipeline with ``--local``, else the deployed stack), so an
evaluation measures exactly what ``ask.py`` answers."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager

from rtrag.cli.common import make_session
from rtrag.cli.resources import AwsResources, add_resource_arguments, named_by_flag
from rtrag.core import contract
from rtrag.core.errors import UserError
from rtrag.core.filters import validate_filter, where_to_filter
from rtrag.core.limits import MAX_TOP_K
from rtrag.workflows.answering import Asker
from rtrag.workflows.retrieval import DEFAULT_MAX_DISTANCE, DEFAULT_TOP_K, LOCAL_MAX_DISTANCE


def add_asking_arguments(parser: argparse.ArgumentParser) -> None:
    """Retrieval, filter, backend and model options (``add_aws_arguments`` adds the AWS ones)."""
    parser.add_argument("--top-k", type=int, default=DEFAULT_TOP_K, help=f"chunks to answer from, 1..{MAX_TOP_K} "
                        f"(default {DEFAULT_TOP_K})")
    parser.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                        help="metadata filter; repeatable, combined with $and; numbers and true/false are typed")
    parser.add_argument("--filter", metavar="JSON", help="metadata filter in S3 Vectors' filter syntax")
    parser.add_argument("--max-distance", type=float, default=None,
                        help=f"cosine distance above which a chunk sharing no word with the question is not "
                        f"relevant (default {DEFAULT_MAX_DISTANCE}; {LOCAL_MAX_DISTANCE} with --local)")
    parser.add_argument("--model-id", help="answering model or inference profile (default: Nova Lite's "
                        "geographic inference profile for the Region, e.g. us.amazon.nova-lite-v1:0)")
    add_resource_arguments(parser, contract.VECTOR_BUCKET, contract.VECTOR_INDEX, contract.EMBED_MODEL)
    parser.add_argument("--local", action="store_true", help="use the local pipeline under .rag-local/ (or "
                        "$RAG_LOCAL_DIR): offline embeddings and an extractive answer, no AWS account")
    parser.add_argument("--local-generator", choices=("extractive", "bedrock"), default="extractive",
                        help="with --local: answer by quoting the passages (default) or with Nova on Bedrock")


def check_asking_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not 1 <= args.top_k <= MAX_TOP_K:
        parser.error(f"--top-k must be 1..{MAX_TOP_K}")
    if args.where and args.filter:
        parser.error("use --where or --filter, not both")
    # A cosine distance is 0..2; NaN would compare false with every distance and silently drop hits.
    if args.max_distance is not None and not 0 <= args.max_distance <= 2:
        parser.error(f"--max-distance must be a cosine distance, 0..2 (got {args.max_distance})")
    if getattr(args, "no_generate", False) and args.local_generator == "bedrock":  # evaluate.py has no such flag
        parser.error("--local-generator bedrock picks who answers, and --no-generate answers nothing: drop one")


def build_filter(args: argparse.Namespace) -> dict | None:
    """The metadata filter of ``--filter`` or ``--where`` (None without either), validated."""
    if args.filter:
        try:
            parsed = json.loads(args.filter)
        except ValueError as exc:
            raise UserError(f"--filter is not JSON ({exc}); give a filter such as "
                            "'{\"team\": \"platform\"}'") from None
        return validate_filter(parsed)  # InvalidFilter names the bad part and the fix
    return where_to_filter(args.where)


@contextmanager
def open_asker(args: argparse.Namespace) -> Iterator[Asker]:
    """The asker of the backend ``args`` name; every option means the same on both, or is refused in one line."""
    if args.local:
        yield from _local(args)
    else:
        yield _aws(args)


def _local(args: argparse.Namespace) -> Iterator[Asker]:
    from rtrag.local.compose import LocalBackend

    if named := named_by_flag(args, contract.VECTOR_BUCKET, contract.EMBED_MODEL):
        raise UserError(f"{named.flag} names an AWS resource; local mode has one vector store and one embedder "
                        "(leave it out, or drop --local)")
    if args.model_id and args.local_generator != "bedrock":
        raise UserError("--model-id picks the Bedrock model that answers: add --local-generator bedrock")
    backend = LocalBackend()
    try:
        index = backend.index_to_ask(args.vector_index)
        answerer = None
        if args.local_generator == "bedrock":
            from rtrag.aws.compose import AwsBackend
            from rtrag.core.regions import nova_lite_profile

            aws = AwsBackend(make_session(args))
            model_id = (args.model_id or os.environ.get(contract.ANSWER_MODEL.env)
                        or nova_lite_profile(aws.region))
            answerer = aws.answerer(model_id)
        yield backend.asker(index, answerer=answerer)
    finally:
        backend.close()


def _aws(args: argparse.Namespace) -> Asker:
    if args.local_generator != "extractive":
        raise UserError("--local-generator goes with --local (on AWS, Nova answers)")
    from rtrag.core.regions import nova_lite_profile

    res = AwsResources(args)
    # Names given by flag or environment are checked before any call (a bad one is named with where it came from).
    for resource in (contract.VECTOR_BUCKET, contract.VECTOR_INDEX):
        res.given(resource)
    generate = not getattr(args, "no_generate", False)  # evaluate.py always generates
    # The answering model first: in a Region no Nova Lite profile serves, that is the one line to print (a stack
    # cannot be deployed there either, so "not deployed" would be the wrong fix), before any Bedrock call.
    answer_model = res.optional(contract.ANSWER_MODEL)
    if answer_model is None and generate:
        answer_model = nova_lite_profile(res.backend.region)
    wanted = res.optional(contract.EMBED_DIMENSIONS)
    return res.backend.asker(res.name(contract.VECTOR_BUCKET), res.name(contract.VECTOR_INDEX),
                             embed_model_id=res.optional(contract.EMBED_MODEL),
                             wanted_dimensions=int(wanted) if wanted else None,
                             answer_model_id=answer_model, generate=generate)
