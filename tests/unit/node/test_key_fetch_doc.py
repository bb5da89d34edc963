"""The key-fetch timings docs/protocol.md 6.9 states are the node's (issue 16 items 9, 12)."""

from __future__ import annotations

from pathlib import Path

from mercury_rt.aio.node_runtime import KEY_FETCH_TIMEOUT, default_answer_timeout
from mercury_rt.core.node.fetch_budget import (
    ADDRESS_BURST,
    ADDRESS_RATE,
    FETCH_BURST,
    FETCH_RATE,
    NEGATIVE_FOR,
)
from mercury_rt.core.node.server import FETCH_ADDRESSES, FETCH_EVERY
from mercury_rt.core.transport import TransportConfig

DOC = (Path(__file__).parents[3] / "docs" / "protocol.md").read_text()
FETCH = " ".join(DOC[DOC.index("**Key fetch.**"):DOC.index("**Client behaviour.**")].split())
WORDS = {3: "three"}


def test_the_documented_key_fetch_timings_are_the_nodes() -> None:
    assert f"at most {WORDS[FETCH_ADDRESSES]} of the addresses" in FETCH
    assert f"each with a {KEY_FETCH_TIMEOUT:g} s deadline" in FETCH
    answer = default_answer_timeout(TransportConfig())
    assert f"default {answer:g} s), so an address that does not acknowledge is passed over " \
           f"after {answer:g} s" in FETCH
    assert f"held at most {FETCH_ADDRESSES * KEY_FETCH_TIMEOUT:g} s" in FETCH
    assert f"at most one fetch per cluster per {FETCH_EVERY:g} s" in FETCH


def test_the_documented_fetch_budget_is_the_nodes() -> None:
    assert f"at most {FETCH_RATE:g} new fetches per second for all clusters together " \
           f"(bursts of {FETCH_BURST:g})" in FETCH
    assert f"at most {ADDRESS_BURST:g} times in a burst, then once per {1 / ADDRESS_RATE:g} s" \
        in FETCH
    assert f"not asked for that cluster again for {NEGATIVE_FOR:g} s" in FETCH
