"""What the node core asks its host to do with one request: the `NodeAction` union.

`NodeCore.handle` returns exactly one of these; a host carries it out with a `match` over
`NodeAction` ending in `assert_never`, so an action added here is a type error in every
host that forgets it.
"""

from __future__ import annotations

from dataclasses import dataclass

from lithium.context import IncomingCall
from mercury_rt.core.gate import Allow, SessionProof
from mercury_rt.core.node.state_messages import StateCommit, StateFetch
from mercury_rt.core.routing import Path
from mercury_rt.core.transport import Addr


@dataclass(frozen=True, slots=True)
class Respond:
    """Send `reply` (a node reply; the host seals it under the request's session)."""

    reply: bytes


@dataclass(frozen=True, slots=True)
class Invoke:
    """Run `call` through LITHIUM, then `finish` the result; `allow` is for the audit.

    With `state_at` (remote-state routing) the entity's state is on the node at that
    intra-cluster address: fetch its image there and commit the changes there.
    """

    call: IncomingCall
    sealed: bool
    bundle: bytes | None
    allow: Allow
    state_at: Addr | None = None


@dataclass(frozen=True, slots=True)
class ServeState:
    """Answer another node of this cluster running a call on an entity whose state is
    here: send the image or apply the changes (through LITHIUM), then `finish`."""

    request: StateFetch | StateCommit
    sealed: bool = True
    bundle: bytes | None = None


@dataclass(frozen=True, slots=True)
class Forward:
    """Send `payload` over the intra-cluster path (in a transit session) to `node_id`,
    then `relay` its reply.

    If `node_id` does not acknowledge, `forward_failed` gives the same request to the next
    live node of `fallbacks`, the entity's other mirrors."""

    node_id: bytes
    address: Addr
    payload: bytes
    sealed: bool
    fallbacks: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    """One request or one-way message as the core decides it.

    `payload` is already opened by transit; `sealed` says it came in a session opened by a
    certified node of this cluster (so a vouched caller is believed); `proof` is what the
    session of an inter-cluster request proves about its opener, `transit` the
    algorithm id it was protected with (0: it never left this node). `request_key` is
    sticky across retransmissions; `deadline` is in the shell's monotonic clock."""

    path: Path
    sealed: bool
    payload: bytes
    request_key: bytes
    deadline: float
    one_way: bool = False
    proof: SessionProof | None = None
    transit: int = 0
    peer: Addr | None = None
    """The address it came from (the signature budget's per-address share)."""


@dataclass(frozen=True, slots=True)
class FetchKeys:
    """Ask `addresses` (the caller's cluster's nodes) for that cluster's current cluster ID
    with `query`, give each answer to `learn_keys`, then decide `retry` again."""

    master_hash: bytes
    addresses: tuple[Addr, ...]
    query: bytes
    retry: ReceivedRequest


@dataclass(frozen=True, slots=True)
class Drop:
    """Answer nothing (an unauthenticated intra-cluster datagram)."""

    reason: str


NodeAction = Respond | Invoke | ServeState | Forward | FetchKeys | Drop
