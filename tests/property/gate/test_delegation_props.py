"""No generated delegation chain grants more than its certificates do."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from carbon.principal import Principal
from mercury_rt.core.gate import (
    DelegationError,
    SignatureCache,
    issue_certificate,
    verify_chain,
)
from tests.gate_support import (
    ALICE,
    LOCAL,
    NOW,
    PARTNER,
    STRANGER,
    CountingVerifier,
    cluster_key,
    fake_eid,
)

CLUSTERS = [LOCAL, PARTNER, STRANGER]
PEOPLE = [Principal(c, name) for c in CLUSTERS for name in (b"a", b"b", b"c")]
KNOWN = {LOCAL, PARTNER}  # the verifier rejects STRANGER's EIDs
MAX_CHAIN = 3
SHARED_CACHE = SignatureCache()  # shared across examples: a warm cache must grant nothing more


@dataclass(frozen=True)
class Spec:
    """What a certificate says and who really signed it."""

    delegate: Principal
    delegator: Principal
    expires: int
    signer: bytes


person = st.sampled_from(PEOPLE)
specs = st.builds(Spec, person, person, st.sampled_from([int(NOW) - 1, int(NOW), int(NOW) + 9]),
                  st.sampled_from(CLUSTERS))


def reference(originator: Principal, chain: list[Spec]) -> Principal | None:
    """Obviously correct: every link genuine, current, linked, known, and new."""
    if len(chain) > MAX_CHAIN:
        return None
    current, seen = originator, {originator}
    for spec in chain:
        genuine = spec.signer == spec.delegator.cluster and spec.delegator.cluster in KNOWN
        if not genuine or spec.expires <= NOW or spec.delegate != current \
                or spec.delegator in seen:
            return None
        current = spec.delegator
        seen.add(current)
    return current


@st.composite
def chains(draw: st.DrawFn) -> tuple[Principal, list[Spec]]:
    """Mostly well-linked chains with random faults, so both outcomes are common."""
    originator = draw(person)
    out, current = [], originator
    for _ in range(draw(st.integers(0, MAX_CHAIN + 1))):
        spec = draw(specs)
        if draw(st.integers(0, 4)):  # usually a genuine link to a known entity
            delegator = draw(st.sampled_from([p for p in PEOPLE if p.cluster in KNOWN]))
            spec = Spec(current, delegator, int(NOW) + 9, delegator.cluster)
        out.append(spec)
        current = spec.delegator
    return originator, out


@settings(max_examples=150)
@given(chains())
def test_chain_grants_exactly_what_valid_certificates_grant(
        case: tuple[Principal, list[Spec]]) -> None:
    originator, specs_ = case
    certs = tuple(issue_certificate(s.delegate, fake_eid(s.delegator), s.expires,
                                    cluster_key(s.signer)) for s in specs_)
    verifier = CountingVerifier(clusters=set(KNOWN))
    expected = reference(originator, specs_)
    try:
        chain = verify_chain(originator, certs, verifier, NOW, MAX_CHAIN, cache=SHARED_CACHE)
    except DelegationError:
        assert expected is None
        return
    assert chain.acting_as == expected
    assert chain.originator == originator
    # Every step is a genuine, current grant from the next entity to the previous one.
    previous = originator
    for spec, who in zip(specs_, chain.principals, strict=True):
        assert spec.delegate == previous and spec.delegator == who
        assert spec.signer == who.cluster and spec.expires > NOW
        previous = who


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_escape_as_other_exceptions(raw: bytes) -> None:
    with contextlib.suppress(DelegationError):
        verify_chain(ALICE, (raw,), CountingVerifier(), NOW, 4)
