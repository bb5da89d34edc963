"""Held messages under random holds, polls, failures, acks and restarts: delivered exactly once."""

from __future__ import annotations

import random

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from mercury_rt.core.gate import MemorySpentStore, SpendResult
from mercury_rt.core.node import (
    HeldQueue,
    HeldState,
    MemoryHeldStore,
    RetryPolicy,
)


class HeldMachine(RuleBasedStateMachine):
    """Random holds, polls, failures, acks and restarts; deliveries stay exactly-once."""

    def __init__(self) -> None:
        super().__init__()
        self.store = MemoryHeldStore()
        self.policy = RetryPolicy(initial_delay=1.0, max_delay=4.0, jitter=0.3, ttl=30.0,
                                  max_messages=8)
        self.q = HeldQueue(self.store, self.policy)
        self.rng = random.Random(0)
        self.now = 0.0
        self.receiver = MemorySpentStore()  # the node's delivered-id store
        self.received: list[bytes] = []
        self.in_flight: set[bytes] = set()
        self.acked: set[bytes] = set()
        self.next_id = 0

    @rule(dt=st.floats(0, 5))
    def advance(self, dt: float) -> None:
        self.now += dt

    @precondition(lambda self: self.q.pending_count() < 8)
    @rule()
    def hold(self) -> None:
        mid = self.next_id.to_bytes(2, "big")
        self.next_id += 1
        self.q.hold(mid, b"s", b"t", mid, now=self.now, rng=self.rng)

    @rule()
    def poll(self) -> None:
        due, expired = self.q.poll(self.now)
        for record in due:
            assert record.message_id not in self.in_flight
            self.in_flight.add(record.message_id)
        for record in expired:
            assert record.message_id not in self.acked

    @rule(data=st.data(), reached=st.booleans(), ack_lost=st.booleans())
    def outcome(self, data: st.DataObject, reached: bool, ack_lost: bool) -> None:
        if not self.in_flight:
            return
        mid = data.draw(st.sampled_from(sorted(self.in_flight)))
        self.in_flight.discard(mid)
        if reached and self.receiver.add_if_absent(
                mid, int(self.now + 60), self.now) is SpendResult.ADDED:
            self.received.append(mid)
        if reached and not ack_lost:
            assert self.q.acknowledged(mid, self.now).state is HeldState.DELIVERED
            self.acked.add(mid)
        else:
            self.q.attempt_failed(mid, self.now, self.rng)

    @rule()
    def restart(self) -> None:
        self.q = HeldQueue(self.store, self.policy)
        self.q.recover()
        self.in_flight.clear()

    @invariant()
    def exactly_once_and_states_consistent(self) -> None:
        assert len(self.received) == len(set(self.received))
        for mid in self.acked:
            assert self.q.status(mid).state is HeldState.DELIVERED
        for mid in self.in_flight:
            assert self.q.status(mid).in_flight


HeldMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40,
                                         deadline=None)
TestHeldMachine = HeldMachine.TestCase
