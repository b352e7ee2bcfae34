"""Offline text embeddings from weights shipped inside the ``wordllama`` wheel: no network, no account.

WordLlama (model ``l2_supercat``, 256 dimensions) averages token embeddings taken from a large language model's
embedding table. It is far weaker than Titan V2 but good enough to rank a handful of passages, it loads in a
fraction of a second and it embeds a chunk in well under a millisecond on a laptop CPU.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rtrag.core.errors import ConfigError, RagError, UnindexableDocument
from rtrag.core.limits import TITAN_MAX_INPUT_CHARS

Vector = list[float]

WORDLLAMA_CONFIG = "l2_supercat"
LOCAL_DIMENSIONS = 256
LOCAL_MODEL_ID = f"wordllama/{WORDLLAMA_CONFIG}-{LOCAL_DIMENSIONS}"
# The same input cap as Titan V2, so a document that indexes locally also indexes on AWS (and the reverse).
MAX_INPUT_CHARS = TITAN_MAX_INPUT_CHARS
_MAX_BATCH = 64
_BATCH_CHAR_BUDGET = 64 * 1024  # ~ tokens per padded batch: at most ~64 MB of float32 token vectors

_model: Any = None
_model_lock = threading.Lock()


def _import_wordllama() -> Any:
    # wordllama.inference calls logging.basicConfig(level=INFO) on import, which would turn on INFO output of
    # every library logger in the host program; put the root logger back the way it was.
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        import wordllama
    except ImportError as exc:
        raise ConfigError("the local embedder needs the 'wordllama' package; install the project's "
                          "requirements (pip install -r requirements.txt)") from exc
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    return wordllama


def load_model() -> Any:
    """The WordLlama model, loaded once per process from the weights inside the installed package."""
    global _model
    with _model_lock:
        if _model is None:
            wordllama = _import_wordllama()
            package_dir = Path(wordllama.__file__).parent
            try:
                # disable_download: the weights and tokenizer ship in the wheel; never fetch anything at run time.
                _model = wordllama.WordLlama.load(config=WORDLLAMA_CONFIG, dim=LOCAL_DIMENSIONS,
                                                  cache_dir=package_dir, disable_download=True)
            except FileNotFoundError as exc:
                raise ConfigError(f"the wordllama package in {package_dir} lacks its shipped weights ({exc}); "
                                  "reinstall it from the pinned requirements") from exc
        return _model


class LocalEmbedder:
    """Same interface as ``TitanEmbedder``: ``dimensions``, ``calls``, ``embed``, ``embed_many``.

    Vectors are 256 floats of unit L2 norm (cosine distance is meaningful). The same text always gives the same
    vector, whatever else is in the batch. The model loads on first use, once per process.
    """

    model_id = LOCAL_MODEL_ID

    def __init__(self) -> None:
        self.dimensions = LOCAL_DIMENSIONS
        self.calls = 0
        self._lock = threading.Lock()

    def embed(self, text: str) -> Vector:
        """Embed one text; raises UnindexableDocument for a blank, over-long or token-less text (never retry)."""
        result = self.embed_many([text])[0]
        if isinstance(result, RagError):
            raise result
        return result

    def embed_iter(self, texts: Sequence[str]) -> Iterator[tuple[int, Vector | RagError]]:
        """``(index, vector or error)`` per text, in order (all are embedded in one pass, then yielded)."""
        yield from enumerate(self.embed_many(texts))

    def embed_many(self, texts: Sequence[str]) -> list[Vector | RagError]:
        """Each text's vector, or the UnindexableDocument it met, in order."""
        out: list[Vector | RagError | None] = [None] * len(texts)
        todo: list[tuple[int, str]] = []
        for i, text in enumerate(texts):
            if not isinstance(text, str) or not text.strip():
                out[i] = UnindexableDocument("the local embedder cannot embed an empty or blank text")
            elif len(text) > MAX_INPUT_CHARS:
                out[i] = UnindexableDocument(
                    f"text is {len(text)} characters; the embedder takes at most {MAX_INPUT_CHARS}")
            else:
                todo.append((i, text))
        if todo:
            model = load_model()
            with self._lock:
                self.calls += len(todo)
            for group in _groups(sorted(todo, key=lambda item: len(item[1]))):
                for (i, _), vector in zip(group, _embed_group(model, [text for _, text in group])):
                    out[i] = vector
        return out  # type: ignore[return-value]


def _groups(items: list[tuple[int, str]]) -> list[list[tuple[int, str]]]:
    """Split length-sorted texts into batches whose padded size stays within the budget.

    WordLlama pads a batch to its longest text; sorting by length keeps padding small, and the budget bounds the
    batch's token array (a padded batch of 64 long chunks would need hundreds of MB). Padding is masked out, so
    a text's vector does not depend on the batch it is in.
    """
    groups: list[list[tuple[int, str]]] = []
    for item in items:
        group = groups[-1] if groups else None
        if group is None or len(group) == _MAX_BATCH or (len(group) + 1) * len(item[1]) > _BATCH_CHAR_BUDGET:
            groups.append([item])
        else:
            group.append(item)
    return groups


def _embed_group(model: Any, texts: list[str]) -> list[Vector | RagError]:
    import numpy as np  # a dependency of wordllama

    raw = np.asarray(model.embed(texts, norm=False, batch_size=len(texts)), dtype=np.float64)
    norms = np.linalg.norm(raw, axis=1)
    out: list[Vector | RagError] = []
    for row, norm in zip(raw, norms):
        if not math.isfinite(norm) or norm == 0.0:
            out.append(UnindexableDocument("the text has no tokens the local embedder knows"))
        else:
            out.append((row / norm).tolist())
    return out
