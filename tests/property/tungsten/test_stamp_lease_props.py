"""The lease a spent stamp's etcd key goes on: shared by every stamp of one step of expiry,
and always ending after the stamp expires (a key that vanished first would let the stamp
be spent again elsewhere), by at most about two steps (so the keys stay bounded)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tungsten.etcd_store import STAMP_LEASE_STEP, stamp_lease_plan

NOW = st.floats(1_600_000_000, 2_000_000_000)
AHEAD = st.integers(1, 30 * 86_400)


@given(NOW, AHEAD, st.floats(0, 1))
def test_a_lease_granted_while_its_step_is_current_outlives_every_stamp_of_it(
        now: float, ahead: int, later: float) -> None:
    expires_at = int(now) + ahead
    step, _ = stamp_lease_plan(expires_at, now)
    granted = now + later * max(0.0, step * STAMP_LEASE_STEP - now)  # any time it is reused
    _, ttl = stamp_lease_plan(expires_at, granted)
    for other in range((step - 1) * STAMP_LEASE_STEP + 1, step * STAMP_LEASE_STEP + 1, 7):
        assert stamp_lease_plan(other, granted)[0] == step
        assert granted + ttl >= other + STAMP_LEASE_STEP


@given(NOW, AHEAD)
def test_a_lease_ends_at_most_about_two_steps_after_the_stamp(now: float, ahead: int) -> None:
    expires_at = int(now) + ahead
    _, ttl = stamp_lease_plan(expires_at, now)
    assert now + ttl <= expires_at + 2 * STAMP_LEASE_STEP + 1
