"""Lambda entry point of the vector bucket and index custom resource. ``vector_index_resource.on_event`` is a
contract: the stack names it. The handler is in ``rtrag.functions.vector_index_resource``."""

from rtrag.functions.vector_index_resource import on_event

__all__ = ["on_event"]
