#!/usr/bin/env python3
"""Put document events on the pipeline's Kinesis stream.

examples:
  python scripts/put_event.py "Project Nimbus ships its v3 release on 2026-08-14 and drops Python 3.9 support." \\
      nimbus-v3
  python scripts/put_event.py --doc-id runbook-42 --source wiki --metadata team=platform --metadata tier=1 \\
      "Rotate the signing keys every 90 days."
  python scripts/put_event.py --delete nimbus-v3
  python scripts/put_event.py --file events.jsonl          # JSON Lines of document events; '-' reads stdin
  python scripts/put_event.py --file events.jsonl --from-line 2501   # resume an interrupted send at line 2501
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import uuid
from typing import Any

from rtrag.cli.common import add_aws_arguments, current_region, progress_printer, run_cli, script_parser
from rtrag.cli.resources import AwsResources, add_resource_arguments
from rtrag.core import contract
from rtrag.core.errors import UserError
from rtrag.core.events import DELETE, DocumentEvent, has_surrogate
from rtrag.workflows.produce import (
    InvalidInput,
    Receipt,
    SendInterrupted,
    Stream,
    build_event,
    parse_pairs,
    read_jsonl_lines,
    send_all,
)

FROM_LINE = "--from-line"


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
    parser.add_argument(FROM_LINE, type=int, metavar="N", help="with --file: start at line N of the file (the "
                        "lines before it are not read); an interrupted send prints the N to resume from")
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
    if args.from_line is not None and (args.file is None or args.from_line < 1):
        parser.error(f"{FROM_LINE} N goes with --file, and N is a line number (1 or more)")
    # An option that would change nothing is refused, not ignored.
    one_event = {"--doc-id": args.doc_id, "--source": args.source, "--metadata": args.metadata or None,
                 "--ts": args.ts}
    if args.file is not None and (given := [flag for flag, value in one_event.items() if value is not None]):
        parser.error(f"{', '.join(given)}: with --file, each line is a whole event (put them in its lines)")
    if args.delete is not None and (given := [f for f in ("--doc-id", "--source", "--metadata")
                                              if one_event[f] is not None]):
        parser.error(f"{', '.join(given)}: --delete names the document, and a delete has no source or metadata "
                     "(leave them out)")
    if args.local and args.stream_name is not None:
        parser.error("--stream-name names an AWS resource; local mode has one stream (leave it out, or drop --local)")
    return args


def load_numbered(args: argparse.Namespace) -> list[tuple[int | None, DocumentEvent]]:
    """The events to send, each with its line number in --file (None for an event built from the arguments)."""
    if args.file is not None:
        first = args.from_line or 1
        if args.file == "-":
            numbered = read_jsonl_lines(sys.stdin, first_line=first)
        else:
            try:
                with open(args.file, encoding="utf-8") as lines:
                    numbered = read_jsonl_lines(lines, first_line=first)
            except OSError as exc:
                raise UserError(f"cannot read {args.file}: {exc.strerror}") from None
            except UnicodeDecodeError:
                raise InvalidInput(f"{args.file} is not UTF-8 text") from None
        if not numbered:
            raise UserError(f"{args.file} has no event from line {first} on: nothing to send" if first > 1
                            else f"{args.file} holds no event (only blank lines, or nothing): nothing to send")
        return numbered  # type: ignore[return-value]  # (int, event) pairs
    for name, value in (("TEXT", args.text), ("DOC_ID", args.doc_id or args.doc_id_pos or args.delete),
                        ("--source", args.source), ("--metadata", " ".join(args.metadata))):
        if has_surrogate(value or ""):  # bytes of another encoding on the command line arrive as lone surrogates
            raise InvalidInput(f"{name} is not valid UTF-8 text: type it in a UTF-8 terminal or locale, or put the "
                               "event in a UTF-8 file and send it with --file")
    if args.delete is not None:
        return [(None, build_event(doc_id=args.delete, ts=args.ts, delete=True))]
    return [(None, build_event(doc_id=args.doc_id or args.doc_id_pos or str(uuid.uuid4()), text=args.text,
                               source=args.source, ts=args.ts,
                               metadata=parse_pairs(args.metadata, option="--metadata")))]


def open_stream(args: argparse.Namespace) -> Stream:
    return AwsResources(args).stream()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    given = list(sys.argv[1:] if argv is None else argv)

    def body() -> int:
        numbered = load_numbered(args)  # validated before anything is sent
        events = [event for _, event in numbered]
        try:
            if args.local:
                return send_local(args, events)
            code, sent, report = send(args, open_stream(args), events)
            if report is None:
                print_receipt(args, *sent[0])
            else:
                print_sent(args, report)
            return code
        except SendInterrupted as stop:
            return report_interrupted(args, given, stop, [line for line, _ in numbered])

    return run_cli(body, region=lambda: current_region(args))


def report_interrupted(args: argparse.Namespace, given: list[str], stop: SendInterrupted,
                       lines: list[int | None]) -> int:
    """What an interrupted --file send had sent, the first line it had not, and the command that sends the rest."""
    report, total = stop.report, stop.total
    first = report.first_unacknowledged(total)
    where = "standard input" if args.file == "-" else args.file
    if first is None:
        print(f"interrupted: all {total} event(s) of {where} were sent", file=sys.stderr)
        resume = None
    else:
        line = lines[first]
        resume = line
        after = sum(1 for i in report.acknowledged if i > first)
        also = (f"; {after} event(s) after it were sent too and will be sent again (harmless: the greatest version "
                "of a document wins)") if after else ""
        print(f"interrupted: {len(report.sent)} of {total} event(s) were sent (acknowledged by the stream); "
              f"line {line} of {where} is the first not sent{also}", file=sys.stderr)
        again = [a for i, a in enumerate(given) if not _is_from_line(given, i)] + [FROM_LINE, str(line)]
        feed = " (with the same standard input)" if args.file == "-" else ""
        print(f"to send the rest{feed}: python scripts/put_event.py {shlex.join(again)}", file=sys.stderr)
    if args.json:
        print(json.dumps({"interrupted": True, "sent": len(report.sent), "total": total, "resume_from_line": resume}))
    return 130


def _is_from_line(argv: list[str], i: int) -> bool:
    """Whether ``argv[i]`` is part of a --from-line option (its flag, its value, or both in one)."""
    arg = argv[i]
    return arg == FROM_LINE or arg.startswith(FROM_LINE + "=") or (i > 0 and argv[i - 1] == FROM_LINE)


def send(args: argparse.Namespace, stream: Stream, events: list) -> tuple[int, list, Any]:
    """Put the events: 1 if any could not be sent, (receipt, event) for each event sent, and for --file the send's
    report (``print_sent`` says it; local mode first indexes, so that a reader that goes away early cannot stop
    the indexing)."""
    if args.file is None:
        return 0, [(stream.put(events[0]), events[0])], None
    report = send_all(stream, events, progress=progress_printer("sending"))
    return (1 if report.failed else 0), report.delivered, report


def print_sent(args: argparse.Namespace, report: Any) -> None:
    """What a --file send did: each event that could not be sent, then the counts."""
    for event, code in report.failed:
        print(f"failed doc_id={event.doc_id}: {code}", file=sys.stderr)
    if args.json:
        print(json.dumps({"sent": len(report.sent), "failed": len(report.failed), "retried": report.retries}))
    else:
        print(f"sent {len(report.sent)}, failed {len(report.failed)} (retried {report.retries} entries)")


def print_receipt(args: argparse.Namespace, receipt: Receipt, event: DocumentEvent, outcome: Any = None) -> None:
    """Where one event landed, and in local mode what became of it when it was not indexed (ignored as older than
    the stored version, dead-lettered or failed; the reason follows on stderr)."""
    if args.json:
        out = {"doc_id": receipt.doc_id, "op": event.op, "shard_id": receipt.shard_id,
               "sequence_number": receipt.sequence_number}
        if outcome is not None:
            out |= {"status": outcome.status, "reason": outcome.message or None}
        print(json.dumps(out))
    else:
        status = f": {outcome.status}, not indexed" if outcome is not None and not outcome.ok else ""
        print(f"put {event.op} doc_id={receipt.doc_id} shard={receipt.shard_id} "
              f"sequence={receipt.sequence_number}{status}")


def send_local(args: argparse.Namespace, events: list) -> int:
    """Put the events on the local stream, index them before returning (the local "event source mapping"), and
    say what became of each: 1 if any was not indexed."""
    from rtrag.local.compose import LocalBackend
    from rtrag.local.runner import ShardBusy

    local = LocalBackend()
    stopped = None  # why the indexing did not finish
    try:
        # A delete of a document neither indexed before nor put earlier in this same send removes nothing.
        live_before = local.live([e.doc_id for e in events if e.op == DELETE]) | {
            e.doc_id for e in events if e.op != DELETE}
        code, sent, report = send(args, local.producer, events)
        try:
            local.drain()
        except KeyboardInterrupt:
            stopped = KeyboardInterrupt
        except ShardBusy:  # a long drain or replay of another process holds the shards past the lease timeout
            stopped = ShardBusy
        outcomes = [] if stopped else local.outcomes(sent, live_before=live_before)
    finally:
        local.close()
    if report is not None:
        print_sent(args, report)
    if stopped is KeyboardInterrupt:
        print(f"interrupted while indexing: {len(sent)} event(s) were put on the local stream; "
              "`python scripts/local_indexer.py` indexes the rest of them", file=sys.stderr)
        return 130
    if stopped is ShardBusy:
        print(f"error: {len(sent)} event(s) were put on the local stream but not indexed yet: another process "
              "(a long drain or reindex.py) has held the stream's shards for over a minute; once it is done, "
              "`python scripts/local_indexer.py` indexes them", file=sys.stderr)
        return 1
    if args.file is None:
        [(receipt, event)], [outcome] = sent, outcomes
        print_receipt(args, receipt, event, outcome)
    problems = [o for o in outcomes if not o.ok]
    if args.file is not None:
        counts = {status: sum(o.status == status for o in outcomes)
                  for status in ("indexed", "deleted", "ignored", "dead-lettered", "failed")}
        if args.json:
            print(json.dumps({"documents": counts}))
        else:
            print("documents: " + ", ".join(f"{n} {status}" for status, n in counts.items() if n or status == "indexed"))
    for outcome in [o for o in outcomes if o.ok and o.message and not args.json][:20]:  # --json: in "reason"
        print(f"note: doc_id={outcome.doc_id}: {outcome.message}", file=sys.stderr)
    for outcome in problems[:20]:
        see = f"; see `redrive.py show {outcome.dead_letter} --local`" if outcome.dead_letter else ""
        print(f"error: doc_id={outcome.doc_id}: {outcome.message}{see}", file=sys.stderr)
    if len(problems) > 20:
        print(f"error: ... and {len(problems) - 20} more document(s) not indexed", file=sys.stderr)
    return 1 if problems else code


if __name__ == "__main__":
    raise SystemExit(main())
