"""Jittered exponential backoff: the one formula every retry loop of the project uses.

"Full jitter" (AWS Architecture Blog, "Exponential Backoff And Jitter"): attempt ``n`` (1-based) waits a random
time in ``[0, min(cap, base * 2 ** (n - 1))]``, which spreads retrying clients apart better than a fixed or
proportional jitter. botocore's own retry modes do the same for the calls it retries itself.
"""

from __future__ import annotations

import random


def backoff_delay(attempt: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry number ``attempt`` (1 = the first retry)."""
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    return (rng or random).uniform(0.0, ceiling)
