#!/usr/bin/env python3
"""Ask a question: retrieve the nearest chunks from the S3 Vectors index and answer from them with Amazon Nova.

examples:
  python scripts/ask.py "When does Project Nimbus v3 ship and what does it drop?"
  python scripts/ask.py --top-k 5 --where team=platform --where tier=1 "Who rotates the signing keys?"
  python scripts/ask.py --filter '{"source": {"$in": ["wiki", "runbooks"]}}' "How often are keys rotated?"
  python scripts/ask.py --no-generate "signing keys"        # only the retrieved passages
  python scripts/ask.py --json "When does Nimbus v3 ship?"   # answer, sources and timings as JSON
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from rtrag.aws.nova import default_answer_model
from rtrag.cli.common import add_aws_arguments, current_region, make_session, run_cli, script_parser
from rtrag.cli.resources import AwsResources, add_resource_arguments
from rtrag.core import contract
from rtrag.core.errors import UserError
from rtrag.core.filters import validate_filter, where_to_filter
from rtrag.core.limits import MAX_TOP_K, TITAN_V2_MODEL_ID
from rtrag.workflows.answering import DEFAULT_MAX_DISTANCE, DEFAULT_TOP_K, LOCAL_MAX_DISTANCE, not_found, retrieve


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = script_parser("ask.py", __doc__)
    parser.add_argument("question")
    parser.add_argument("--top-k", type=int, default=DEFAULT_TOP_K, help=f"chunks to retrieve, 1..{MAX_TOP_K} "
                        f"(default {DEFAULT_TOP_K})")
    parser.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                        help="metadata filter; repeatable, combined with $and; numbers and true/false are typed")
    parser.add_argument("--filter", metavar="JSON", help="metadata filter in S3 Vectors' filter syntax")
    parser.add_argument("--max-distance", type=float, default=None,
                        help=f"cosine distance above which a chunk is not relevant (default {DEFAULT_MAX_DISTANCE}; "
                        f"{LOCAL_MAX_DISTANCE} with --local)")
    parser.add_argument("--model-id", help="answering model or inference profile (default: Nova Lite's "
                        "geographic inference profile for the Region, e.g. us.amazon.nova-lite-v1:0)")
    parser.add_argument("--no-generate", action="store_true", help="print the retrieved passages only")
    parser.add_argument("--json", action="store_true", help="print one JSON object: answer, sources, timings")
    add_resource_arguments(parser, contract.VECTOR_BUCKET, contract.VECTOR_INDEX, contract.EMBED_MODEL)
    parser.add_argument("--local", action="store_true", help="ask the local pipeline under .rag-local/ (or "
                        "$RAG_LOCAL_DIR): offline embeddings and an extractive answer, no AWS account")
    parser.add_argument("--local-generator", choices=("extractive", "bedrock"), default="extractive",
                        help="with --local: answer by quoting the passages (default) or with Nova on Bedrock")
    add_aws_arguments(parser)
    args = parser.parse_args(argv)
    if not 1 <= args.top_k <= MAX_TOP_K:
        parser.error(f"--top-k must be 1..{MAX_TOP_K}")
    if args.where and args.filter:
        parser.error("use --where or --filter, not both")
    return args


def build_filter(args: argparse.Namespace) -> dict | None:
    if args.filter:
        try:
            parsed = json.loads(args.filter)
        except ValueError as exc:
            raise UserError(f"--filter is not JSON ({exc}); give a filter such as '{{\"team\": \"platform\"}}'") from None
        return validate_filter(parsed)  # InvalidFilter names the bad part and the fix
    return where_to_filter(args.where)


class Local:
    """The local pipeline: the same retrieval code on the local index and the offline embedder."""

    max_distance = LOCAL_MAX_DISTANCE

    def __init__(self, args: argparse.Namespace):
        from rtrag.local.compose import LocalBackend

        for flag, given in (("--vector-bucket", args.vector_bucket), ("--embed-model-id", args.embed_model_id)):
            if given:
                raise UserError(f"{flag} names an AWS resource; local mode has one vector store and one embedder "
                                "(leave it out, or drop --local)")
        if args.model_id and args.local_generator != "bedrock":
            raise UserError("--model-id picks the Bedrock model that answers: add --local-generator bedrock")
        self.backend = LocalBackend()
        self.index = self.backend.named_index(args.vector_index) if args.vector_index else self.backend.index
        self.embedder = self.backend.embedder
        if args.local_generator == "bedrock":
            from rtrag.aws.compose import AwsBackend

            aws = AwsBackend(make_session(args))
            model_id = args.model_id or os.environ.get(contract.ANSWER_MODEL.env) or default_answer_model(aws.region)
            self.answerer = aws.answerer(model_id)
        else:
            self.answerer = self.backend.answerer()

    def close(self) -> None:
        self.backend.close()


class Aws:
    """The deployed pipeline's pieces that ask.py uses, named by flags, environment or stack outputs."""

    max_distance = DEFAULT_MAX_DISTANCE

    def __init__(self, args: argparse.Namespace):
        from rtrag.aws.compose import check_embedding_fits

        if args.local_generator != "extractive":
            raise UserError("--local-generator goes with --local (on AWS, Nova answers)")
        res = AwsResources(args)
        backend = res.backend
        self.index = backend.vector_index(res.name(contract.VECTOR_BUCKET), res.name(contract.VECTOR_INDEX))
        model_id = res.optional(contract.EMBED_MODEL) or TITAN_V2_MODEL_ID
        wanted = res.optional(contract.EMBED_DIMENSIONS)
        check_embedding_fits(self.index, model_id=model_id, wanted_dimensions=int(wanted) if wanted else None)
        self.embedder = backend.embedder(model_id, self.index.dimension)
        self.answerer = backend.answerer(res.optional(contract.ANSWER_MODEL) or default_answer_model(backend.region))

    def close(self) -> None:
        pass


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def body() -> int:
        started = time.perf_counter()
        filter_ = build_filter(args)
        backend = Local(args) if args.local else Aws(args)
        try:
            return answer_question(args, backend, started, filter_)
        finally:
            backend.close()

    return run_cli(body, region=lambda: current_region(args))


