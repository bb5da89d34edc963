"""A call that sends to its first address before building its contact state machine, and
builds none when that node answers OK (issue 13), decides exactly as one that builds it at
once: for any sequence of calls and of what each attempt meets (OK, OK bundling a newer
cluster ID, end-to-end and node-local errors, redirects, undecodable replies, silence,
transport and transit failures, 707, a stamp demand), both give the same steps, end the
same way, leave the planner the same suspects, cluster IDs and refusal counts, and draw
the same random numbers."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from carbon.error_codes import ErrorCode
from mercury_rt.core.node import (
    CallPlanner,
    CallRequest,
    CallStep,
    GaveUp,
    GotReply,
    NeedStamp,
    NodeReply,
    OutgoingCall,
    SendInterStep,
    pay_for,
)
from tests.contact_view_support import LISTED, TARGET, V2, planner

OUTCOMES = ("ok", "ok_newer", "ok_same", "end_to_end", "node_local", "node_local_newer",
            "redirect", "redirect_unlisted", "undecodable", "no_answer", "timeout",
            "transit_local", "too_weak", "stamp")
_REPLIES = {
    "ok": NodeReply(payload=b"fine"),
    "ok_newer": NodeReply(payload=b"fine", cluster_id=V2.encode()),
    "ok_same": NodeReply(payload=b"fine", cluster_id=b"\x00junk"),
    "end_to_end": NodeReply(int(ErrorCode.UNKNOWN_ENTITY), message="none here"),
    "node_local": NodeReply(int(ErrorCode.NODE_LOCAL_ERROR), message="busy"),
    "node_local_newer": NodeReply(int(ErrorCode.NODE_LOCAL_ERROR), message="old",
                                  cluster_id=V2.encode()),
    "redirect": NodeReply(int(ErrorCode.REDIRECT), target=LISTED[3]),
    "redirect_unlisted": NodeReply(int(ErrorCode.REDIRECT), target=V2.addresses[-1]),
    "too_weak": NodeReply(int(ErrorCode.ALGORITHM_TOO_WEAK), acceptable=(1, 2, 3)),
    "stamp": NodeReply(int(ErrorCode.HASHCASH_REQUIRED), required_bits=2),
}
_FAILURES = {"no_answer": ErrorCode.NO_ANSWER, "timeout": ErrorCode.TIMEOUT,
             "transit_local": ErrorCode.UNKNOWN_SESSION}

calls = st.lists(st.tuples(st.binary(min_size=1, max_size=8), st.floats(0, 100),
                           st.lists(st.sampled_from(OUTCOMES), max_size=8)), max_size=8)


def _run(made: CallPlanner, key: bytes, now: float, outcomes: list[str]) -> list[CallStep]:
    call = OutgoingCall(made, CallRequest(TARGET, 1, 1, b"\x41hi", b"alice", key,
                                          request_id=key), now)
    steps = [call.start()]
    for outcome in [*outcomes, *["ok"] * 40]:
        step = steps[-1]
        if isinstance(step, GotReply | GaveUp):
            break
        if isinstance(step, NeedStamp):
            steps.append(call.on_stamp(pay_for(step, 1_700_000_000.0, b"n" * 12)))
            continue
        assert isinstance(step, SendInterStep), step
        if outcome == "undecodable":
            steps.append(call.on_reply(b"\xff\x00"))
        elif outcome in _FAILURES:
            steps.append(call.on_failure(int(_FAILURES[outcome]), outcome, now))
        else:
            steps.append(call.on_reply(_REPLIES[outcome].encode()))
    steps.append(call.answered_by)  # type: ignore[arg-type]
    return steps


@settings(max_examples=150, deadline=None)
@given(calls, st.integers(0, 2**32))
def test_a_lazy_contact_decides_as_one_built_at_once(
        history: list[tuple[bytes, float, list[str]]], seed: int) -> None:
    lazy, eager = planner(), planner()
    lazy.rng, eager.rng = random.Random(seed), random.Random(seed)
    eager.lazy_contact = False
    for key, now, outcomes in history:
        assert _run(lazy, key, now, outcomes) == _run(eager, key, now, outcomes)
        assert lazy.suspects == eager.suspects
        assert lazy.known == eager.known
        assert lazy.refusals == eager.refusals
        assert lazy.rng.getstate() == eager.rng.getstate()
