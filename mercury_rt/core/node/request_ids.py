"""Which at-most-once record a request belongs to, across every node of the cluster.

A caller chooses a request id (body key 11) or a message id (key 9) and keeps it on every
retry, at any node. The id is the caller's own choice, so it is scoped by the principal
access control decided on: one caller can never hit (or read the stored reply of)
another caller's record by choosing the same id. Hashed so the record key is short and
fixed-size whatever the principal carries.
"""

from __future__ import annotations

import hashlib

from carbon import cbor
from carbon.principal import Principal
from mercury_rt.core.node.messages import NodeRequest, principal_to_value


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
    scope = [principal_to_value(principal), entity, request.endpoint, request.operation]
    return kind + hashlib.blake2b(cbor.dumps([*scope, chosen]), digest_size=24).digest()
