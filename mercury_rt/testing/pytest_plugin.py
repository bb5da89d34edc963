"""pytest plugin: the `mercury_network` fixture (installed with mercury-rt, entry point
`pytest11`; or list `pytest_plugins = ["mercury_rt.testing.pytest_plugin"]`).

    def test_counter(mercury_network):
        net = mercury_network(apps=["myapp.counter"], entities=["alice"], clusters=2)
        counter = net.client(net.eid("alice", cluster=1), COUNTER, caller="bob")
        assert net.run(counter.add(n=5)) == 5

Options are app_network's (mercury_rt.testing.clusters): apps, entities, clusters,
nodes, policy, handler_timeout, echo, transport. Every node is stopped when the test ends.
The heavy imports wait for the fixture's first use, so loading the plugin costs nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from mercury_rt.testing.clusters import NetworkStarter


@pytest.fixture
def mercury_network() -> Iterator[NetworkStarter]:
    """Start in-process test clusters serving your apps; all stopped after the test."""
    from mercury_rt.testing.clusters import NetworkStarter  # noqa: PLC0415 - see docstring

    starter = NetworkStarter()
    try:
        yield starter
    finally:
        starter.close()
