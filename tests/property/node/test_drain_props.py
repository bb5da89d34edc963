"""Properties of draining (core/node/membership.py `drain`): whichever node drains, and
whenever after the warm-up, the cluster publishes a version without exactly its address
within the drain's wait, and the draining node stays alive in its peers' views meanwhile
(it still heartbeats), so nobody counts it dead while it finishes its work."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.membership_node_support import CONFIG, World

SETTLE_INTERVALS = 2
DRAIN_WAIT = SETTLE_INTERVALS + 4
"""The drain's default unpublish bound, in intervals (aio/drain.py)."""


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2), st.integers(0, 3))
def test_a_draining_node_is_unpublished_in_time_and_stays_alive(draining: int,
                                                                after: int) -> None:
    world = World(3)
    world.step(CONFIG.dead_after + 1 + after)
    name = world.names[draining]
    world.deliver(name, world.nodes[name].drain(world.now))
    for _ in range(DRAIN_WAIT):
        world.step()
        if all(world.inter[name] not in _listed(world, n) for n in world.names):
            break
    others = {world.inter[n] for n in world.names if n != name}
    for observer in world.names:
        assert _listed(world, observer) == others, observer
        if observer != name:
            assert world.alive_in_view(observer, name), "a draining node is not dead"
    assert world.nodes[name].own_public == ()


def _listed(world: World, observer: bytes) -> set[tuple[str, int]]:
    cid = world.nodes[observer].core.state.cluster_id
    return {(str(a.host), a.port) for a in cid.addresses}
