"""The operator guide states the answer timeout the node uses (issue 16 item 23): twice
the initial retransmission timeout, in every place it is mentioned."""

from __future__ import annotations

import re
from pathlib import Path

from mercury_rt.aio.node_runtime import default_answer_timeout
from mercury_rt.core.transport import TransportConfig

GUIDE = " ".join((Path(__file__).parents[3] / "docs" / "operator-guide.md").read_text().split())


def test_every_multiple_of_the_initial_rto_in_the_guide_is_the_nodes() -> None:
    multiples = re.findall(r"(\d+|two|three)\s?x?\s?(?:the )?initial retransmission timeout",
                           GUIDE)
    multiples += re.findall(r"(\d+) x `transport.initial_rto`", GUIDE)
    assert multiples, "the guide states the answer timeout"
    assert set(multiples) <= {"2", "two"}, multiples
    config = TransportConfig()
    assert default_answer_timeout(config) == 2 * config.initial_rto
