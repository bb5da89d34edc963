"""Step-by-step drivers for transit tests: every datagram and answer visible, any peer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from carbon.error_codes import ErrorCode
from mercury_rt.core.transit.certs import TransitCertVerifier
from mercury_rt.core.transit.initiator import (
    Finished,
    NeedKey,
    Prepared,
    TransitInitiator,
)
from mercury_rt.core.transit.node_keys import NodeTransitKeys
from mercury_rt.core.transit.responder import (
    Answered,
    Dropped,
    Opened,
    Plain,
    ResponderConfig,
    TransitResponder,
)
from mercury_rt.core.transit.wire import TransitRefusal, decode_answer, message_type
from tests.transit_support import (
    CALLER_ADDR,
    NODE_ADDR,
    NODE_CLUSTER_KEY,
    NODE_HASH,
    Pair,
    credential,
    lookup_for,
    seeded,
)

Addr = tuple[str, int]
SECRET = b"SECRET-PAYLOAD-7f3a9c"


def echo(data: bytes) -> bytes:
    """The node's handler in these tests: a reply that names its request."""
    return b"re:" + data


def responder(now: float, seed: int, config: ResponderConfig | None = None,
              keys: NodeTransitKeys | None = None, boot_ms: int | None = None
              ) -> TransitResponder:
    """A node of the called cluster (new keys per seed: a restart or another node)."""
    keys = keys or NodeTransitKeys(NODE_CLUSTER_KEY, NODE_HASH, seeded(seed), now)
    return TransitResponder(keys, NODE_HASH, token_secret=b"t" * 32,
                            boot_ms=int(now * 1000) - 1000 if boot_ms is None else boot_ms,
                            random_bytes=seeded(seed + 1), config=config)


def initiator(seed: int) -> TransitInitiator:
    """A calling node that trusts the called cluster's key."""
    return TransitInitiator(credential(), TransitCertVerifier(
        lookup_for({NODE_HASH: NODE_CLUSTER_KEY})), seeded(seed))


@dataclass
class Trace:
    """What one call sent and got back, in order."""

    sent: list[bytes] = field(default_factory=list)
    answers: list[bytes] = field(default_factory=list)
    opened: list[bytes] = field(default_factory=list)

    @property
    def kinds(self) -> list[int | None]:
        """The transit form of each datagram sent."""
        return [message_type(d) for d in self.sent]

    @property
    def refusals(self) -> list[ErrorCode]:
        """The codes of the refusals the node answered with."""
        out = []
        for answer in self.answers:
            if answer and message_type(answer) == 12:
                decoded = decode_answer(answer)
                assert isinstance(decoded, TransitRefusal)
                out.append(ErrorCode(decoded.code))
        return out


def deliver(node: TransitResponder, datagram: bytes, peer: Addr, now: float,
            reply: Callable[[bytes], bytes] = echo, trace: Trace | None = None) -> bytes:
    """What the node answers to one datagram (b"" for a drop)."""
    outcome = node.open(datagram, peer, now)
    if isinstance(outcome, Opened):
        if trace is not None:
            trace.opened.append(outcome.payload)
        return node.seal(outcome.channel, reply(outcome.payload))
    if isinstance(outcome, Answered):
        return outcome.reply
    if isinstance(outcome, Plain):
        return reply(outcome.payload)
    assert isinstance(outcome, Dropped)
    return b""


def drive(node: TransitResponder, caller: TransitInitiator, payload: bytes, now: float,
          alg: int = 1, peer: Addr = CALLER_ADDR, tries: int = 6) -> tuple[bytes, Trace]:
    """One call as the shell drives it, from `peer`; the reply and the trace."""
    trace = Trace()
    for _ in range(tries):
        step = caller.prepare(NODE_ADDR, NODE_HASH, alg, payload, now)
        datagram = step.query if isinstance(step, NeedKey) else step.datagram
        trace.sent.append(datagram)
        answer = deliver(node, datagram, peer, now, trace=trace)
        trace.answers.append(answer)
        if isinstance(step, NeedKey):
            caller.learn_key(NODE_ADDR, NODE_HASH, answer, now)
            continue
        result = caller.finish(step.pending, answer, now)
        if isinstance(result, Finished):
            return result.reply, trace
    raise AssertionError(f"no reply within {tries} datagrams: {trace.refusals}")


def prepared(caller: TransitInitiator, node: TransitResponder, payload: bytes, now: float,
             alg: int = 1) -> Prepared:
    """The datagram the caller would send next, its transit key fetched first if needed."""
    step = caller.prepare(NODE_ADDR, NODE_HASH, alg, payload, now)
    if isinstance(step, NeedKey):
        caller.learn_key(NODE_ADDR, NODE_HASH, deliver(node, step.query, CALLER_ADDR, now),
                         now)
        step = caller.prepare(NODE_ADDR, NODE_HASH, alg, payload, now)
    assert isinstance(step, Prepared)
    return step


def pair_prepared(p: Pair, payload: bytes, now: float, alg: int = 1) -> Prepared:
    """`prepared` for a Pair."""
    return prepared(p.initiator, p.responder, payload, now, alg)
