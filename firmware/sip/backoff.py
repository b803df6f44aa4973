"""Registration retry back-off: a pure function of the attempt number and a random draw."""

from __future__ import annotations

# Doubling from the configured retry interval, capped: a provider that is down for an hour
# sees one attempt every BACKOFF_CAP_FACTOR * retry_s at worst, never a tight loop.
BACKOFF_CAP_FACTOR = 16
BACKOFF_MAX_S = 3600.0
# Spread of the delay so that many boxes behind one provider outage do not retry in step
# (the same idea as pjsua's randomRetryIntervalSec).
BACKOFF_JITTER = 0.1


def backoff_delay(retry_s: float, attempt: int, rand01: float) -> float:
    """Seconds to wait before registration attempt ``attempt + 1`` after ``attempt`` failures.

    ``rand01`` is a uniform draw in [0, 1) supplied by the caller (sans-IO).
    """
    if retry_s <= 0:
        raise ValueError(f"retry interval {retry_s} must be positive")
    if attempt < 1:
        raise ValueError(f"attempt {attempt}: back-off starts after the first failure")
    if not 0.0 <= rand01 < 1.0:
        raise ValueError(f"random draw {rand01} outside [0, 1)")
    exponent = min(attempt - 1, 30)  # 2**30 already exceeds any cap
    base = min(retry_s * float(2**exponent), retry_s * BACKOFF_CAP_FACTOR, BACKOFF_MAX_S)
    return float(base) * (1.0 - BACKOFF_JITTER + 2 * BACKOFF_JITTER * rand01)
