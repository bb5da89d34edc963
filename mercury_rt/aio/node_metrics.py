"""The counters a node keeps on its request path, for /metrics (aio/node_collector.py).

They are plain integers in dicts, touched only on the event loop: a request costs a clock
read, a three-byte peek at its reply's code and two dict increments, no lock and no
string formatting (the collector turns them into Prometheus samples when scraped). Label
sets are bounded: codes outside the known table count as "unknown", and gate rules past
MAX_RULES distinct ones as OTHER_RULE, so a peer cannot grow a node's metrics.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from carbon.error_codes import ErrorCode, MercuryError
from mercury_rt.core.gate import Allow, Deny
from mercury_rt.core.node import NodeAction
from mercury_rt.core.node.reply_code import peek_reply_code
from mercury_rt.core.routing import Path

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0, 10.0, 30.0)
"""Upper bounds (seconds) of the request-duration histogram; +Inf follows."""
UNKNOWN_CODE = -1
"""A reply that does not start like a node reply, or carries a code this version lacks."""
NO_REPLY = -2
"""Nothing was sent back (a dropped intra-cluster datagram)."""
MAX_RULES = 512
OTHER_RULE = "(other rules)"
_KNOWN_CODES = frozenset({0, *(int(c) for c in ErrorCode)})

Reply = bytes | Awaitable[bytes]
CarryOut = Callable[[NodeAction], Reply]


@dataclass(slots=True)
class Histogram:
    """Observation counts per LATENCY_BUCKETS slot (not cumulative; the last is +Inf)."""

    counts: list[int]
    total: float = 0.0

    @classmethod
    def empty(cls) -> Histogram:
        """No observations yet."""
        return cls([0] * (len(LATENCY_BUCKETS) + 1))

    def observe(self, seconds: float) -> None:
        """Count one observation."""
        self.counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.total += seconds


class NodeMetrics:
    """Request, latency, one-way message and gate-decision counters of one node."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.requests: dict[Path, dict[int, int]] = {path: {} for path in Path}
        """path -> reply code -> requests answered."""
        self.latency = {path: Histogram.empty() for path in Path}
        self.messages = dict.fromkeys(Path, 0)
        """One-way messages opened, by path."""
        self.gate: dict[tuple[str, str], int] = {}
        """(allow | deny, deciding rule) -> decisions."""

    def metered(self, path: Path, carry_out: CarryOut) -> CarryOut:
        """`carry_out` that counts each reply by code and observes its duration."""
        clock, by_code, histogram = self._clock, self.requests[path], self.latency[path]
        counts = histogram.counts

        def carry(action: NodeAction) -> Reply:
            started = clock()
            result = carry_out(action)
            if not isinstance(result, bytes):
                return self._later(path, result, started)
            code = reply_code(result)  # replied(), inlined: this runs for every request
            by_code[code] = by_code.get(code, 0) + 1
            seconds = clock() - started
            counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1
            histogram.total += seconds
            return result

        return carry

    async def _later(self, path: Path, result: Awaitable[bytes], started: float) -> bytes:
        try:
            reply = await result
        except MercuryError as exc:
            self.replied(path, _known(int(exc.code)), self._clock() - started)
            raise
        except Exception:
            self.replied(path, int(ErrorCode.REQUEST_FAILED), self._clock() - started)
            raise
        self.replied(path, reply_code(reply), self._clock() - started)
        return reply

    def replied(self, path: Path, code: int, seconds: float) -> None:
        """Count one answered request."""
        by_code = self.requests[path]
        by_code[code] = by_code.get(code, 0) + 1
        self.latency[path].observe(seconds)

    def message(self, path: Path) -> None:
        """Count one opened one-way message."""
        self.messages[path] += 1

    def gate_decision(self, decision: Allow | Deny) -> None:
        """Count one gate decision under the rule that decided it."""
        key = ("allow" if isinstance(decision, Allow) else "deny", decision.rule)
        count = self.gate.get(key)
        if count is None and len(self.gate) >= MAX_RULES:
            key = (key[0], OTHER_RULE)
            count = self.gate.get(key)
        self.gate[key] = (count or 0) + 1


def reply_code(reply: bytes) -> int:
    """The code label of reply bytes: its code, UNKNOWN_CODE or NO_REPLY."""
    if not reply:
        return NO_REPLY
    code = peek_reply_code(reply)
    return code if code in _KNOWN_CODES else UNKNOWN_CODE


def _known(code: int) -> int:
    return code if code in _KNOWN_CODES else UNKNOWN_CODE


def code_label(code: int) -> str:
    """The Prometheus label value of a counted code."""
    if code == UNKNOWN_CODE:
        return "unknown"
    return "none" if code == NO_REPLY else str(code)
