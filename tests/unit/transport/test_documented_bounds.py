"""The transport bounds docs/protocol.md section 3 states are the reference defaults
(issue 16 item 16: the per-address record bound senders must stay under)."""

from __future__ import annotations

from pathlib import Path

from mercury_rt.core.transport import TransportConfig

DOC = " ".join((Path(__file__).parents[3] / "docs" / "protocol.md").read_text().split())


def test_record_bounds_and_call_span_are_documented_with_their_values() -> None:
    cfg = TransportConfig()
    assert f"`max_call_span` (default {cfg.max_call_span})" in DOC
    assert f"(`max_records_per_peer`, {cfg.max_records_per_peer:,} in the reference" in DOC
    assert f"`max_records` {cfg.max_records:,} records in all" in DOC
    assert f"`max_records_per_peer` {cfg.max_records_per_peer:,} per address" in DOC
    assert f"`max_cached_reply_bytes` {cfg.max_cached_reply_bytes // 2**20} MiB" in DOC
    assert (f"`max_reply_bytes_per_peer` {cfg.max_reply_bytes_per_peer // 2**20} MiB per "
            "address") in DOC
    assert f"At most `max_peers` ({cfg.max_peers:,})" in DOC
    assert f"at most `max_epochs_per_peer` ({cfg.max_epochs_per_peer}) per address" in DOC
    assert cfg.max_call_span <= cfg.max_records_per_peer
