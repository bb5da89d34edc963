"""Which cluster-ID version is live, and which number the next one may take (pure).

Nodes issue cluster-ID versions by themselves (a node died, an address changed:
docs/protocol.md 6.7.3) and record each one they publish or adopt where the operator's
tools read it (mercury_rt.config.published). The tools and a restarting node then combine
two kinds of input:

- the trusted history: the cluster directory's cluster-ids.cbor, written by the CLI;
- candidates: versions read from files the nodes wrote. Anyone who can write those files
  could plant one, so a candidate counts only if it belongs to this cluster (master hash)
  and verifies under the cluster's key chain (master certificate, cluster-key signature,
  no rotated-out key); anything else is ignored and reported, never trusted.

The live version is the highest version among the history and the verified candidates
(for two different lists under one number, the one with the smaller encoding, so every
reader picks the same). A new version must be numbered above every verified version seen,
so no number any node used is issued twice; an unverified file cannot push the number up
(it would otherwise exhaust the version space).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from carbon.error_codes import ErrorCode, MercuryError
from mercury_rt.core.identity.cluster_id import ClusterId
from mercury_rt.core.identity.errors import IdentityError
from mercury_rt.core.identity.fields import U32_MAX
from mercury_rt.core.identity.keyring import KeyRing


@dataclass(frozen=True, slots=True)
class Candidate:
    """A cluster ID read from `source` (a file a node wrote, named for the operator)."""

    source: str
    cluster_id: ClusterId


@dataclass(frozen=True, slots=True)
class Ignored:
    """A candidate that does not count, and why (a stable code and a readable reason)."""

    source: str
    code: ErrorCode
    reason: str


@dataclass(frozen=True, slots=True)
class LiveVersion:
    """The live cluster ID, where it came from, and what every reader must respect."""

    cluster_id: ClusterId
    source: str
    """The candidate's source, or HISTORY when no verified candidate is higher."""
    history: tuple[ClusterId, ...]
    """The trusted history, with the live version appended when a candidate supplied it."""
    used: frozenset[int]
    """Every version number seen verified (history and candidates)."""
    ignored: tuple[Ignored, ...]
    conflicts: tuple[int, ...]
    """Version numbers under which verified candidates (or a candidate and the history)
    name different cluster IDs."""
    verified: tuple[Candidate, ...] = ()
    """The candidates that count, in the order given."""


HISTORY = "cluster-ids.cbor"


class VersionSink(Protocol):
    """Where a node records each cluster-ID version it publishes or adopts, so the
    operator's tools and its own restart see it (mercury_rt.config.published has the file
    implementation; a replicated store can implement the same)."""

    def record(self, cluster_id: ClusterId) -> None:
        """Persist `cluster_id` durably before the node announces it (raises on failure)."""


def live_version(history: Sequence[ClusterId], candidates: Sequence[Candidate]) -> LiveVersion:
    """The live version from a non-empty trusted history and any candidates (see module
    docstring). Never raises for a candidate: a bad one is returned in `ignored`."""
    if not history:
        raise ValueError("the trusted cluster-ID history is empty")
    ring = KeyRing()
    for known in history:
        ring.learn_cluster_id(known)
    verified, ignored = _verify_all(ring, history[-1].master_hash, candidates)
    best_by_version, conflicts = _one_per_version(history, verified)
    used = frozenset({c.version for c in history} | set(best_by_version))
    current = max(history, key=lambda c: c.version)
    top = max(best_by_version.values(), key=lambda c: c.cluster_id.version, default=None)
    if top is None or top.cluster_id.version <= current.version:
        return LiveVersion(current, HISTORY, tuple(history), used, ignored,
                           tuple(sorted(conflicts)), tuple(verified))
    return LiveVersion(top.cluster_id, top.source, (*history, top.cluster_id), used, ignored,
                       tuple(sorted(conflicts)), tuple(verified))


def _one_per_version(history: Sequence[ClusterId], verified: Sequence[Candidate],
                     ) -> tuple[dict[int, Candidate], set[int]]:
    """The candidate every reader picks per version number, and the numbers under which
    two different cluster IDs exist (between candidates, or a candidate and the history)."""
    trusted = {c.version: c for c in history}
    conflicts = {c.cluster_id.version for c in verified
                 if trusted.get(c.cluster_id.version, c.cluster_id) != c.cluster_id}
    best_by_version: dict[int, Candidate] = {}
    for cand in verified:
        held = best_by_version.get(cand.cluster_id.version)
        if held is not None and held.cluster_id != cand.cluster_id:
            conflicts.add(cand.cluster_id.version)
        if held is None or _rank(cand) < _rank(held):
            best_by_version[cand.cluster_id.version] = cand
    return best_by_version, conflicts


def next_version(live: LiveVersion) -> int:
    """The number a new version takes: one above every verified version seen."""
    number = max(live.used) + 1
    if number > U32_MAX:
        raise IdentityError(f"cluster-ID version {number} would exceed {U32_MAX}",
                            ErrorCode.FIELD_TOO_LARGE)
    return number


def _rank(candidate: Candidate) -> tuple[bytes, str]:
    return candidate.cluster_id.encode(), candidate.source


def _verify_all(ring: KeyRing, master: bytes, candidates: Sequence[Candidate],
                ) -> tuple[list[Candidate], tuple[Ignored, ...]]:
    """Two passes: learn every genuine key first, then re-check each candidate's key
    against all of them, so a rotated-out key is refused whatever order files come in."""
    learnt: list[Candidate] = []
    ignored: list[Ignored] = []
    for cand in candidates:
        cid = cand.cluster_id
        if cid.master_hash != master:
            ignored.append(Ignored(cand.source, ErrorCode.MASTER_MISMATCH,
                                   "a cluster ID of another cluster (master key hash differs)"))
            continue
        try:
            ring.learn_cluster_id(cid)
        except MercuryError as exc:
            ignored.append(Ignored(cand.source, exc.code, exc.message))
            continue
        learnt.append(cand)
    verified: list[Candidate] = []
    for cand in learnt:
        cid = cand.cluster_id
        try:
            ring.check_current(cid.master_hash, cid.cluster_key_hash, cid.key_version,
                               cid.version)
        except MercuryError as exc:
            ignored.append(Ignored(cand.source, exc.code, exc.message))
            continue
        verified.append(cand)
    return verified, tuple(ignored)
