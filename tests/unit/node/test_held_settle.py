"""A held message's delivery attempt ends delivered, retried later, or refused for good."""

from __future__ import annotations

import random

import pytest

from carbon.error_codes import ErrorCode
from mercury_rt.core.node import (
    HeldQueue,
    HeldState,
    MemoryHeldStore,
    RetryPolicy,
    settle_attempt,
    should_hold,
)


@pytest.mark.parametrize(("code", "state"), [
    (None, HeldState.DELIVERED),
    (ErrorCode.NO_NODE_ANSWERED, HeldState.PENDING),
    (ErrorCode.NO_ANSWER, HeldState.PENDING),
    (ErrorCode.REQUEST_LOST, HeldState.PENDING),
    (ErrorCode.OVERLOADED, HeldState.PENDING),
    (ErrorCode.MAC_INSUFFICIENT_CLEARANCE, HeldState.REFUSED),
    (ErrorCode.UNKNOWN_ENTITY, HeldState.REFUSED),
])
def test_each_outcome_moves_the_message_to_the_right_state(code: int | None,
                                                            state: HeldState) -> None:
    queue, rng = HeldQueue(MemoryHeldStore(), RetryPolicy()), random.Random(1)
    queue.hold(b"m1", b"alice", b"eid", b"note", now=0.0, rng=rng)
    (due,), _ = queue.poll(10.0)
    after = settle_attempt(queue, due.message_id, code, 10.0, rng)
    assert after.state is state
    assert should_hold(code) is (state is HeldState.PENDING) if code is not None else True
    if state is HeldState.PENDING:
        assert after.next_attempt_ms > 10_000 and not after.in_flight
