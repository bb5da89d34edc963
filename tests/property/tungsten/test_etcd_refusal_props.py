"""Properties of the decisions behind etcd's failures: which code a member's refusal gets,
what a TLS failure is said to mean, and that another party's text enters an error bounded
and printable."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from carbon.error_codes import ErrorCode
from tungsten.etcd_store import EtcdTls, refusal, retry_pause, tls_hint

STATUSES = st.sampled_from(["RESOURCE_EXHAUSTED", "UNKNOWN", "INVALID_ARGUMENT",
                            "FAILED_PRECONDITION", "PERMISSION_DENIED"])
MARKS = ["database space exceeded", "larger than max", "CERTIFICATE_VERIFY_FAILED",
         "BAD_CERTIFICATE", "TSI_DATA_CORRUPTED", "CERTIFICATE_REQUIRED", "UNKNOWN_CA",
         "certificate required", "certificate verify failed"]
PLAIN = st.text(max_size=3000).filter(lambda t: not any(m in t for m in MARKS))


@given(STATUSES, PLAIN, st.integers(1, 2**31))
def test_an_unrecognised_refusal_stays_a_state_failure_with_bounded_printable_text(
        status: str, detail: str, limit: int) -> None:
    error = refusal(status, detail, "10.0.0.5:2379", limit)
    assert error.code is ErrorCode.STATE_FAILURE
    assert len(error.message) < 400
    assert error.message.isprintable()


@given(st.text(max_size=500), st.text(max_size=500), st.integers(1, 2**31))
def test_nospace_is_462_and_an_oversized_reply_463_only_on_resource_exhausted(
        before: str, after: str, limit: int) -> None:
    space = refusal("RESOURCE_EXHAUSTED", before + "database space exceeded" + after, "m", limit)
    assert space.code is ErrorCode.REPLICATION_SPACE_EXCEEDED
    assert "etcdctl alarm disarm" in space.message
    big = refusal("RESOURCE_EXHAUSTED", f"Received message larger than max ({limit + 1} vs. "
                                        f"{limit}){after}".replace("database space", ""),
                  "m", limit)
    assert big.code is ErrorCode.REPLICATION_REPLY_TOO_LARGE
    assert f"({limit} bytes)" in big.message
    other = refusal("UNKNOWN", before + "database space exceeded" + after, "m", limit)
    assert other.code is ErrorCode.STATE_FAILURE


@given(st.text(max_size=2000))
def test_a_plaintext_connection_gets_no_tls_hint(failure: str) -> None:
    assert tls_hint(failure, None) == ""


@given(PLAIN, st.booleans())
def test_only_handshake_words_get_a_tls_hint(failure: str, client: bool) -> None:
    tls = EtcdTls(b"ca", b"cert", b"key") if client else EtcdTls(b"ca")
    assert tls_hint(failure, tls) == ""
    ours = tls_hint(failure + "CERTIFICATE_VERIFY_FAILED", tls)
    assert "replication.tls.ca_file" in ours
    theirs = tls_hint(failure + "SSLV3_ALERT_BAD_CERTIFICATE", tls)
    assert "the member refused this node" in theirs
    assert ("no client certificate was given" in theirs) is not client


@given(st.integers(1, 10_000), st.integers(1, 16))
def test_failed_attempts_pause_only_between_rounds_and_never_long(failed: int,
                                                                  members: int) -> None:
    pause = retry_pause(failed, members)
    assert 0.0 <= pause <= 0.25
    assert (pause > 0) is (failed % members == 0), "no pause within a round of the members"
    if failed % members == 0 and failed > members:
        assert pause >= retry_pause(failed - members, members), "pauses never shrink"


def test_a_member_that_fails_at_once_is_tried_a_bounded_number_of_times() -> None:
    waited, tries = 0.0, 0
    while waited < 5.0:  # the default `timeout`
        tries += 1
        waited += retry_pause(tries, 1)
    assert tries < 40, tries
