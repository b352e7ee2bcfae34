#!/usr/bin/env python3
"""Put document events on the pipeline's Kinesis stream.

examples:
  python scripts/put_event.py "Project Nimbus ships its v3 release on 2026-08-14." nimbus-v3
  python scripts/put_event.py --doc-id runbook-42 --source wiki --metadata team=platform --metadata tier=1 \\
      "Rotate the signing keys every 90 days."
  python scripts/put_event.py --delete nimbus-v3
  python scripts/put_event.py --file events.jsonl          # JSON Lines of document events; '-' reads stdin
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid

from rtrag.cli.common import add_aws_arguments, current_region, progress_printer, run_cli, script_parser
from rtrag.cli.resources import AwsResources, add_resource_arguments
from rtrag.core import contract
from rtrag.core.errors import UserError
from rtrag.workflows.produce import InvalidInput, Stream, build_event, parse_pairs, read_jsonl, send_all


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = script_parser("put_event.py", __doc__)
    parser.add_argument("text", nargs="?", help="document text (one upsert event)")
    parser.add_argument("doc_id_pos", nargs="?", metavar="DOC_ID", help="document id (default: a new UUID)")
    parser.add_argument("--doc-id", help="document id (same as the second positional argument)")
    parser.add_argument("--source", help="where the document comes from (default: unknown)")
    parser.add_argument("--metadata", action="append", default=[], metavar="KEY=VALUE",
                        help="filterable metadata; repeatable; numbers and true/false are typed")
    parser.add_argument("--ts", type=int, help="document version in epoch seconds (default: now)")
    parser.add_argument("--delete", metavar="DOC_ID", help="put a delete event for DOC_ID instead")
    parser.add_argument("--file", metavar="PATH", help="JSON Lines of document events to send in bulk ('-' = stdin)")
    add_resource_arguments(parser, contract.STREAM)
    parser.add_argument("--json", action="store_true", help="print machine-readable results")
    parser.add_argument("--local", action="store_true", help="use the local pipeline under .rag-local/ (or "
                        "$RAG_LOCAL_DIR), no AWS account; the event is indexed before the command returns")
    add_aws_arguments(parser)
    args = parser.parse_args(argv)
    modes = sum(x is not None for x in (args.text, args.delete, args.file))
    if modes != 1:
        parser.error("give exactly one of: TEXT, --delete DOC_ID, --file PATH")
    if args.doc_id and args.doc_id_pos and args.doc_id != args.doc_id_pos:
        parser.error("the document id is given twice with different values")
    return args


def load_events(args: argparse.Namespace) -> list:
    if args.file is not None:
        if args.file == "-":
            return read_jsonl(sys.stdin)
        try:
            with open(args.file, encoding="utf-8") as lines:
                return read_jsonl(lines)
        except OSError as exc:
            raise UserError(f"cannot read {args.file}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise InvalidInput(f"{args.file} is not UTF-8 text") from None
    if args.delete is not None:
        return [build_event(doc_id=args.delete, ts=args.ts, delete=True)]
    return [build_event(doc_id=args.doc_id or args.doc_id_pos or str(uuid.uuid4()), text=args.text,
                        source=args.source, ts=args.ts, metadata=parse_pairs(args.metadata, option="--metadata"))]


def open_stream(args: argparse.Namespace) -> Stream:
    return AwsResources(args).stream()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def body() -> int:
        events = load_events(args)  # validated before anything is sent
        if args.local:
            return send_local(args, events)
        code, _ = send(args, open_stream(args), events)
        return code

    return run_cli(body, region=lambda: current_region(args))


def send(args: argparse.Namespace, stream: Stream, events: list) -> tuple[int, list]:
    """Put the events and print where they landed; 1 if any could not be sent. Also returns (receipt, event) for
    each event sent."""
    if args.file is None:
        receipt = stream.put(events[0])
        if args.json:
            print(json.dumps({"doc_id": receipt.doc_id, "op": events[0].op, "shard_id": receipt.shard_id,
                              "sequence_number": receipt.sequence_number}))
        else:
            print(f"put {events[0].op} doc_id={receipt.doc_id} shard={receipt.shard_id} "
                  f"sequence={receipt.sequence_number}")
        return 0, [(receipt, events[0])]
    report = send_all(stream, events, progress=progress_printer("sending"))
    for event, code in report.failed:
        print(f"failed doc_id={event.doc_id}: {code}", file=sys.stderr)
    if args.json:
        print(json.dumps({"sent": len(report.sent), "failed": len(report.failed), "retried": report.retries}))
    else:
        print(f"sent {len(report.sent)}, failed {len(report.failed)} (retried {report.retries} entries)")
    return (1 if report.failed else 0), report.delivered


def send_local(args: argparse.Namespace, events: list) -> int:
    """Put the events on the local stream, index them before returning (the local "event source mapping"), and
    say what became of each: 1 if any was not indexed."""
    from rtrag.local.compose import LocalBackend

    local = LocalBackend()
    try:
        code, sent = send(args, local.producer, events)
        local.drain()
        outcomes = local.outcomes(sent)
    finally:
        local.close()
    problems = [o for o in outcomes if not o.ok]
    if args.file is not None:
        counts = {status: sum(o.status == status for o in outcomes)
                  for status in ("indexed", "deleted", "ignored", "dead-lettered", "failed")}
        if args.json:
            print(json.dumps({"documents": counts}))
        else:
            print("documents: " + ", ".join(f"{n} {status}" for status, n in counts.items() if n or status == "indexed"))
    for outcome in problems[:20]:
        see = f"; see `redrive.py show {outcome.dead_letter} --local`" if outcome.dead_letter else ""
        print(f"error: doc_id={outcome.doc_id}: {outcome.message}{see}", file=sys.stderr)
    if len(problems) > 20:
        print(f"error: ... and {len(problems) - 20} more document(s) not indexed", file=sys.stderr)
    return 1 if problems else code


if __name__ == "__main__":
    raise SystemExit(main())