def answer_question(args: argparse.Namespace, backend: Local | Aws, started: float, filter_: dict | None) -> int:
    """Retrieve, answer (streamed to the terminal, unless --json or --no-generate), print the sources."""
    max_distance = backend.max_distance if args.max_distance is None else args.max_distance
    found = retrieve(args.question, embedder=backend.embedder, index=backend.index, top_k=args.top_k,
                     filter=filter_, max_distance=max_distance)
    stream_text = not args.json and not args.no_generate
    if args.no_generate:
        answer = None
    elif not found.hits:
        answer = not_found()
        if stream_text:
            print(answer.text)
    else:
        answer = backend.answerer.answer(
            args.question, found.hits,
            on_text=(lambda t: (sys.stdout.write(t), sys.stdout.flush())) if stream_text else (lambda t: None))
        if stream_text:
            print()
    total_ms = (time.perf_counter() - started) * 1000
    sources = found.hits if answer is None else answer.sources
    if args.json:
        print(json.dumps({
            "question": args.question, "answer": None if answer is None else answer.text,
            "model_id": None if answer is None else answer.model_id,
            "sources": [h.to_json() for h in sources],
            "passages": [h.to_json() | {"text": h.text} for h in found.hits] if args.no_generate else None,
            "timings_ms": {"embed": round(found.embed_ms, 1), "query": round(found.query_ms, 1),
                           "generate": round(answer.generate_ms, 1) if answer else 0.0,
                           "total": round(total_ms, 1)}}, ensure_ascii=False))
        return 0
    if args.no_generate:
        if not found.hits:
            print("No relevant passages found.")
        for h in found.hits:
            print(f"[{h.key}] distance={h.distance:.3f} source={h.source}\n{h.text}\n")
        return 0
    if sources:
        print("\nSources:")
        for h in sources:
            print(f"  {h.doc_id}  chunk {h.chunk}  distance {h.distance:.3f}  source {h.source}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
