#!/usr/bin/env python3
"""Measure answer quality: run a question set through the same retrieval and answering as ask.py, and report
recall@k and MRR of the expected documents, answer accuracy, the refusal rate on unanswerable questions, and
latency.

The question set is JSON Lines, one question per line:
  {"question": "...", "expected_doc_ids": ["doc-a"], "expected_answer": "35 days"}
  {"question": "...", "expected_doc_ids": ["doc-a", "doc-b"], "expected_answer": ["span from a", "span from b"]}
  {"question": "...", "answerable": false}
Optional keys: "tags" (a list of strings; the report breaks the figures down by tag) and "near_doc_ids" (for an
unanswerable question, the documents it is near; for the reader only). Any other key is refused, so that a
misspelt one is not ignored.
recall@K and MRR count the documents of the retrieved chunks: K chunks, or K for each part of a question of several
parts ("When did A launch, and when did B?"), which is what the answer is made from.
An answer is right when it is not a refusal and holds every expected_answer span (case and spacing ignored), or,
for a question with expected_doc_ids only, when its sources include all of them. An unanswerable question is
right when the answer is "The answer is not in the indexed documents."

examples:
  python scripts/evaluate.py --local                               # the shipped set on the local pipeline
  python scripts/evaluate.py --local --json                        # one JSON object, per-question details too
  python scripts/evaluate.py --questions my-set.jsonl --top-k 5    # your own set, on the deployed stack
  python scripts/evaluate.py --local --check                       # exit 1 if the goals are not met
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtrag.cli.asking import add_asking_arguments, build_filter, check_asking_arguments, open_asker
from rtrag.cli.common import REPO_ROOT, add_aws_arguments, current_region, progress_printer, run_cli, script_parser
from rtrag.cli.safe import one_line, safe_json
from rtrag.core.errors import RagError, TransientError, UserError
from rtrag.core.events import has_surrogate
from rtrag.workflows.answering import Asked, is_refusal

DEFAULT_QUESTIONS = REPO_ROOT / "eval" / "demo_questions.jsonl"
# The goals the shipped set is held to (README, "Answer quality"); --check applies them.
GOALS = {"answer_accuracy": 0.90, "refusal_rate": 0.80, "recall": 0.95}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = script_parser("evaluate.py", __doc__)
    parser.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS,
                        help=f"the question set, JSON Lines (default: {DEFAULT_QUESTIONS.relative_to(REPO_ROOT)})")
    add_asking_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object: figures and every question")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 unless answers >= 90%%, refusals >= 80%% and recall@k >= 0.95")
    add_aws_arguments(parser)
    args = parser.parse_args(argv)
    check_asking_arguments(parser, args)
    return args


@dataclass(frozen=True)
class Question:
    line: int
    text: str
    answerable: bool
    expected_doc_ids: tuple[str, ...] = ()
    expected_answer: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


QUESTION_FIELDS = frozenset({"question", "answerable", "expected_doc_ids", "expected_answer", "tags", "near_doc_ids"})


def load_questions(path: Path) -> list[Question]:
    """The question set; a line that is not a question is an error naming its line and the fix."""
    try:
        # JSON Lines ends a line at \n only: a U+2028 or a form feed inside a string is part of it.
        lines = path.read_text(encoding="utf-8").split("\n")
    except OSError as exc:
        raise UserError(f"--questions {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"--questions {path}: not UTF-8 text (byte {exc.start}); save it as UTF-8 JSON Lines") from None
    out = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        where = f"{path}:{number}"
        try:
            item = json.loads(raw)
        except ValueError as exc:
            raise UserError(f"{where}: not JSON ({exc})") from None
        if not isinstance(item, dict) or not isinstance(item.get("question"), str) or not item["question"].strip():
            raise UserError(f'{where}: each line needs a non-empty "question" string')
        if has_surrogate(item["question"]):  # written as a \\u escape
            raise UserError(f'{where}: the "question" holds an unpaired surrogate (\\ud800..\\udfff): '
                            "not text")
        unknown = sorted(set(item) - QUESTION_FIELDS)
        if unknown:  # a misspelt key would otherwise be ignored and the question scored on less than meant
            raise UserError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; the keys are "
                            f"{', '.join(sorted(QUESTION_FIELDS))}")
        tags = item.get("tags")
        tags = [] if tags is None else tags
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise UserError(f'{where}: "tags" is a list of strings')
        near = item.get("near_doc_ids")
        near = [] if near is None else near
        if not isinstance(near, list) or not all(isinstance(d, str) for d in near):
            raise UserError(f'{where}: "near_doc_ids" is a list of doc ids')
        answerable = item.get("answerable", True)
        if not isinstance(answerable, bool):
            raise UserError(f'{where}: "answerable" is true or false')
        # null or empty means "none given", as it always has; any other value is type-checked below.
        docs = item.get("expected_doc_ids")
        docs = [] if docs is None else docs
        spans = item.get("expected_answer")
        spans = [] if spans is None or spans == "" else spans
        spans = [spans] if isinstance(spans, str) else spans
        if not isinstance(docs, list) or not all(isinstance(d, str) and d for d in docs):
            raise UserError(f'{where}: "expected_doc_ids" is a list of doc ids')
        if not isinstance(spans, list) or not all(isinstance(s, str) and s.strip() for s in spans):
            raise UserError(f'{where}: "expected_answer" is a string or a list of strings')
        if answerable and not docs and not spans:
            raise UserError(f'{where}: give "expected_doc_ids" and/or "expected_answer", or "answerable": false')
        if not answerable and spans:
            raise UserError(f'{where}: an unanswerable question has no "expected_answer"')
        out.append(Question(number, item["question"], answerable, tuple(docs), tuple(spans), tuple(tags)))
    if not out:
        raise UserError(f"--questions {path}: no questions in it")
    return out


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def refused(asked: Asked) -> bool:
    return asked.answer is None or is_refusal(asked.answer.text)


@dataclass
class Scored:
    question: Question
    asked: Asked
    retrieved: list[str] = field(default_factory=list)  # doc ids in rank order, each once

    @property
    def refused(self) -> bool:
        return refused(self.asked)

    @property
    def recall(self) -> float | None:
        if not self.question.expected_doc_ids:
            return None
        found = set(self.retrieved) & set(self.question.expected_doc_ids)
        return len(found) / len(set(self.question.expected_doc_ids))

    @property
    def reciprocal_rank(self) -> float | None:
        if not self.question.expected_doc_ids:
            return None
        for rank, doc_id in enumerate(self.retrieved, start=1):
            if doc_id in self.question.expected_doc_ids:
                return 1.0 / rank
        return 0.0

    @property
    def right(self) -> bool:
        if not self.question.answerable:
            return self.refused
        if self.refused:
            return False
        assert self.asked.answer is not None
        if self.question.expected_answer:
            text = _normal(self.asked.answer.text)
            return all(_normal(span) in text for span in self.question.expected_answer)
        return set(self.question.expected_doc_ids) <= {h.doc_id for h in self.asked.answer.sources}

    def to_json(self) -> dict[str, Any]:
        answer = self.asked.answer
        return {"line": self.question.line, "question": self.question.text, "answerable": self.question.answerable,
                "tags": list(self.question.tags), "right": self.right, "refused": self.refused,
                "expected_doc_ids": list(self.question.expected_doc_ids),
                "expected_answer": list(self.question.expected_answer), "retrieved_doc_ids": self.retrieved,
                "recall": self.recall, "reciprocal_rank": self.reciprocal_rank,
                "answer": None if answer is None else answer.text, "total_ms": round(self.asked.total_ms, 1)}


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile by the nearest-rank method."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(len(ordered) * q / 100) - 1)] if ordered else 0.0


def summarize(scored: list[Scored], *, top_k: int) -> dict[str, Any]:
    answerable = [s for s in scored if s.question.answerable]
    unanswerable = [s for s in scored if not s.question.answerable]
    with_docs = [s for s in answerable if s.question.expected_doc_ids]
    latencies = [s.asked.total_ms for s in scored]

    def mean(values: list[float]) -> float | None:
        return round(sum(values) / len(values), 4) if values else None

    return {
        "questions": len(scored), "answerable": len(answerable), "unanswerable": len(unanswerable), "top_k": top_k,
        f"recall@{top_k}": mean([s.recall for s in with_docs if s.recall is not None]),
        "mrr": mean([s.reciprocal_rank for s in with_docs if s.reciprocal_rank is not None]),
        "answer_accuracy": mean([1.0 if s.right else 0.0 for s in answerable]),
        "refusal_rate": mean([1.0 if s.refused else 0.0 for s in unanswerable]),
        "false_refusal_rate": mean([1.0 if s.refused else 0.0 for s in answerable]),
        "latency_ms": {"p50": round(percentile(latencies, 50), 1), "p95": round(percentile(latencies, 95), 1)},
        "by_tag": {tag: {"questions": len(group), "right": sum(s.right for s in group)}
                   for tag in sorted({t for s in scored for t in s.question.tags})
                   for group in [[s for s in scored if tag in s.question.tags]]},
    }


def missed_goals(summary: dict[str, Any]) -> list[str]:
    figures = {"answer_accuracy": summary["answer_accuracy"], "refusal_rate": summary["refusal_rate"],
               "recall": summary[f"recall@{summary['top_k']}"]}
    return [f"{name} {value} < {GOALS[name]}" for name, value in figures.items()
            if value is not None and value < GOALS[name]]


def print_report(summary: dict[str, Any], scored: list[Scored], source: Path) -> None:
    k = summary["top_k"]
    try:
        source = source.resolve().relative_to(Path.cwd())
    except ValueError:
        pass

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.0%}"

    print(f"{summary['questions']} questions from {source} ({summary['answerable']} answerable, "
          f"{summary['unanswerable']} unanswerable), top-k {k}\n")
    rows = [("answers right", pct(summary["answer_accuracy"])),
            ("unanswerable refused", pct(summary["refusal_rate"])),
            ("answerable refused", pct(summary["false_refusal_rate"])),
            (f"recall@{k}", "n/a" if summary[f"recall@{k}"] is None else f"{summary[f'recall@{k}']:.3f}"),
            ("MRR", "n/a" if summary["mrr"] is None else f"{summary['mrr']:.3f}"),
            ("latency p50 / p95", f"{summary['latency_ms']['p50']:.0f} / {summary['latency_ms']['p95']:.0f} ms")]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    if summary["by_tag"]:
        tags = summary["by_tag"].items()
        print("\n  by tag: " + ", ".join(f"{tag} {v['right']}/{v['questions']}" for tag, v in tags))
    wrong = [s for s in scored if not s.right]
    if wrong:
        print(f"\n{len(wrong)} wrong:")
        for s in wrong:
            expected = ("a refusal" if not s.question.answerable else
                        " + ".join(s.question.expected_answer) or " + ".join(s.question.expected_doc_ids))
            answer = "(no answer)" if s.asked.answer is None else s.asked.answer.text
            print(f"  line {s.question.line}: {one_line(s.question.text)}\n    expected {one_line(expected)}; "
                  f"got {one_line(answer[:160])}")


# A question whose call fails transiently (throttled, including mid-answer, which botocore does not retry) is
# asked again, after these pauses, before the run stops.
RETRY_PAUSES_S = (2.0, 8.0)


def ask_with_retries(asker: Any, question: Question, args: argparse.Namespace, filter_: dict | None, *,
                     evaluated: int, of: int, sleep: Any = time.sleep) -> Asked:
    """``question`` asked, again after a transient failure (``RETRY_PAUSES_S``); a failure that stays, or any
    other, stops the run with a note of where."""
    for pause in (*RETRY_PAUSES_S, None):
        try:
            return asker.ask(question.text, top_k=args.top_k, filter=filter_, max_distance=args.max_distance)
        except RagError as exc:
            transient = isinstance(exc, TransientError)
            if transient and pause is not None:
                sleep(pause)
                continue
            print(f"note: stopped at line {question.line} of {args.questions} ({evaluated} of {of} questions "
                  f"evaluated){'; run it again later' if transient else ''}", file=sys.stderr)
            raise
    raise AssertionError("unreachable: the last attempt returns or raises")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def body() -> int:
        questions = load_questions(args.questions)
        filter_ = build_filter(args)
        progress = progress_printer("evaluating")
        scored = []
        with open_asker(args) as asker:
            for done, question in enumerate(questions, start=1):
                asked = ask_with_retries(asker, question, args, filter_, evaluated=done - 1, of=len(questions))
                scored.append(Scored(question, asked, list(dict.fromkeys(h.doc_id for h in asked.retrieval.hits))))
                progress(done, len(questions))
        summary = summarize(scored, top_k=args.top_k)
        missed = missed_goals(summary)
        if args.json:
            print(safe_json(summary | {"goals_missed": missed, "results": [s.to_json() for s in scored]}))
        else:
            print_report(summary, scored, args.questions)
            if args.check:
                print("\ngoals: " + ("met" if not missed else "MISSED: " + "; ".join(missed)))
        return 1 if args.check and missed else 0

    return run_cli(body, region=lambda: current_region(args))


if __name__ == "__main__":
    sys.exit(main())
