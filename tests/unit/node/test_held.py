"""Held one-way messages: backoff, exactly-once delivery, expiry, restart, status, bounds."""

from __future__ import annotations

import random

import pytest

from carbon.error_codes import ErrorCode
from mercury_rt.core.node import (
    HeldError,
    HeldQueue,
    HeldState,
    MemoryHeldStore,
    RetryPolicy,
    decode_held,
)

POLICY = RetryPolicy(initial_delay=1.0, factor=2.0, max_delay=8.0, jitter=0.0, ttl=60.0)


def queue(policy: RetryPolicy = POLICY) -> tuple[HeldQueue, MemoryHeldStore]:
    store = MemoryHeldStore()
    return HeldQueue(store, policy), store


def hold(q: HeldQueue, mid: bytes = b"m1", now: float = 0.0) -> None:
    q.hold(mid, b"alice", b"bob-eid", b"hello", now=now, rng=random.Random(0))


def test_backoff_doubles_up_to_max_then_expires() -> None:
    """Retries at 1, 2, 4, 8, 8, ... seconds apart; expired once the next would pass the TTL."""
    q, _ = queue()
    hold(q)
    now, gaps = 0.0, []
    rng = random.Random(0)
    while True:
        wake = q.next_wakeup()
        assert wake is not None
        gaps.append(wake - now)
        now = wake
        due, expired = q.poll(now)
        if expired:
            break
        [record] = due
        if q.attempt_failed(record.message_id, now, rng).state is HeldState.EXPIRED:
            break
    assert gaps[:5] == [1.0, 2.0, 4.0, 8.0, 8.0]
    status = q.status(b"m1")
    assert status.state is HeldState.EXPIRED and now <= 60.0
    assert q.next_wakeup() is None


def test_jitter_shortens_within_bound_and_is_seeded() -> None:
    """Jitter draws from the injected rng: delays stay in (base*(1-j), base]."""
    policy = RetryPolicy(initial_delay=10.0, jitter=0.5)
    delays = [policy.delay_ms(1, random.Random(seed)) for seed in range(200)]
    assert all(5000 < d <= 10000 for d in delays)
    assert len(set(delays)) > 100
    assert policy.delay_ms(3, random.Random(1)) == policy.delay_ms(3, random.Random(1))


def test_delivered_only_on_acknowledgement_and_once() -> None:
    """In flight is still PENDING; the ack makes it DELIVERED; a second ack changes nothing."""
    q, _ = queue()
    hold(q)
    [record] = q.poll(1.0)[0]
    assert record.in_flight and q.status(b"m1").state is HeldState.PENDING
    assert q.poll(1.5) == ([], [])  # not handed out twice while in flight
    delivered = q.acknowledged(b"m1", 1.2)
    assert delivered.state is HeldState.DELIVERED and delivered.finished_ms == 1200
    assert q.acknowledged(b"m1", 9.0) == delivered
    assert q.poll(100.0) == ([], [])


def test_late_ack_after_expiry_reports_delivery() -> None:
    """An acknowledgement is proof of delivery even after we gave up."""
    q, _ = queue()
    hold(q)
    q.poll(1.0)
    q.attempt_failed(b"m1", 59.5, random.Random(0))
    assert q.status(b"m1").state is HeldState.EXPIRED
    assert q.acknowledged(b"m1", 60.0).state is HeldState.DELIVERED


def test_survives_restart_and_in_flight_attempts_are_resent() -> None:
    """A new queue over the same store sees every record; a crash mid-attempt resends."""
    q, store = queue()
    hold(q, b"a")
    hold(q, b"b")
    q.poll(1.0)
    q.acknowledged(b"b", 1.1)
    restarted = HeldQueue(store, POLICY)
    assert restarted.status(b"b").state is HeldState.DELIVERED
    assert restarted.status(b"a").in_flight
    assert restarted.recover() == 1
    [again] = restarted.poll(1.2)[0]
    assert again.message_id == b"a" and again.attempts == 2


def test_corrupt_stored_record_is_reported_not_fatal() -> None:
    """One bad record does not stop the node; its id is listed for the operator."""
    q, store = queue()
    hold(q)
    store.put(b"bad", b"\xff")
    restarted = HeldQueue(store, POLICY)
    assert restarted.corrupt_ids == [b"bad"]
    assert restarted.status(b"m1").state is HeldState.PENDING
    with pytest.raises(HeldError) as info:
        decode_held(b"\xa0")
    assert info.value.code is ErrorCode.HELD_RECORD_CORRUPT


def test_hold_is_idempotent_and_conflicts_are_refused() -> None:
    """Holding the same message twice is harmless; another payload under the id is not."""
    q, _ = queue()
    hold(q)
    hold(q)
    assert q.pending_count() == 1
    with pytest.raises(HeldError) as info:
        q.hold(b"m1", b"alice", b"bob-eid", b"other", now=0.0, rng=random.Random(0))
    assert info.value.code is ErrorCode.HELD_MESSAGE_CONFLICT


def test_bounds() -> None:
    """Queue size and payload size are bounded with clear codes."""
    q, _ = queue(RetryPolicy(max_messages=2, max_payload=10))
    hold(q, b"1")
    hold(q, b"2")
    with pytest.raises(HeldError) as full:
        hold(q, b"3")
    assert full.value.code is ErrorCode.HELD_QUEUE_FULL
    with pytest.raises(HeldError) as big:
        q.hold(b"4", b"a", b"t", b"x" * 11, now=0.0, rng=random.Random(0))
    assert big.value.code is ErrorCode.HELD_MESSAGE_TOO_LARGE
    with pytest.raises(HeldError) as unknown:
        q.status(b"nope")
    assert unknown.value.code is ErrorCode.HELD_MESSAGE_UNKNOWN


def test_poll_batch_is_bounded() -> None:
    """A large backlog comes out max_batch at a time, oldest due first."""
    q, _ = queue(RetryPolicy(jitter=0.0, max_batch=3))
    for i in range(5):
        hold(q, bytes([i]), now=i / 10)
    due, _ = q.poll(10.0)
    assert [r.message_id for r in due] == [b"\x00", b"\x01", b"\x02"]
    assert len(q.poll(10.0)[0]) == 2


def test_sender_status_and_purge() -> None:
    """A sender lists its messages; finished ones are purged after keep_for."""
    q, store = queue()
    hold(q, b"a", now=0.0)
    q.hold(b"x", b"carol", b"t", b"p", now=0.5, rng=random.Random(0))
    hold(q, b"b", now=1.0)
    assert [r.message_id for r in q.for_sender(b"alice")] == [b"a", b"b"]
    q.poll(2.0)
    q.acknowledged(b"a", 2.0)
    assert q.purge_finished(now=10.0, keep_for=5.0) == 1
    assert b"a" not in store.data and q.pending_count() == 2


def test_policy_validates() -> None:
    """Inconsistent retry settings are refused."""
    with pytest.raises(ValueError):
        RetryPolicy(initial_delay=10.0, max_delay=1.0)
    with pytest.raises(ValueError):
        RetryPolicy(jitter=1.0)




