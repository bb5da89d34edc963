"""Where node-level records (not any entity's state) live in the node's state store.

Entity names in the store are EID local parts, which are at least one byte; the node's own
records use one reserved entity, a single NUL byte followed by `node`, which the node
configuration refuses as an entity name (control characters are not allowed there).
"""

from __future__ import annotations

from carbon.symbols import Symbol

NODE_ENTITY = b"\x00node"
HELD_SECTION = Symbol("/argon/mercury/held")
SPENT_SECTION = Symbol("/argon/mercury/spent")
SPENT_EXPIRY_SECTION = Symbol("/argon/mercury/spent-expiry")
SPENT_META_SECTION = Symbol("/argon/mercury/spent-meta")
DELIVERED_SECTION = Symbol("/argon/mercury/delivered")
DELIVERED_EXPIRY_SECTION = Symbol("/argon/mercury/delivered-expiry")
DELIVERED_META_SECTION = Symbol("/argon/mercury/delivered-meta")
MOVED_SECTION = Symbol("/argon/mercury/moved")
