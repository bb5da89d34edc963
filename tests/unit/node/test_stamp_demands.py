"""A call meets a larger stamp demand after a smaller stamp in the same call: a policy's
demand, then a signature budget's 16 bits (protocol.md 7.1) that the first stamp cannot
pay (issue 17's known limit: such a call failed with 601). Stamps only grow, at most two
per call, so a node cannot make a caller mint for ever."""

from __future__ import annotations

from dataclasses import replace

from carbon.error_codes import ErrorCode
from mercury_rt.core.gate import PaymentStamp
from mercury_rt.core.node import GotReply, NeedStamp, NodeReply, OutgoingCall, SendInterStep
from tests.forgery_support import caller_planner, echo, genuine_eid

NOW = 1_700_000_000.0
STAMP = PaymentStamp(1, b"stamp")


def demand(bits: int, code: ErrorCode = ErrorCode.HASHCASH_INSUFFICIENT) -> bytes:
    return NodeReply(int(code), message="stamp", required_bits=bits).encode()


def answer(call: OutgoingCall, reply: bytes) -> object:
    step = call.start()
    assert isinstance(step, SendInterStep), step
    return call.on_reply(reply)


def test_a_larger_demand_after_a_minted_stamp_is_met_once_more() -> None:
    call = OutgoingCall(caller_planner(), echo(genuine_eid()), NOW)
    first = answer(call, demand(8, ErrorCode.HASHCASH_REQUIRED))
    assert isinstance(first, NeedStamp) and first.bits == 8
    sent = call.on_stamp(STAMP)
    assert isinstance(sent, SendInterStep)
    second = call.on_reply(demand(16))
    assert isinstance(second, NeedStamp) and second.bits == 16
    assert isinstance(call.on_stamp(STAMP), SendInterStep)
    third = call.on_reply(demand(20))
    assert isinstance(third, GotReply) and third.reply.code == ErrorCode.HASHCASH_INSUFFICIENT


def test_the_same_demand_again_is_not_minted_again() -> None:
    call = OutgoingCall(caller_planner(), echo(genuine_eid()), NOW)
    assert isinstance(answer(call, demand(16, ErrorCode.HASHCASH_REQUIRED)), NeedStamp)
    call.on_stamp(STAMP)
    again = call.on_reply(demand(16))
    assert isinstance(again, GotReply), "a stamp as large did not pay: minting it again won't"


def test_a_caller_that_paid_a_smaller_stamp_gets_the_budgets_demand_met() -> None:
    request = replace(echo(genuine_eid()), payments=(STAMP,))
    call = OutgoingCall(caller_planner(), request, NOW)
    step = answer(call, demand(16))
    assert isinstance(step, NeedStamp) and step.bits == 16
