"""Admission of new media sessions: a token bucket, sans-IO (``now`` in seconds).

pjsua opens an RTP and an RTCP socket for every INVITE it accepts for processing, before the
application sees the call, and pjlib keeps a closed socket's ioqueue key for 500 ms.  The
media ioqueue has 64 keys; when they run out pjlib aborts the process (docs/capacity.md).
The endpoint asks this bucket before letting an INVITE reach the media code.
"""

from __future__ import annotations

from dataclasses import dataclass

from firmware.sip.errors import SipConfigError
from firmware.sip.limits import MEDIA_SESSIONS_PER_S_CEILING, PJSUA_MAX_CALLS

# Half the rate that fills the media ioqueue (limits.MEDIA_SESSIONS_PER_S_CEILING, 56/s):
# room for pjlib's timer granularity and for the sockets of calls being torn down.
DEFAULT_MEDIA_SESSIONS_PER_S = MEDIA_SESSIONS_PER_S_CEILING / 2
DEFAULT_BURST = 2 * PJSUA_MAX_CALLS


@dataclass
class TokenBucket:
    rate_per_s: float = DEFAULT_MEDIA_SESSIONS_PER_S
    burst: float = DEFAULT_BURST
    _tokens: float = -1.0
    _last: float | None = None
    admitted: int = 0
    refused: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.rate_per_s <= MEDIA_SESSIONS_PER_S_CEILING:
            raise SipConfigError(
                f"media session rate {self.rate_per_s}/s outside 0..{MEDIA_SESSIONS_PER_S_CEILING}"
                " (above it pjlib's media ioqueue runs out of keys and aborts)"
            )
        if self.burst < 1:
            raise SipConfigError(f"burst {self.burst} must be at least 1")
        self._tokens = self.burst

    def take(self, now: float) -> bool:
        if self._last is not None:
            if now < self._last:
                raise ValueError(f"time went backwards: {now} < {self._last}")
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate_per_s)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            self.admitted += 1
            return True
        self.refused += 1
        return False


# One source may use at most this share of the budget, so that a single flooding address
# cannot crowd out everybody else (a small office's callers start well under 1 call/s).
PER_SOURCE_SESSIONS_PER_S = 4.0
PER_SOURCE_BURST = 4.0
MAX_SOURCE_BUCKETS = 4096  # cap; the least recently seen source is forgotten first


class SourceBuckets:
    """A token bucket per source address, bounded in number."""

    def __init__(
        self,
        rate_per_s: float = PER_SOURCE_SESSIONS_PER_S,
        burst: float = PER_SOURCE_BURST,
        cap: int = MAX_SOURCE_BUCKETS,
    ) -> None:
        if cap < 1:
            raise SipConfigError(f"source bucket cap {cap} must be at least 1")
        TokenBucket(rate_per_s, burst)  # validates the numbers
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.cap = cap
        self._buckets: dict[str, TokenBucket] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, source: str, now: float) -> bool:
        bucket = self._buckets.pop(source, None)
        if bucket is None:
            bucket = TokenBucket(self.rate_per_s, self.burst)
        self._buckets[source] = bucket  # re-inserted: dict order is recency order
        while len(self._buckets) > self.cap:
            del self._buckets[next(iter(self._buckets))]
        return bucket.take(now)
