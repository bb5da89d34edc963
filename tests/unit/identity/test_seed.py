"""Seed phrases: published BIP39 and SLIP-0010 vectors, clear errors, deterministic keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from carbon.error_codes import ErrorCode
from mercury_rt.core.identity import (
    SeedPhraseError,
    bip39_seed,
    master_from_phrase,
    new_phrase,
    normalize_phrase,
    private_key_from_bytes,
    public_bytes,
    slip10_ed25519,
)

VECTORS = Path(__file__).parents[2] / "vectors"
BIP39 = json.loads((VECTORS / "bip39_english.json").read_text())
SLIP10 = json.loads((VECTORS / "slip10_ed25519.json").read_text())
SLIP10_CASES = [(v["seed"], c) for v in SLIP10["vectors"] for c in v["chains"]]


@pytest.mark.parametrize("vector", BIP39["vectors"], ids=lambda v: v["entropy"][:8])
def test_bip39_vectors(vector: dict[str, str]) -> None:
    """Entropy gives the published words, and the words give the published seed."""
    assert new_phrase(bytes.fromhex(vector["entropy"])) == vector["mnemonic"]
    assert bip39_seed(vector["mnemonic"], BIP39["passphrase"]).hex() == vector["seed"]


@pytest.mark.parametrize(("seed", "chain"), SLIP10_CASES, ids=lambda x: str(x)[:20])
def test_slip10_ed25519_vectors(seed: str, chain: dict[str, str]) -> None:
    """Each published path gives the published chain code, private and public key."""
    chain_code, private = slip10_ed25519(bytes.fromhex(seed), chain["path"])
    assert chain_code.hex() == chain["chain_code"]
    assert private.hex() == chain["private"]
    assert "00" + public_bytes(private_key_from_bytes(private)).hex() == chain["public"]


def test_same_words_same_master_and_cluster_keys() -> None:
    """Restoring from the words (any spacing or case) gives back the same keys."""
    words = BIP39["vectors"][0]["mnemonic"]
    one, two = master_from_phrase(words), master_from_phrase("  " + words.upper() + "\n")
    assert public_bytes(one.signing_key()) == public_bytes(two.signing_key())
    assert public_bytes(one.cluster_key(5)) == public_bytes(two.cluster_key(5))
    assert public_bytes(one.cluster_key(1)) != public_bytes(one.cluster_key(2))
    assert "secret" in repr(one) and one.private.hex() not in repr(one)


def test_bad_checksum_word_is_its_own_error() -> None:
    """A valid word in the checksum position that does not match is reported as such."""
    words = BIP39["vectors"][0]["mnemonic"].split()
    words[-1] = "abandon"
    with pytest.raises(SeedPhraseError, match="checksum") as info:
        normalize_phrase(" ".join(words))
    assert info.value.code is ErrorCode.BAD_SEED_PHRASE


def test_unknown_word_is_named_with_its_position() -> None:
    """A typo names the word and where it is."""
    words = BIP39["vectors"][0]["mnemonic"].split()
    words[3] = "abandn"
    with pytest.raises(SeedPhraseError, match=r"word 4 \('abandn'\)"):
        normalize_phrase(" ".join(words))


def test_wrong_word_count() -> None:
    """Eleven words is not a phrase."""
    with pytest.raises(SeedPhraseError, match="got 11"):
        normalize_phrase(" ".join(["abandon"] * 11))


def test_entropy_size_checked() -> None:
    """Entropy that BIP39 cannot encode is refused."""
    with pytest.raises(SeedPhraseError):
        new_phrase(bytes(15))
