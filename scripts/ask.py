#!/usr/bin/env python3
"""Ask a question: retrieve the nearest chunks from the S3 Vectors index and answer from them with Amazon Nova.

examples:
  python scripts/ask.py "When does Project Nimbus v3 ship and what does it drop?"
  python scripts/ask.py --top-k 5 --where team=platform --where tier=1 "How often are the signing keys rotated?"
  python scripts/ask.py --filter '{"source": {"$in": ["wiki", "runbooks"]}}' "How often are keys rotated?"
  python scripts/ask.py --no-generate "signing keys"        # only the retrieved passages
  python scripts/ask.py --json "When does Nimbus v3 ship?"   # answer, sources and timings as JSON
"""

from __future__ import annotations

import argparse
import sys

from rtrag.cli.asking import add_asking_arguments, build_filter, check_asking_arguments, open_asker
from rtrag.cli.common import add_aws_arguments, current_region, run_cli, script_parser
from rtrag.cli.safe import one_line, safe_json, safe_text
from rtrag.workflows.answering import Asked, is_refusal


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = script_parser("ask.py", __doc__)
    parser.add_argument("question")
    add_asking_arguments(parser)
    parser.add_argument("--no-generate", action="store_true", help="print the retrieved passages only")
    parser.add_argument("--json", action="store_true", help="print one JSON object: answer, sources, timings")
    add_aws_arguments(parser)
    args = parser.parse_args(argv)
    check_asking_arguments(parser, args)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def body() -> int:
        filter_ = build_filter(args)
        with open_asker(args) as asker:
            stream_text = not args.json and not args.no_generate

            streamed = False

            def show(text: str) -> None:
                nonlocal streamed
                streamed = True
                sys.stdout.write(safe_text(text))
                sys.stdout.flush()

            try:
                asked = asker.ask(args.question, top_k=args.top_k, filter=filter_, generate=not args.no_generate,
                                  max_distance=args.max_distance, on_text=show if stream_text else (lambda t: None))
            except BaseException:
                if streamed:  # part of an answer is on the screen (or in a file): mark it, then say why
                    print(" [answer incomplete]", flush=True)
                raise
            if stream_text:
                print()
            print_result(args, asked)
            answer = asked.answer
            cut_short = getattr(answer, "cut_short", None)  # a model's answer (the extractive one is never cut)
            if cut_short:
                print(f"note: the answer stopped early ({cut_short}): it may be incomplete", file=sys.stderr)
            left_out = getattr(answer, "left_out", 0)
            if left_out:
                print(f"note: the {left_out} lowest-ranked of the retrieved chunks were left out of the prompt, to keep "
                      "it within the model's context: ask with a smaller --top-k", file=sys.stderr)
            if answer is not None and not answer.sources and not is_refusal(answer.text):
                print("note: the answer cites none of the retrieved documents: check it against them "
                      "(--no-generate shows them)", file=sys.stderr)
            found = asked.retrieval
            if filter_ is not None and not found.hits and not found.dropped:
                print("note: no indexed chunk matches the filter; check its keys and values (they are "
                      "case-sensitive)", file=sys.stderr)
        return 0

    return run_cli(body, region=lambda: current_region(args))


def print_result(args: argparse.Namespace, asked: Asked) -> None:
    """The sources after the streamed answer, the passages (--no-generate), or one JSON object (--json)."""
    found, answer = asked.retrieval, asked.answer
    if args.json:
        print(safe_json({
            "question": asked.question, "answer": None if answer is None else answer.text,
            "model_id": None if answer is None else answer.model_id,
            "sources": [h.to_json() for h in asked.sources],
            "passages": [h.to_json() | {"text": h.text} for h in found.hits] if args.no_generate else None,
            "timings_ms": {"embed": round(found.embed_ms, 1), "query": round(found.query_ms, 1),
                           "generate": round(answer.generate_ms, 1) if answer else 0.0,
                           "total": round(asked.total_ms, 1)}}))
        return
    if args.no_generate:
        if not found.hits:
            print("No relevant passages found.")
        for h in found.hits:
            print(f"[{one_line(h.key)}] distance={h.distance:.3f} source={one_line(h.source)}\n{safe_text(h.text)}\n")
        return
    if asked.sources:
        print("\nSources:")
        for h in asked.sources:
            print(f"  {one_line(h.doc_id)}  chunk {h.chunk}  distance {h.distance:.3f}  source {one_line(h.source)}")


if __name__ == "__main__":
    raise SystemExit(main())
