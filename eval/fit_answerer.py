#!/usr/bin/env python3
"""Fit the local extractive answerer's two models on the tuning questions, and estimate how they generalize.

The answerer (rtrag/local/answerer.py) scores each sentence of the retrieved chunks as the answer to each part
of a question with a few interpretable features (``ExtractiveAnswerer.features``): how much of the question's
rare vocabulary the sentence holds, its similarity to the question, whether it says something of the kind asked
for (a time, a number, a name), and so on. Two logistic models weigh them:

- the selection model: which sentence holds the answer (trained on every candidate sentence of the answerable
  questions, labelled by whether it holds the expected span);
- the answer model: whether the selected sentence answers at all (trained on the selected sentence of every
  question, unanswerable ones included), with a threshold below which the answerer says the answer is not in
  the indexed documents.

This script runs the local pipeline over the demo corpus, fits both models on ``eval/tuning_questions.jsonl``
only (never on the held-out ``eval/demo_questions.jsonl``), reports 5-fold cross-validated figures by question,
and with ``--write`` writes the weights to ``lambda_src/rtrag/local/answerer_model.py``.

examples:
  python eval/fit_answerer.py            # cross-validated figures, no file written
  python eval/fit_answerer.py --write    # fit on all tuning questions and write the model
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rtrag.local.answerer import HOLDS

ROOT = Path(__file__).resolve().parents[1]
TUNING = ROOT / "eval" / "tuning_questions.jsonl"
MODEL_FILE = ROOT / "lambda_src" / "rtrag" / "local" / "answerer_model.py"
L2 = 1.0


@dataclass
class Row:
    question: int
    part: int
    features: np.ndarray
    holds_span: bool


@dataclass
class Question:
    answerable: bool
    parts: list[list[Row]]  # per part, every candidate sentence


def spans_of(item: dict) -> list[str]:
    spans = item.get("expected_answer") or []
    return [spans] if isinstance(spans, str) else spans


def collect(top_k: int) -> list[Question]:
    """Every tuning question's candidate sentences and their features, on a fresh local pipeline."""
    from rtrag.core.events import decode_event
    from rtrag.local.compose import LocalBackend
    from rtrag.workflows.produce import send_all

    items = [json.loads(line) for line in TUNING.read_text().splitlines() if line.strip()]
    with tempfile.TemporaryDirectory(prefix="rag-fit-") as tmp:
        backend = LocalBackend(Path(tmp))
        corpus = (ROOT / "scripts" / "sample_corpus.jsonl").read_text().splitlines()
        send_all(backend.producer, [decode_event(line.encode(), default_ts=1) for line in corpus if line.strip()])
        backend.drain()
        asker = backend.asker()
        answerer = asker.answerer
        out = []
        for number, item in enumerate(items):
            hits = asker.ask(item["question"], top_k=top_k, generate=False).retrieval.hits
            parts = answerer.parts(item["question"])
            candidates = answerer.candidates(hits)
            answerer._measure(parts, candidates)
            spans = [s.casefold() for s in spans_of(item)]  # held by the quoted text (a pair: both sentences)
            out.append(Question(item.get("answerable", True), [
                [Row(number, p, np.array(answerer.features(part, c)), any(s in c.sentence.casefold() for s in spans))
                 for c in candidates] for p, part in enumerate(parts)]))
        backend.close()
    return out


def logistic(x: np.ndarray, y: np.ndarray, *, l2: float = L2) -> np.ndarray:
    """L2-regularized logistic regression by Newton's method (the bias, the last feature, not penalized)."""
    w = np.zeros(x.shape[1])
    penalty = np.full(x.shape[1], l2)
    penalty[-1] = 0.0
    for _ in range(50):
        p = 1 / (1 + np.exp(-x @ w))
        gradient = x.T @ (p - y) + penalty * w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + np.diag(penalty) + 1e-9 * np.eye(x.shape[1])
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w




