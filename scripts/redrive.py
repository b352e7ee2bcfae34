#!/usr/bin/env python3
"""List dead letters, see why each failed, and put them back on the stream once the cause is fixed.

Two kinds live in the dead-letter bucket: "invalid" (invalid/...: a record the indexer could never index, kept
with its data and reason) and "batch" (aws/lambda/...: a batch the event source mapping gave up on; its records
are in the letter, or are read again from the stream while its retention keeps them). A redriven item is marked
(redriven/<key>.json, with the new sequence numbers) and is not sent again unless --force.

examples:
  python scripts/redrive.py list                                  # both kinds, oldest first
  python scripts/redrive.py list --kind batch --pending --json
  python scripts/redrive.py show invalid/2026/03/01/shardId-000000000000/4960...8898.json
  python scripts/redrive.py send --all --kind batch --dry-run     # what would be sent
  python scripts/redrive.py send --all --kind batch               # after fixing the cause (quota, access, ...)
  python scripts/redrive.py send invalid/2026/03/01/shardId-000000000000/4960...8898.json --force
  python scripts/redrive.py list --local                          # the local pipeline's dead letters
"""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack

from rtrag.cli.common import add_aws_arguments, current_region, progress_printer, run_cli, script_parser
from rtrag.cli.hints import with_fix
from rtrag.cli.resources import AwsResources, add_resource_arguments, named_by_flag
from rtrag.cli.safe import one_line, safe_json
from rtrag.core import contract
from rtrag.core.errors import UserError
from rtrag.core.files import file_lock
from rtrag.workflows.redrive import KINDS, Fix, Letter, Redriver, iso


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    common = argparse.ArgumentParser(add_help=False)
    add_resource_arguments(common, contract.STREAM, contract.DEAD_LETTER_BUCKET)
    common.add_argument("--json", action="store_true", help="print machine-readable results")
    common.add_argument("--local", action="store_true", help="use the local pipeline's dead letters and stream "
                        "under .rag-local/ (or $RAG_LOCAL_DIR); redriven events are indexed before it returns")
    add_aws_arguments(common)
    parser = script_parser("redrive.py", __doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="{list,show,send}")
    listing = commands.add_parser("list", parents=[common], help="list dead letters of both kinds")
    listing.add_argument("--kind", choices=sorted(KINDS), help="only this kind")
    listing.add_argument("--pending", action="store_true", help="only items not redriven yet")
    show = commands.add_parser("show", parents=[common], help="show one item in full, its data decoded")
    show.add_argument("key")
    send = commands.add_parser("send", parents=[common], help="put items back on the stream and mark them")
    send.add_argument("keys", nargs="*", metavar="KEY")
    send.add_argument("--all", action="store_true", help="every item (of --kind) not redriven yet")
    send.add_argument("--kind", choices=sorted(KINDS), help="with --all: only this kind")
    send.add_argument("--force", action="store_true", help="send items already redriven, and invalid events "
                      "that the indexer would still reject")
    send.add_argument("--dry-run", action="store_true", help="say what would be sent; send nothing")
    args = parser.parse_args(argv)
    if args.command == "send" and bool(args.keys) == bool(args.all):
        send.error("give KEY... or --all")
    if args.command == "send" and args.kind and not args.all:
        send.error("--kind goes with --all")
    return args


class Session:
    """The dead letters and the stream, local or deployed."""

    def __init__(self, args: argparse.Namespace):
        self.local = None
        if args.local:
            from rtrag.local.compose import LocalBackend

            if named := named_by_flag(args, contract.STREAM, contract.DEAD_LETTER_BUCKET):
                raise UserError(f"{named.flag} names an AWS resource; local mode has one stream and one dead-letter "
                                "directory (leave it out, or drop --local)")
            self.local = LocalBackend()
            self.redriver = Redriver(self.local.dead_letters, stream=self.local.producer,
                                     reader=self.local.range_reader(), stream_name=self.local.stream.name)
            return
        res = AwsResources(args)
        # The stream is only resolved when something is sent; listing needs the bucket alone.
        stream = res.stream() if args.command == "send" and not args.dry_run else None
        self.redriver = Redriver(res.dead_letters(), stream=stream, reader=res.backend.range_reader(),
                                 stream_name=stream.stream_name if stream else "",
                                 max_ts_skew_seconds=res.max_ts_skew_seconds())

    def close(self, *, drain: bool) -> None:
        if self.local is not None:
            if drain:
                self.local.drain()  # the local "event source mapping": indexed before the command returns
            self.local.close()


