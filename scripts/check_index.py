#!/usr/bin/env python3
"""Check a vector index against the version ledger: each document's vectors must be exactly doc#0..n-1 of its
stored version. Reports orphans (vectors beyond a document's chunk count, of a deleted document, or of one the
ledger does not know: a query could return them) and missing chunks; --fix deletes the orphans.

Documents whose ledger entry an unfinished attempt left dirty are not judged (a redelivery finishes them), nor are
documents with no vector at all (the ledger is not scanned). While the indexer runs, a document being written can
look orphaned for a moment: --fix needs it paused (locally the script pauses the local runner; on AWS disable the
indexer's event source mapping and pass --indexer-disabled).

Exit status: 0 when the index holds exactly what the ledger says (or --fix deleted every orphan and nothing is
missing); 1 otherwise.

examples:
  python scripts/check_index.py --local                           # the local pipeline's index
  python scripts/check_index.py                                   # the deployed pipeline's index
  python scripts/check_index.py --vector-index chunks-512 --json
  python scripts/check_index.py --fix --indexer-disabled          # delete the orphans, the indexer paused
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rtrag.cli.common import add_aws_arguments, current_region, run_cli, script_parser
from rtrag.cli.hints import pause_indexer
from rtrag.cli.resources import AwsResources, add_resource_arguments, named_by_flag
from rtrag.cli.safe import one_line
from rtrag.core import contract
from rtrag.core.errors import UserError
from rtrag.workflows.check import CheckReport, check_index

SHOWN = 20  # findings printed one per line; --json has them all


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = script_parser("check_index.py", __doc__)
    add_resource_arguments(parser, contract.VECTOR_BUCKET, contract.VERSION_TABLE)
    parser.add_argument(contract.VECTOR_INDEX.flag, help=f"the vector index (default: {contract.VECTOR_INDEX.env}, "
                        f"then the stack's {contract.VECTOR_INDEX.output}); with --local, a named index under "
                        "$RAG_LOCAL_DIR/indexes/")
    parser.add_argument("--fix", action="store_true", help="delete the orphan vectors (missing chunks are only "
                        "reported: put those documents again)")
    parser.add_argument("--indexer-disabled", action="store_true", help="with --fix on AWS: you have stopped every "
                        "writer of the index (the indexer's event source mapping disabled, no reindex.py into it)")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    parser.add_argument("--local", action="store_true", help="check an index of the local pipeline under "
                        ".rag-local/ (or $RAG_LOCAL_DIR)")
    add_aws_arguments(parser)
    return parser.parse_args(argv)


class Local:
    def __init__(self, args: argparse.Namespace):
        from rtrag.local.compose import LocalBackend

        if named := named_by_flag(args, contract.VECTOR_BUCKET, contract.VERSION_TABLE):
            raise UserError(f"{named.flag} names an AWS resource; local mode has one ledger per index (leave it "
                            "out, or drop --local)")
        self.args = args
        self.backend = LocalBackend()
        self.index = self.backend.index_to_ask(args.vector_index)
        self.ledger = self.backend.ledger_of(self.index)
        self.description = f"local-index:{Path(self.index.path).resolve()}"

    def sole_writer(self) -> contextlib.AbstractContextManager[Any]:
        return self.backend.sole_writer(self.args.vector_index)

    def close(self) -> None:
        self.backend.close()


class Aws:
    def __init__(self, args: argparse.Namespace):
        res = AwsResources(args)
        bucket, name = res.name(contract.VECTOR_BUCKET), res.name(contract.VECTOR_INDEX)
        self.args, self.name = args, name
        self.index = res.backend.vector_index(bucket, name)  # GetIndex: its dimension and generation
        self.ledger = res.backend.ledger(res.name(contract.VERSION_TABLE), bucket, name,
                                         generation=self.index.generation)
        self.pipelines = (bucket, name) == (res.deployed(contract.VECTOR_BUCKET), res.deployed(contract.VECTOR_INDEX))
        self.description = f"index:{bucket}/{name}"
        self.function = res.indexer_function()

    @contextlib.contextmanager
    def sole_writer(self) -> Iterator[None]:
        """Nothing here can hold other writers off an S3 Vectors index: the user says they are stopped."""
        if not self.args.indexer_disabled:
            writes = ("the pipeline's indexer writes" if self.pipelines else
                      "the pipeline's indexer (if it is the pipeline's) or a reindex.py into it may write")
            raise UserError(f"--fix on vector index {self.name}, which {writes}, would delete the vectors of a "
                            "document being written at that moment: stop every writer first (any reindex.py into "
                            f"it; the indexer:) {pause_indexer(self.function)}")
        yield

    def close(self) -> None:
        pass


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def body() -> int:
        target = Local(args) if args.local else Aws(args)
        try:
            progress = counter()
            with target.sole_writer() if args.fix else contextlib.nullcontext():
                try:
                    report = check_index(target.index, target.ledger, fix=args.fix, progress=progress)
                finally:
                    progress.end()
            return show(args, report, target.description)
        finally:
            target.close()

    return run_cli(body, region=lambda: current_region(args))


class counter:  # noqa: N801 - used as a function
    """The count of vectors listed so far, redrawn on one line of a terminal (ended by ``end``); nothing in logs
    and pipes."""

    def __init__(self) -> None:
        self.out = getattr(sys.stderr, "raw", sys.stderr)  # its carriage return is ours: not escaped
        self.shown = False

    def __call__(self, listed: int) -> None:
        if self.out.isatty():
            self.out.write(f"\rlisted {listed} vector(s)")
            self.out.flush()
            self.shown = True

    def end(self) -> None:
        if self.shown:
            self.out.write("\n")
            self.out.flush()


def show(args: argparse.Namespace, report: CheckReport, description: str) -> int:
    orphans = sum(len(f.keys) for f in report.orphans)
    missing = sum(len(f.keys) for f in report.missing)
    if args.json:
        print(json.dumps({"index": description, **report.to_json()}))
    else:
        print(f"checked {report.vectors} vector(s) of {report.documents} document(s) in {description}")
        for finding in report.findings[:SHOWN]:
            keys = " ".join(finding.keys[:5]) + (f" (+{len(finding.keys) - 5} more)" if len(finding.keys) > 5 else "")
            print(f"{finding.kind:7} {one_line(keys)}: {finding.reason}")
        if len(report.findings) > SHOWN:
            print(f"... and {len(report.findings) - SHOWN} more (--json lists them all)")
        print(summary(report, orphans, missing))
    if not report.vectors:
        print("note: the index holds no vector: nothing was checked", file=sys.stderr)
    if report.unfinished:
        print(f"note: {report.unfinished} document(s) have an unfinished attempt (a dirty ledger entry) and were not "
              "judged: the redelivery of their last event finishes them (if it was dead-lettered: redrive it, or put "
              "the document again)", file=sys.stderr)
    if missing and args.fix:
        print(f"the {report.marked} document(s) missing chunks are marked in the ledger: put each again "
              "(put_event.py; the same text will do) and it is written whole", file=sys.stderr)
    elif missing:
        print("run it again with --fix, then put the documents missing chunks again (put_event.py; the same text will "
              "do: --fix marks them so that their next put is written whole)", file=sys.stderr)
    if orphans and not args.fix:
        print("run it again with --fix to delete the orphans (see --help: the indexer must be paused)",
              file=sys.stderr)
    return 1 if missing or (orphans and not args.fix) else 0


def summary(report: CheckReport, orphans: int, missing: int) -> str:
    if not orphans and not missing:
        return "the index holds exactly the stored version of every document checked"
    parts = []
    if orphans:
        deleted = f", {report.deleted} deleted" if report.deleted else ""
        parts.append(f"{orphans} orphan vector(s) of {len(report.orphans)} document(s){deleted}")
    if missing:
        parts.append(f"{missing} missing chunk(s) of {len(report.missing)} document(s)")
    return "; ".join(parts)


if __name__ == "__main__":
    raise SystemExit(main())
