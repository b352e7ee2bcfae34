#!/usr/bin/env python3
"""Mutation check of the version guarantee's tests: break the indexer in one way at a time and make sure the model
test (tests/test_guarantees.py) or the indexer tests catch it. A mutant that survives is a hole in the tests.

    make mutants            # every mutant (a few minutes)
    python tests/mutants.py no-intent tombstone-ignored

Each mutant is a (file, original text, replacement); the file is restored afterwards, whatever happens.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ["tests/test_guarantees.py", "tests/test_indexer.py", "tests/test_tombstones.py"]
MUTANTS = {
    "winner-by-record-order": ("lambda_src/rtrag/indexing/batch.py",
                               "                if doc.version <= current.version:\n"
                               "                    self._superseded.setdefault(event.doc_id, []).append(doc)\n"
                               "                    continue\n", ""),
    "no-intent": ("lambda_src/rtrag/indexing/plan.py", "    if chunks <= covered and not clean_live:\n        return None",
                  "    return None"),
    "unchanged-does-not-raise": ("lambda_src/rtrag/indexing/plan.py",
                                 "return Plan(Action.UNCHANGED, commit=entry._replace(version=version, updated_at=stamp))",
                                 "return Plan(Action.STALE)"),
    "dirty-ignored": ("lambda_src/rtrag/core/versions.py", "        return self.state == LIVE and not self.dirty",
                      "        return self.state == LIVE"),
    "stale-keys-from-committed-chunks": (
        "lambda_src/rtrag/indexing/plan.py", "stale = tuple(vector_key(doc_id, i) for i in range(chunks, reach))",
        "stale = tuple(vector_key(doc_id, i) for i in range(chunks, entry.chunks if entry else 0))"),
    "commit-despite-failed-write": ("lambda_src/rtrag/indexing/writer.py",
                                    "        for doc, exc in put_failures + delete_failures:\n"
                                    "            if not doc.done:\n                fail(doc, exc)\n", ""),
    "redrive-without-version": ("lambda_src/rtrag/core/events.py", "    return event.to_bytes()\n\n\ndef validate_event",
                                "    return data\n\n\ndef validate_event"),
    "tombstone-ignored": ("lambda_src/rtrag/indexing/plan.py",
                          "    if entry is not None and entry.version is not None and version <= entry.version:",
                          "    if entry is not None and entry.state != DELETED and entry.version is not None "
                          "and version <= entry.version:"),
    "no-doc0-for-unknown-documents": ("lambda_src/rtrag/indexing/plan.py",
                                      "keys = tuple(vector_key(doc_id, i) for i in range(max(reach, 1)))",
                                      "keys = tuple(vector_key(doc_id, i) for i in range(reach))"),
    "equal-version-applied-again": ("lambda_src/rtrag/indexing/plan.py", "version <= entry.version:",
                                    "version < entry.version:"),
    "earlier-index-entries-trusted": ("lambda_src/rtrag/aws/ledger.py",
                                      "                if self._of_another_generation(item, entry):\n",
                                      "                if False:\n"),
    "earlier-index-reach-dropped": ("lambda_src/rtrag/aws/ledger.py",
                                    "                    entry = _as_of_another_index(entry)\n",
                                    "                    continue\n"),
    "writes-left-in-flight": ("lambda_src/rtrag/indexing/batch.py",
                              "                wait(self._started)\n                result.embedding_calls",
                              "                result.embedding_calls"),
    "ledger-parts-left-in-flight": ("lambda_src/rtrag/aws/ledger.py", "        wait(futures)\n", ""),
    "expired-tombstone-still-holds": ("lambda_src/rtrag/indexing/plan.py",
                                      "    if entry is not None and entry.forgotten(now):\n        entry = None\n", ""),
    "intent-keeps-expiry": ("lambda_src/rtrag/indexing/plan.py", "dirty=True, reach=max(reach, chunks), expires_at=None,",
                            "dirty=True, reach=max(reach, chunks),"),
    "refused-winner-not-replaced": ("lambda_src/rtrag/indexing/batch.py",
                                    "fallbacks = self._runners_up(docs, result)", "fallbacks = []"),
    "refused-undo-over-a-raise": ("lambda_src/rtrag/indexing/batch.py",
                                  " and d.action != Action.UNCHANGED and ", " and "),
    "refused-intent-left-dirty": ("lambda_src/rtrag/indexing/batch.py", "                self._restore_entries(docs)",
                                  "                pass"),
}


def run(name: str) -> bool:
    """True if the tests catch the mutant."""
    path, original, replacement = MUTANTS[name]
    file = ROOT / path
    source = file.read_text()
    if original not in source:
        raise SystemExit(f"mutant {name}: its original text is no longer in {path}; update tests/mutants.py")
    try:
        file.write_text(source.replace(original, replacement, 1))
        result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-p",
                                 "no:logging", "--tb=no", *TESTS], cwd=ROOT, capture_output=True, text=True)
    finally:
        file.write_text(source)
    return result.returncode != 0


def main(argv: list[str]) -> int:
    names = argv or list(MUTANTS)
    survivors = []
    for name in names:
        caught = run(name)
        print(f"{'caught  ' if caught else 'SURVIVED'} {name}", flush=True)
        if not caught:
            survivors.append(name)
    print(f"{len(names) - len(survivors)} of {len(names)} mutants caught")
    return 1 if survivors else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
