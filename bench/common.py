"""Helpers shared by the benchmarks: paths, statistics, the printed table, JSON lines and the results files."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LAMBDA_SRC = ROOT / "lambda_src"
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0..100) with linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def machine() -> dict[str, Any]:
    """What the figures were measured on; other work on the machine shows in the load average."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, check=False).stdout.strip() or None
    except OSError:
        commit = None
    return {"python": platform.python_version(), "platform": platform.platform(terse=True),
            "cpus": os.cpu_count(), "load_1m_at_start": load, "git_commit": commit,
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "no", None: "-"}[value]
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(columns: Sequence[tuple[str, str]], rows: Iterable[dict[str, Any]], *, title: str = "") -> str:
    """A GitHub-flavoured markdown table (it reads well in a terminal too) of ``rows`` under ``columns``,
    given as (key, heading) pairs."""
    cells = [[fmt(row.get(key)) for key, _ in columns] for row in rows]
    heads = [heading for _, heading in columns]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(heads)]
    lines = [f"### {title}", ""] if title else []
    lines.append("| " + " | ".join(h.ljust(w) for h, w in zip(heads, widths)) + " |")
    lines.append("|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|")
    lines += ["| " + " | ".join(c.rjust(w) for c, w in zip(row, widths)) + " |" for row in cells]
    return "\n".join(lines)


def emit_json(rows: Iterable[dict[str, Any]]) -> None:
    """One JSON object per line on stdout (the benchmarks' ``--json`` output)."""
    for row in rows:
        print(json.dumps(row, sort_keys=True), flush=True)


def save_results(name: str, payload: dict[str, Any]) -> Path:
    """Write the latest results to ``bench/results/<name>.json`` for the README to quote."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2, sort_keys=True) + "\n")
    return path


def load_results(name: str) -> dict[str, Any] | None:
    """The latest ``bench/results/<name>.json``, or None if that benchmark has not run."""
    path = RESULTS_DIR / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def note(message: str) -> None:
    """Progress and remarks go to stderr, so ``--json`` output on stdout stays machine-readable."""
    print(message, file=sys.stderr, flush=True)
