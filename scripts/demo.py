#!/usr/bin/env python3
"""The pipeline on this machine in a minute, no AWS account: stream a sample corpus, then put a fact, ask about
it, update it, delete it, and see the answers change, with how long each event took to become searchable.

It runs the same commands you would (put_event.py --local, ask.py --local), in one process so the offline model
loads once. State goes under .rag-local/ (or $RAG_LOCAL_DIR).

examples:
  make demo
  python scripts/demo.py
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path

import ask  # scripts/ is this script's directory, so its neighbours import as modules
import put_event
from rtrag.cli.common import script_parser
from rtrag.core.events import content_hash
from rtrag.workflows.retrieval import retrieve

HERE = Path(__file__).resolve().parent

CORPUS = HERE / "sample_corpus.jsonl"
QUESTION = "When does Project Nimbus v3 ship and what does it drop?"
FACT = "Project Nimbus ships its v3 release on 2026-08-14 and drops Python 3.9 support."
UPDATE = "Project Nimbus v3 slipped: it now ships on 2026-09-01 and drops Python 3.9 and 3.10 support."
DOC_ID = "nimbus-v3"


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def command(script: str, *args: str) -> list[str]:
    print("$ python scripts/" + script + " " + " ".join(shlex.quote(a) for a in args), flush=True)
    return list(args)


def searchable_after(started: float, text: str | None) -> str:
    """Query until the document's current version is returned (or, for a delete, no longer returned)."""
    from rtrag.local.compose import LocalBackend

    backend = LocalBackend()
    try:
        while True:
            hits = retrieve(text or FACT, embedder=backend.embedder, index=backend.index, top_k=5,
                            max_distance=2.0).hits
            mine = [h for h in hits if h.doc_id == DOC_ID]
            if (text is None and not mine) or (text and mine and mine[0].metadata.get("content_hash")
                                                == content_hash(text)):
                what = "gone from the index" if text is None else "searchable"
                return f"   -> {what} {(time.perf_counter() - started) * 1000:.0f} ms after the put started"
            if time.perf_counter() - started > 30:
                return "   -> NOT searchable after 30 s: see .rag-local/dead-letters/"
            time.sleep(0.005)
    finally:
        backend.close()


def put(*args: str, text: str | None) -> int:
    started = time.perf_counter()
    code = put_event.main(command("put_event.py", "--local", *args))
    if code == 0:
        print(searchable_after(started, text), flush=True)
    return code


def main(argv: list[str] | None = None) -> int:
    script_parser("demo.py", __doc__).parse_args(argv)
    started = time.perf_counter()
    step(f"1. Stream a sample corpus ({sum(1 for _ in CORPUS.open())} documents) and index it")
    command("put_event.py", "--local", "--file", str(CORPUS.relative_to(HERE.parent)))
    if put_event.main(["--local", "--file", str(CORPUS)]) != 0:
        return 1
    step("2. Ask a question the corpus answers")
    ask.main(command("ask.py", "--local", "How often are signing keys rotated?"))

    step("3. Stream a new fact, then ask about it")
    if put(FACT, DOC_ID, "--source", "release-notes", text=FACT) != 0:
        return 1
    ask.main(command("ask.py", "--local", QUESTION))

    step("4. Update the fact: the answer changes")
    if put(UPDATE, DOC_ID, "--source", "release-notes", text=UPDATE) != 0:
        return 1
    ask.main(command("ask.py", "--local", QUESTION))

    step("5. Delete the fact: the pipeline says it does not know")
    if put("--delete", DOC_ID, text=None) != 0:
        return 1
    ask.main(command("ask.py", "--local", QUESTION))

    print(f"\nDone in {time.perf_counter() - started:.1f} s. Next: `make test`, then `make deploy` (see README).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
