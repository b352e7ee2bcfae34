"""The workflows' typed errors and fixes in the scripts' own terms: a workflow names the cause and, as a type or a
``Fix``, the remedy; only this module names the command-line flags that apply it."""

from __future__ import annotations

from rtrag.core.errors import UserError
from rtrag.local.compose import LocalIndexMissing
from rtrag.workflows.checkpoint import CheckpointConflict, CheckpointUnreadable
from rtrag.workflows.redrive import Fix
from rtrag.workflows.sources import InvalidWindow, SourceNotFound

FIX_HINTS = {
    Fix.FORCE: "--force sends it again",
    Fix.CORRECT_OR_FORCE: "fix the producer and put the corrected event, or pass --force",
    Fix.REPLAY_FROM_ARCHIVE: "replay them from the archive instead: reindex.py --from-archive --since <their date>",
}
SOURCE_FLAGS = {"directory": "--from-dir", "file": "--from-jsonl"}


def with_fix(message: str, fix: Fix | None) -> str:
    """``message`` followed by the command line's wording of ``fix``, if there is one."""
    return f"{message} ({FIX_HINTS[fix]})" if fix is not None else message


def workflow_hint(exc: UserError) -> str | None:
    text = str(exc)
    if isinstance(exc, InvalidWindow):
        return f"--{exc.bound} {text}" if exc.bound else f"{text}: --since must not be after --until"
    if isinstance(exc, SourceNotFound):
        return f"{SOURCE_FLAGS[exc.kind]} {text}"
    if isinstance(exc, CheckpointUnreadable):
        return f"{text}: pass --restart to replay from the start (it is overwritten)"
    if isinstance(exc, CheckpointConflict):
        return f"{text}: pass another --checkpoint, or --restart to overwrite it"
    if isinstance(exc, LocalIndexMissing):
        return f"{text}: build it with `reindex.py --local --to-index --vector-index {exc.name}`"
    return None
