"""Lambda entry point of the indexer. ``indexer.handler`` is a contract: the stack names it, other tooling imports
it with ``lambda_src/`` on ``sys.path``. The handler is built in ``rtrag.functions.indexer``."""

from rtrag.functions.indexer import handler

__all__ = ["handler"]
