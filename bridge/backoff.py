"""How long a request waits before its next try: exponential, capped, jittered."""

from __future__ import annotations

import random


def retry_delay(attempts: int, base_s: float = 0.5, cap_s: float = 15.0) -> float:
    """Seconds before try `attempts + 1`: doubling from `base_s` up to `cap_s`, times a random
    factor in [0.5, 1.5) so that requests that failed together do not come back together."""
    grown: float = min(cap_s, base_s * 2.0 ** min(attempts, 16))
    return grown * random.uniform(0.5, 1.5)  # noqa: S311 - spreading retries, not a secret
