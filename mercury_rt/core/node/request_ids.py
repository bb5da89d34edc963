"""Which at-most-once record a request belongs to, across every node of the cluster.

A caller chooses a request id (body key 11) or a message id (key 9) and keeps it on every
retry, at any node. The id is the caller's own choice, so it is scoped by the principal
access control decided on: one caller can never hit (or read the stored reply of)
another caller's record by choosing the same id. Hashed so the record key is short and
fixed-size whatever the principal carries.

The hashed bytes are the canonical CBOR of `[principal, entity, endpoint, operation, id]`.
For a principal without a persona (every call but persona ones) they are written here
head by head, the same bytes `cbor.dumps` gives (a property test holds them to it): the
generic encoder's kind walk cost more than the rest of a served request's bookkeeping.
"""

from __future__ import annotations

import hashlib

from carbon import cbor
from carbon.principal import Principal
from mercury_rt.core.node.envelope import bytes_head
from mercury_rt.core.node.messages import NodeRequest, principal_to_value

_MAX_U64 = 2**64 - 1
_SCOPE_HEAD = b"\x85\x84"
"""An array of 5 whose first item, the principal, is an array of 4."""
_NO_PERSONA = b"\xf6\xf6"
"""The principal's persona class and parameters, both null."""


def scoped_request_id(principal: Principal, request: NodeRequest,
                      entity: bytes) -> bytes | None:
    """The cluster-wide record id of this request to `entity` (its cluster-local part),
    or None if the caller gave no id. The entity, endpoint and operation are in the hash
    too: a caller reusing an id for another operation must not get the first one's
    stored reply."""
    chosen = request.request_id if request.request_id is not None else request.message_id
    if chosen is None:
        return None
    kind = b"r" if request.request_id is not None else b"m"
    scope = _plain_scope(principal, request, entity, chosen)
    if scope is None:
        scope = cbor.dumps([principal_to_value(principal), entity, request.endpoint,
                            request.operation, chosen])
    return kind + hashlib.blake2b(scope, digest_size=24).digest()


def _plain_scope(principal: Principal, request: NodeRequest, entity: bytes,
                 chosen: bytes) -> bytes | None:
    """`cbor.dumps` of the scope for a principal without a persona, byte strings and
    unsigned integers where the scope has them; None for anything else (the general
    encoder then decides, refusals included)."""
    cluster, local, endpoint, operation = (principal.cluster, principal.local,
                                           request.endpoint, request.operation)
    if (principal.persona is not None or type(cluster) is not bytes
            or type(local) is not bytes or type(entity) is not bytes
            or type(chosen) is not bytes or type(endpoint) is not int
            or type(operation) is not int or not 0 <= endpoint <= _MAX_U64
            or not 0 <= operation <= _MAX_U64):
        return None
    return b"".join((_SCOPE_HEAD, bytes_head(len(cluster)), cluster, bytes_head(len(local)),
                     local, _NO_PERSONA, bytes_head(len(entity)), entity, uint_head(endpoint),
                     uint_head(operation), bytes_head(len(chosen)), chosen))


def uint_head(n: int) -> bytes:
    """The canonical encoding of an unsigned integer 0 <= n < 2^64 (major type 0)."""
    if n < 24:
        return bytes((n,))
    if n < 0x100:
        return bytes((0x18, n))
    if n < 0x10000:
        return b"\x19" + n.to_bytes(2, "big")
    if n < 0x100000000:
        return b"\x1a" + n.to_bytes(4, "big")
    return b"\x1b" + n.to_bytes(8, "big")
