"""The retransmission timeout (timing.RttEstimator, protocol.md 3.3): RFC 6298 with G.

A steady round trip must not leave the RTO at the RTT itself (a busy host's stall would
then be retransmitted as loss); a varying one must still get 4 x RTTVAR of margin; and
the result always stays within [min_rto, max_rto].
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mercury_rt.core.transport import Transport, TransportConfig
from mercury_rt.core.transport.timing import RttEstimator

SAMPLES = st.lists(st.floats(0.0, 5.0, allow_nan=False), min_size=1, max_size=40)
GRANULARITY = st.sampled_from([0.0, 0.001, 0.05, 0.2])


def rfc6298(samples: list[float], granularity: float, low: float, high: float) -> float:
    """RFC 6298 2.2-2.4, written out independently of the estimator."""
    srtt, rttvar = samples[0], samples[0] / 2
    for r in samples[1:]:
        rttvar = 0.75 * rttvar + 0.25 * abs(srtt - r)
        srtt = 0.875 * srtt + 0.125 * r
    return min(max(srtt + max(granularity, 4 * rttvar), low), high)


@given(SAMPLES, GRANULARITY)
def test_the_rto_is_rfc6298_with_g_clamped_to_its_bounds(samples: list[float],
                                                         granularity: float) -> None:
    rtt = RttEstimator(0.5, 0.02, 10.0, granularity)
    for sample in samples:
        rtt.sample(sample)
    assert rtt.rto == pytest.approx(rfc6298(samples, granularity, 0.02, 10.0))
    assert 0.02 <= rtt.rto <= 10.0
    assert rtt.srtt is not None
    assert rtt.rto >= min(rtt.srtt + granularity, 10.0) - 1e-12


@given(st.floats(0.0001, 0.05), st.integers(2, 200))
def test_a_steady_rtt_keeps_a_margin_of_g_above_it(rtt_s: float, count: int) -> None:
    """The case behind the spurious retransmissions: RTTVAR decays towards 0."""
    rtt = RttEstimator(0.5, 0.02, 10.0, 0.05)
    for _ in range(count):
        rtt.sample(rtt_s)
    assert rtt.rto >= rtt_s + 0.05 - 1e-9


def test_the_default_config_feeds_g_to_every_peers_estimator() -> None:
    cfg = TransportConfig()
    t = Transport(cfg, rng=random.Random(1))
    assert t._peer(("10.0.0.1", 1)).rtt.granularity == cfg.rto_granularity == 0.05


def test_granularity_beyond_max_rto_is_refused() -> None:
    with pytest.raises(ValueError, match="rto_granularity"):
        TransportConfig(rto_granularity=11.0)