def print_letters(letters: list[Letter]) -> None:
    for letter in letters:
        docs = ",".join(letter.doc_ids) or "-"
        state = f"redriven {letter.marker.get('redriven_at')}" if letter.marker else "not redriven"
        print(letter.key)
        print(f"  {letter.kind} ({letter.detail})  doc_id={docs}  shard={letter.shard_id}  "
              f"sequence={letter.sequence}  arrived={iso(letter.arrival)}  dead-lettered={iso(letter.dead_lettered_at)}"
              f"  {state}")
        print(f"  reason: {letter.reason}")
    invalid = sum(1 for letter in letters if letter.kind == "invalid")
    done = sum(1 for letter in letters if letter.marker)
    print(f"{len(letters)} item(s): {invalid} invalid, {len(letters) - invalid} batch; {done} already redriven")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def body() -> int:
        session = Session(args)
        sent = False
        with ExitStack() as stack:  # the local send lock, released after the session closes
            try:
                redriver = session.redriver
                if args.command == "list":
                    letters = [x for x in redriver.letters(args.kind) if not (args.pending and x.marker)]
                    if args.json:
                        print(safe_json([x.summary() for x in letters]))
                    else:
                        print_letters(letters)
                    return 0
                if args.command == "show":
                    shown = redriver.show(args.key)
                    if shown.get("records_fix"):
                        shown["records_error"] = with_fix(shown["records_error"], Fix(shown["records_fix"]))
                    print(safe_json(shown, indent=2))
                    return 0
                if session.local is not None and not args.dry_run:
                    held = stack.enter_context(file_lock(session.local.root / "redrive.lock"))
                    if not held:
                        raise UserError("another redrive.py send is running on the local dead letters: wait for it to "
                                        "finish (two at once would send the same letters twice)")
                letters = redriver.letters(args.kind) if args.all else redriver.find(args.keys)
                if args.all and not args.force:
                    letters = [x for x in letters if not x.marker]
                outcomes = redriver.send(letters, force=args.force, dry_run=args.dry_run,
                                         progress=progress_printer("redriving"))
                sent = any(o.status == "sent" for o in outcomes)
                if args.json:
                    print(safe_json([o.to_json() for o in outcomes]))
                else:
                    for o in outcomes:
                        new = f" -> {', '.join(r.sequence_number for r in o.receipts)}" if o.receipts else ""
                        print(f"{o.status} {o.key}: {with_fix(o.message, o.fix)}{new}")
                    counts = {s: sum(1 for o in outcomes if o.status == s)
                              for s in ("sent", "would-send", "skipped", "refused", "failed")}
                    print(", ".join(f"{n} {s}" for s, n in counts.items() if n) or "nothing to redrive")
                code = 1 if any(o.status in ("refused", "failed") for o in outcomes) else 0
                if session.local is not None and sent:
                    # The local "event source mapping": indexed before the command returns, and what failed again said.
                    session.local.drain()
                    sent = False
                    again = session.local.dead_lettered([r for o in outcomes for r in o.receipts])
                    for receipt, key, reason in again:
                        print(f"dead-lettered again: doc_id={one_line(receipt.doc_id)} (now {key}): {one_line(reason)}",
                              file=sys.stderr)
                    if again:
                        code = 1
                return code
            finally:
                session.close(drain=sent)

    return run_cli(body, region=lambda: current_region(args))


if __name__ == "__main__":
    raise SystemExit(main())
