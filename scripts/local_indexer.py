#!/usr/bin/env python3
"""Run the local event source mapping: deliver what is on the local stream to the indexer handler.

put_event.py --local already indexes its own events before it returns; run this with --follow to index events
that other processes put on the local stream (for example a producer of your own using rtrag.local).

examples:
  python scripts/local_indexer.py              # index what is on the local stream now, then exit
  python scripts/local_indexer.py --follow     # keep indexing as events arrive (Ctrl-C to stop)
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from rtrag.cli.common import run_cli, script_parser


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = script_parser("local_indexer.py", __doc__)
    parser.add_argument("--follow", action="store_true", help="keep polling the stream until interrupted")
    parser.add_argument("--poll-interval", type=float, default=1.0, help="seconds between polls when idle "
                        "(default 1.0, like the event source mapping's once-a-second poll)")
    parser.add_argument("--json", action="store_true", help="print the run summary as JSON")
    args = parser.parse_args(argv)
    if not 0.01 <= args.poll_interval <= 3600:  # NaN fails too; 0 would spin a core
        parser.error(f"--poll-interval must be 0.01..3600 seconds (got {args.poll_interval})")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def body() -> int:
        from rtrag.local.compose import LocalBackend

        backend = LocalBackend()
        try:
            # The handler dead-letters a bad record and goes on (its response cannot say so): count the letters
            # this process writes (not those of other processes meanwhile).
            if args.follow:
                stop = threading.Event()
                for sig in (signal.SIGINT, signal.SIGTERM):
                    signal.signal(sig, lambda *_: stop.set())  # finish the batch in hand, then stop
                print(f"indexing new events from {backend.root}/stream (Ctrl-C to stop)", file=sys.stderr)
                summary = backend.follow(poll_interval=args.poll_interval, stop_event=stop, on_pass=lambda s: print(
                    f"processed {s.records} record(s) in {s.batches} batch(es)", file=sys.stderr, flush=True))
            else:
                summary = backend.drain()
            dead_lettered = backend.dead_letters.written
        finally:
            backend.close()
        line = {"batches": summary.batches, "records": summary.records, "dead_lettered": dead_lettered,
                "failures": summary.failures, "on_failure_records": summary.on_failure_records}
        print(json.dumps(line) if args.json else
              f"processed {summary.records} record(s) in {summary.batches} batch(es): {dead_lettered} dead-lettered "
              f"as invalid; {summary.failures} failed invocation(s), {summary.on_failure_records} record(s) sent to "
              "dead-letters/aws/lambda/")
        if dead_lettered or summary.on_failure_records:
            print("error: some records were not indexed: see `python scripts/redrive.py list --local`",
                  file=sys.stderr)
            return 1
        return 0

    return run_cli(body)


if __name__ == "__main__":
    raise SystemExit(main())
