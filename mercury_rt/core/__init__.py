"""The pure core of mercury-rt: every protocol rule, and no I/O.

Everything here is synchronous and deterministic: it takes bytes, events and a time value
and returns bytes, events and decisions. No module in this package imports asyncio,
socket, time, threading, lmdb, yaml, pydantic or structlog, directly or through another
package (tests/unit/test_purity.py checks every module in a fresh interpreter); randomness
is an injected `random.Random` and time is a `now` argument. The asyncio shell
(`mercury_rt.aio`) and the simulator (`mercury_rt.testing`) carry out what the core decides.

The map: which area owns which rule. Each area's face (its `__init__`) lists its rules in
more detail; import the face, not the modules behind it.

- `transport/`  reliable request/reply over datagrams: the envelope and its strict
  decoding, retransmission and RTO, at-most-once records and `done_below`, kept replies
  for retransmitted requests, fragmentation, flow control and anti-amplification.
- `identity/`   cluster IDs, EIDs, keys and domain-separated signatures, the key ring and
  rotation, minting, seed phrases, verification levels, text and storage forms.
- `gate/`       the ordered security pipeline a request passes before its handler runs:
  hashcash first, then source authentication, delegation, MAC and DAC (the MAC and DAC
  decisions themselves are `policy.access`).
- `routing/`    where a request goes: server-side run here / redirect / forward, the
  caller's SRV-ordered failover and redirects, reply interpretation, forwarding records.
- `membership/` which nodes of a cluster are alive: heartbeats, node certificates,
  dead and moved nodes.
- `transit/`    every node message between nodes in an encrypted, authenticated session:
  algorithms, transit keys and certificates, the caller's proof of its cluster, the key
  schedule, replay windows, both ends' state, and the design's negotiation.
- `connections/` connections between entities: the connection field of a request, one
  end's state machine (re-establishment, idle, vanished peer, reservation), the bounds
  on the connections a node serves.
- `node/`       the node core that joins the areas: a request's path through decode, the
  transit check, route, gate and dispatch as actions; a call's path as steps (with its
  transit algorithm); held one-way messages; the membership seal; the node's reactions to
  membership.

Areas depend one way: transport and identity depend on no other area; gate and routing
may use identity; membership may use identity and routing; transit may use identity and
membership; connections uses none; node may use them all
(tests/unit/test_import_structure.py checks it).
"""
