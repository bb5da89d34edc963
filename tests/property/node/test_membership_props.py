"""Properties of a node's membership (NodeMembership over the lockstep World): a cluster
converges on one cluster ID listing exactly its live nodes after any schedule of crashes,
restarts at new addresses and partitions, and hostile sealed bytes never raise or replace
the cluster ID."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mercury_rt.core.identity import change_addresses
from mercury_rt.core.membership import (
    encode_announcement,
    encode_heartbeat_message,
)
from tests.membership_node_support import CONFIG, World

EVENT = st.tuples(st.sampled_from(["stop", "restart", "move", "cut", "heal", "wait"]),
                  st.integers(0, 2), st.integers(0, 2), st.integers(1, 4))


@settings(max_examples=60, deadline=None)
@given(st.lists(EVENT, min_size=1, max_size=6))
def test_any_schedule_converges_on_one_cluster_id_of_the_live_nodes(
        schedule: list[tuple[str, int, int, int]]) -> None:
    """After the faults stop, every running node holds the same cluster ID, it lists
    exactly the running nodes' public addresses, and no node's version ever went down."""
    world = World(3)
    moves = 0
    seen: dict[bytes, int] = {}

    def run(steps: int) -> None:
        for _ in range(steps):
            world.step()
            for name, node in world.nodes.items():
                version = node.core.state.cluster_id.version
                assert version >= seen.get(name, 0) or name in restarted
                seen[name] = version
            restarted.clear()

    restarted: set[bytes] = set()
    for action, a, b, steps in schedule:
        name, other = world.names[a], world.names[b]
        if action == "stop" and name in world.nodes:
            world.stop(name)
        elif action in ("restart", "move"):
            world.nodes.pop(name, None)
            if action == "move":
                moves += 1
                world.inter[name] = (world.inter[name][0], 8000 + moves)
                world.intra[name] = (f"10.0.9.{moves}", 7100)
            world.start(name)
            restarted.add(name)
        elif action == "cut" and name != other:
            world.cut.add(frozenset((name, other)))
        elif action == "heal":
            world.cut.clear()
        run(steps)
    world.cut.clear()
    run(4 * CONFIG.dead_after)
    if not world.nodes:
        return
    ids = {node.core.state.cluster_id for node in world.nodes.values()}
    assert len(ids) == 1
    [cid] = ids
    live = {world.inter[n] for n in world.nodes}
    assert {(str(a.host), a.port) for a in cid.addresses} == live


HOSTILE_WORLD = World(2)


def flipped(data: bytes, index: int, mask: int) -> bytes:
    index %= len(data)
    return data[:index] + bytes([data[index] ^ mask]) + data[index + 1:]


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=600),
       st.sampled_from(["announce", "heartbeat", "raw", "flip-announce", "flip-heartbeat"]),
       st.integers(0, 10_000), st.integers(1, 255))
def test_hostile_sealed_membership_bytes_never_raise_or_change_the_cluster_id(
        body: bytes, kind: str, index: int, mask: int) -> None:
    """Whatever a node of the cluster (or a replay) puts in a sealed envelope, random or
    a genuine message with one byte altered, receive answers with a step or None, never
    raises, and never replaces the cluster ID."""
    sender, receiver = (HOSTILE_WORLD.nodes[n] for n in HOSTILE_WORLD.names)
    newer = change_addresses(HOSTILE_WORLD.cluster_id, HOSTILE_WORLD.cluster_key, ())
    beat = sender.identity.heartbeat(newer.master_hash, 1, 1, ())
    payload = {"announce": encode_announcement(body),
               "heartbeat": encode_heartbeat_message(body), "raw": body,
               "flip-announce": encode_announcement(flipped(newer.encode(), index, mask)),
               "flip-heartbeat": encode_heartbeat_message(flipped(beat.encode(), index, mask)),
               }[kind]
    before = receiver.core.state.cluster_id
    receiver.receive(sender.core.seal.seal(payload), ("10.0.0.1", 7100), 1.0)
    receiver.receive(payload, ("10.0.0.1", 7100), 1.0)
    assert receiver.core.state.cluster_id is before
