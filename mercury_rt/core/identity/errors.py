"""The identity layer's exception family (codes 300-399 in carbon.error_codes).

Each failure mode of an EID, cluster ID, key file or seed phrase carries its own stable
code, so a peer (or an operator reading CLI output) can tell *which* check failed: an
altered byte, a wrong master, a downgrade and a rotated-out key are different problems
with different remedies.
"""

from __future__ import annotations

from carbon.error_codes import ErrorCode, MercuryError


class IdentityError(MercuryError):
    """An EID, cluster ID or key that is malformed or fails a check."""

    code = ErrorCode.IDENTITY_MALFORMED


class SignatureError(IdentityError):
    """A signature (EID, cluster-ID or master certificate) does not verify."""

    code = ErrorCode.BAD_EID_SIGNATURE


class KeysUnavailableError(IdentityError):
    """The keys needed for a check are neither inline nor supplied; fetch them first."""

    code = ErrorCode.KEYS_UNAVAILABLE


class EidTextError(IdentityError):
    """A pasted EID or cluster-ID text that is not a valid text form."""

    code = ErrorCode.BAD_EID_TEXT_CHECKSUM


class SeedPhraseError(IdentityError):
    """Seed-phrase words that are not a valid BIP39 English mnemonic."""

    code = ErrorCode.BAD_SEED_PHRASE


class KeyFileError(IdentityError):
    """A key file that is missing, unreadable, malformed or too widely readable."""

    code = ErrorCode.KEY_FILE_INVALID