def selected(question: Question, w_select: np.ndarray) -> list[Row | None]:
    """Per part, the best sentence among those that pass the gates (None: no sentence can answer it)."""
    out = []
    for rows in question.parts:
        able = [r for r in rows if r.features[HOLDS] > 0]
        out.append(max(able, key=lambda r: float(r.features @ w_select)) if able else None)
    return out


def fit(questions: list[Question]) -> tuple[np.ndarray, np.ndarray, float]:
    rows = [r for q in questions if q.answerable for part in q.parts for r in part if r.features[HOLDS] > 0]
    w_select = logistic(np.array([r.features for r in rows]), np.array([float(r.holds_span) for r in rows]))
    picks = [(row, q.answerable and row.holds_span) for q in questions for row in selected(q, w_select) if row]
    w_answer = logistic(np.array([r.features for r, _ in picks]), np.array([float(y) for _, y in picks]))
    best = max(np.linspace(0.05, 0.95, 91), key=lambda t: sum(figures(questions, w_select, w_answer, t)))
    return w_select, w_answer, float(best)


def figures(questions: list[Question], w_select: np.ndarray, w_answer: np.ndarray,
            threshold: float) -> tuple[float, float]:
    """(share of answerable questions answered with the span, share of unanswerable ones refused)."""
    right = refused = answerable = unanswerable = 0
    for q in questions:
        picks = selected(q, w_select)
        answers = all(r is not None and 1 / (1 + np.exp(-(r.features @ w_answer))) >= threshold for r in picks)
        if q.answerable:
            answerable += 1
            right += answers and all(r is not None and r.holds_span for r in picks)
        else:
            unanswerable += 1
            refused += not answers
    return right / max(answerable, 1), refused / max(unanswerable, 1)


def cross_validate(questions: list[Question], folds: int = 5, seed: int = 7) -> tuple[float, float]:
    order = list(range(len(questions)))
    random.Random(seed).shuffle(order)
    results = []
    for k in range(folds):
        test = [questions[i] for i in order[k::folds]]
        train = [questions[i] for i in order if i not in set(order[k::folds])]
        w_select, w_answer, threshold = fit(train)
        results.append((figures(test, w_select, w_answer, threshold), len(test)))
    total = sum(n for _, n in results)
    return (sum(f[0] * n for f, n in results) / total, sum(f[1] * n for f, n in results) / total)


def write(w_select: np.ndarray, w_answer: np.ndarray, threshold: float, questions: int) -> None:
    def vector(w: np.ndarray) -> str:
        return "(" + ", ".join(f"{v:.4f}" for v in w) + ")"

    MODEL_FILE.write_text(f'''"""The local answerer's model: weights of ``ExtractiveAnswerer.features``, in order,
fitted by ``eval/fit_answerer.py --write`` on {questions} tuning questions (eval/tuning_questions.jsonl).
Do not edit by hand."""

# Which sentence holds the answer (a logistic score; the highest wins).
SELECT = {vector(w_select)}
# Whether the selected sentence answers the question part at all: answer when the probability reaches THRESHOLD.
ANSWER = {vector(w_answer)}
THRESHOLD = {threshold:.2f}
''')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help=f"write {MODEL_FILE.relative_to(ROOT)}")
    parser.add_argument("--top-k", type=int, default=3)
    args = parser.parse_args()
    questions = collect(args.top_k)
    answers, refusals = cross_validate(questions)
    print(f"{len(questions)} tuning questions; 5-fold cross-validated: answers right {answers:.0%}, "
          f"unanswerable refused {refusals:.0%}")
    w_select, w_answer, threshold = fit(questions)
    fitted = figures(questions, w_select, w_answer, threshold)
    print(f"fitted on all of them: answers right {fitted[0]:.0%}, unanswerable refused {fitted[1]:.0%}, "
          f"threshold {threshold:.2f}")
    if args.write:
        write(w_select, w_answer, threshold, len(questions))
        print(f"written: {MODEL_FILE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
