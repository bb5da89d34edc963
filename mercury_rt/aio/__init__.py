"""The asyncio shell: sockets, timers and tasks that carry out what the pure core decides.

Nothing here decides: each module feeds the core datagrams and the time, and carries out
the core's datagrams, events, actions and steps.

- endpoint.py: one UDP socket around a `Transport` (one loop timer, futures for our
  calls, handler tasks for requests to us).
- node_runtime.py: a whole node: two endpoints, LITHIUM's invoker, held-message retries
  and membership, carrying out `NodeCore` actions and `OutgoingCall` steps.
- membership_service.py: heartbeats and membership announcements on the intra-cluster
  endpoint. remote_state.py: a handler's state on another node (fetch and commit).
- audit.py: the audit sink, one JSON line per gate decision. loop.py: uvloop and GC tuning.

Submodules are imported by name (`from mercury_rt.aio.node_runtime import NodeRuntime`),
so importing one part of the shell does not start the rest.
"""
