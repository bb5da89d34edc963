"""The gate under hostile input: whatever the payments, certificates and EID, a decision."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mercury_rt.core.gate import (
    Allow,
    Deny,
    GateRequest,
    PaymentStamp,
    RemoteSource,
    evaluate,
    request_digest,
)
from policy.access import Target
from tests.gate_support import (
    NOW,
    POLICY,
    SHOP0,
    state,
)


@given(payments=st.lists(st.tuples(st.integers(0, 3), st.binary(max_size=80)), max_size=3),
       certs=st.lists(st.binary(max_size=120), max_size=3), eid=st.binary(max_size=60))
def test_hostile_requests_never_raise(payments: list[tuple[int, bytes]], certs: list[bytes],
                                      eid: bytes) -> None:
    for target in (SHOP0, Target(b"free", 0, 0)):
        req = GateRequest(target, RemoteSource(eid), request_digest(eid),
                          tuple(PaymentStamp(k, d) for k, d in payments), tuple(certs))
        decision = evaluate(req, POLICY, state(), NOW)
        assert isinstance(decision, Allow | Deny)
