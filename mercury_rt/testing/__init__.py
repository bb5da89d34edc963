"""Deterministic simulation of mercury-rt without sockets or real time, for the tests.

Everything here is driven by one seed: the network's loss, duplication, delay and
reordering, every transport's and node's randomness, and the order in which things
happen. A failing run replays exactly from the seed its assertion prints.

- `SimNetwork` (network.py) is the one delivery loop: it carries datagrams between
  sans-IO endpoints under a `LinkProfile`, with crashes, address moves and partitions,
  and jumps its `FakeClock` (the one fake clock) straight to the next delivery or timer.
- `TransportHost` (network.py) puts a bare `Transport` and an event handler on it.
- `Simulation` (simulation.py) is the harness the simulation tests build on: the network
  plus a `Timeline` of scripted actions (faults, calls) that run in the same order as
  datagrams and timers.
- `SimNode` (nodes.py) is the simulated whole node: the real NodeCore and call driver
  on two simulated addresses, built from a `SimNodeSpec`, recording what ran where in
  `Executions`.

The simulator does not know real sockets, asyncio or the wall clock. Beside it, for app
developers' tests (imported by name, not from here): `handlers` runs one handler through
the real invoker and re-raises its exception; `clusters` and `pytest_plugin` (the
`mercury_network` fixture) start real nodes on loopback serving their apps. Nothing here
runs in a deployed node.
"""

from mercury_rt.testing.network import (
    FakeClock,
    LinkProfile,
    SansIOEndpoint,
    SimNetwork,
    TransportHost,
)
from mercury_rt.testing.nodes import (
    Executions,
    SimNode,
    SimNodeSpec,
)
from mercury_rt.testing.simulation import TIMELINE_ADDRESS, Simulation, Timeline

__all__ = [
    "TIMELINE_ADDRESS",
    "Executions",
    "FakeClock",
    "LinkProfile",
    "SansIOEndpoint",
    "SimNetwork",
    "SimNode",
    "SimNodeSpec",
    "Simulation",
    "Timeline",
    "TransportHost",
]
