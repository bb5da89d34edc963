"""Nodes of a new cluster started more than the warm-up apart publish interim cluster-ID
versions, at the times docs/operator-guide.md states (issue 16 item 24)."""

from __future__ import annotations

from pathlib import Path

from mercury_rt.core.membership import MembershipConfig
from mercury_rt.core.node import MembershipSettings
from tests.membership_node_support import World

GUIDE = " ".join((Path(__file__).parents[3] / "docs" / "operator-guide.md").read_text().split())


def test_a_late_node_is_first_unpublished_then_published_again() -> None:
    config, settings = MembershipConfig(), MembershipSettings()
    warm_up = config.dead_after * config.interval
    settle = settings.settle_intervals * config.interval
    assert f"more than about {warm_up:g} s apart (the warm-up" in GUIDE
    assert f"about {settle:g} s after it first hears from them (the settle time, " \
        f"{settings.settle_intervals} intervals)" in GUIDE
    world = World(2, config)
    world.stop(b"n1")  # started late: not running yet
    versions = []
    for _ in range(int(warm_up + settle) + 3):
        world.step()
        versions.append(world.version(b"n0"))
    assert versions[0] == 1 and versions[-1] == 2, "interim version without the late node"
    published = next(i for i, v in enumerate(versions) if v == 2) + 1
    assert published * config.interval == warm_up, "at once when the warm-up ends"
    assert len(world.nodes[b"n0"].core.state.cluster_id.addresses) == 1
    world.start(b"n1")
    versions = []
    for _ in range(int(settle) + 3):
        world.step()
        versions.append(world.version(b"n0"))
    republished = next(i for i, v in enumerate(versions) if v == 3) + 1
    assert settle <= republished * config.interval <= settle + 1
    assert world.version(b"n1") == 3
    assert len(world.nodes[b"n0"].core.state.cluster_id.addresses) == 2
