"""Replaying archived document events (``scripts/reindex.py``): a ``Replay`` reads a source
(``rtrag.workflows.sources``) in order and delivers it in batches to a target (``rtrag.workflows.targets``), saving
its checkpoint (``rtrag.workflows.checkpoint``) after each batch, so a rerun of the same command resumes after the
last complete batch.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rtrag.workflows.checkpoint import Checkpoint
from rtrag.workflows.sources import Source, SourceRecord
from rtrag.workflows.targets import ReplayCounts, ReplayStopped, Target


class Replay:
    """Reads a source in order and delivers it to a target in batches, saving the checkpoint after each."""

    def __init__(self, source: Source, target: Target, checkpoint: Checkpoint, checkpoint_path: Path, *,
                 batch_size: int, progress: Callable[[int, int], None] = lambda done, total: None):
        self.source = source
        self.target = target
        self.checkpoint = checkpoint
        self.path = checkpoint_path
        self.batch_size = batch_size
        self.progress = progress
        self.run_counts = ReplayCounts()

    def run(self) -> ReplayCounts:
        """Replay everything after the checkpoint; returns this run's counts (the checkpoint holds the totals).
        Raises ReplayStopped when a batch keeps failing; the checkpoint then stays before that batch."""
        start = self.checkpoint.position
        units = self.source.units(start.unit if start else None)
        total = self.source.count()
        batch: list[tuple[int, SourceRecord]] = []
        for done_units, unit in enumerate(units, start=1):
            after = start.offset if start is not None and unit == start.unit else None
            for record in self.source.read(unit, after):
                batch.append((self.checkpoint.ordinal + len(batch) + 1, record))
                if len(batch) >= self.batch_size:
                    self._flush(batch, total)
                    batch = []
            if total is None:
                self.progress(done_units, len(units))
        if batch:
            self._flush(batch, total)
        if total is not None:
            self.progress(total, total)
        return self.run_counts

    def _flush(self, batch: list[tuple[int, SourceRecord]], total: int | None) -> None:
        try:
            counts = self.target.deliver(batch)
        except ReplayStopped as stop:
            self.run_counts.add(stop.counts)
            raise
        counts.read = len(batch)
        self.run_counts.add(counts)
        self.checkpoint.totals.add(counts)
        self.checkpoint.ordinal += len(batch)
        self.checkpoint.position = batch[-1][1].position
        self.checkpoint.save(self.path)
        if total is not None:
            self.progress(min(self.checkpoint.ordinal, total), total)
