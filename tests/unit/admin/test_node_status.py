"""The status document of `node status|members`: its JSON round trip, its checks, and
what a person sees."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mercury_rt.aio.node_status import (
    MemberStatus,
    NodeStatusReport,
    Readiness,
    StatusFormatError,
)
from mercury_rt.cli.node_status import member_lines, status_lines

TEXT = st.text(max_size=20)
NUMBER = st.floats(0, 1e9, allow_nan=False)
MEMBERS = st.builds(MemberStatus, TEXT, st.sampled_from(["self", "alive", "suspect", "dead",
                                                         "unheard"]),
                    st.booleans(), st.none() | TEXT, st.none() | TEXT, st.none() | NUMBER,
                    st.none() | st.integers(0, 2**63))
REPORTS = st.builds(NodeStatusReport, TEXT, TEXT, st.integers(0, 2**32),
                    st.lists(TEXT, max_size=3).map(tuple), st.none() | TEXT,
                    st.none() | TEXT, NUMBER,
                    st.builds(Readiness, st.booleans(), st.booleans(), st.booleans(),
                              st.booleans()),
                    st.lists(MEMBERS, max_size=4).map(tuple), st.integers(0, 10**9),
                    st.integers(0, 10**6), st.integers(0, 10**6))


@given(REPORTS)
def test_a_status_survives_json_unchanged(report: NodeStatusReport) -> None:
    text = json.dumps(report.to_json())
    assert NodeStatusReport.from_json(json.loads(text)) == report


FITS = {"node_id": (str,), "cluster_id_version": (int,), "held_pending": (int,),
        "members": (list,), "ready": (dict,), "uptime": (int, float)}


@given(REPORTS, st.sampled_from(sorted(FITS)), st.sampled_from([None, "x", 1.5, [], True]))
def test_a_field_of_the_wrong_type_is_a_format_error_not_a_crash(
        report: NodeStatusReport, key: str, value: object) -> None:
    doc = report.to_json()
    doc[key] = value
    fits = isinstance(value, FITS[key]) and not isinstance(value, bool)
    if fits:
        assert NodeStatusReport.from_json(doc) is not None
    else:
        with pytest.raises(StatusFormatError):
            NodeStatusReport.from_json(doc)


def test_not_an_object_is_a_format_error() -> None:
    with pytest.raises(StatusFormatError, match="expected a JSON object"):
        NodeStatusReport.from_json(["not", "a", "status"])


def _report(ready: Readiness) -> NodeStatusReport:
    members = (MemberStatus("node-a", "self", True, "127.0.0.1:7401", "127.0.0.1:7501",
                            None, None),
               MemberStatus("node-b", "suspect", False, None, "127.0.0.2:7502", 4.25, 17))
    return NodeStatusReport("node-a", "0123456789abcdef" * 4, 3,
                            ("127.0.0.1:7401/10/50",), "127.0.0.1:7401", "127.0.0.1:7501",
                            12.34, ready, members, 2, 5, 1)


def test_status_text_names_what_is_not_ready() -> None:
    lines = status_lines(_report(Readiness(True, True, False)))
    assert lines[0] == ("node node-a of cluster 0123456789abcdef, cluster ID version 3, "
                        "up 12.3 s")
    assert lines[1] == "ready: no (not yet: membership settled)"
    assert "published: 127.0.0.1:7401/10/50" in lines
    assert "members: 2 (1 routed)" in lines
    assert lines[-1] == "held messages: 2 pending; transit sessions: 5; entities mirrored: 1"
    assert status_lines(_report(Readiness(True, True, True)))[1] == "ready: yes"


def test_status_text_says_a_node_is_draining() -> None:
    assert status_lines(_report(Readiness(True, True, True, not_draining=False)))[1] == \
        "ready: no (draining)"
    assert status_lines(_report(Readiness(True, True, False, not_draining=False)))[1] == \
        "ready: no (not yet: membership settled; draining)"


def test_a_readiness_without_the_draining_flag_is_read_as_not_draining() -> None:
    ready = Readiness(True, True, True, not_draining=False)
    doc = ready.to_json()
    assert doc == {"ready": False, "keys_loaded": True, "sockets_bound": True,
                   "membership_settled": True, "not_draining": False}
    assert Readiness.from_json(doc) == ready
    del doc["not_draining"]
    assert Readiness.from_json(doc) == Readiness(True, True, True)
    with pytest.raises(StatusFormatError):
        Readiness.from_json({**doc, "not_draining": "no"})


def test_members_text_is_one_aligned_row_per_node() -> None:
    lines = member_lines(_report(Readiness(True, True, True)).members)
    assert lines[0].split() == ["NODE", "LIVENESS", "ROUTED", "PUBLIC", "INTRA", "LAST",
                                "HEARD", "INCARNATION"]
    assert lines[1].split() == ["node-a", "self", "yes", "127.0.0.1:7401", "127.0.0.1:7501",
                                "-", "-"]
    assert lines[2].split() == ["node-b", "suspect", "no", "-", "127.0.0.2:7502", "4.2", "s",
                                "ago", "17"]
    assert lines[1].index("self") == lines[2].index("suspect") == lines[0].index("LIVENESS")
