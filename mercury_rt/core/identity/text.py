"""Copy-pasteable text forms of EIDs and cluster IDs, and a readable dump.

Text form: a prefix (`meid1` for EIDs, `mcid1` for cluster IDs), then lowercase RFC 4648
base32 without padding of (binary form + 4-byte checksum), the checksum being the first
4 bytes of SHA-256(prefix + binary). Humans paste these into configs and CLIs, so a typo
is caught by the checksum before any decoding, and each error says what was wrong: a
wrong prefix, a character outside a-z2-7 (with its position), or a checksum mismatch.
Whitespace anywhere (line wraps) and upper case are tolerated on input.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from carbon.error_codes import ErrorCode
from mercury_rt.core.identity.cluster_id import ClusterId
from mercury_rt.core.identity.eid import Eid
from mercury_rt.core.identity.errors import EidTextError

EID_PREFIX = "meid1"
CLUSTER_ID_PREFIX = "mcid1"
CHECKSUM_SIZE = 4
MAX_TEXT_LENGTH = 32 * 1024
_ALPHABET = frozenset("abcdefghijklmnopqrstuvwxyz234567")


def _checksum(prefix: str, data: bytes) -> bytes:
    return hashlib.sha256(prefix.encode("ascii") + data).digest()[:CHECKSUM_SIZE]


def to_text(prefix: str, data: bytes) -> str:
    """Prefix + lowercase unpadded base32 of data and its checksum."""
    body = base64.b32encode(data + _checksum(prefix, data)).decode("ascii")
    return prefix + body.rstrip("=").lower()


def from_text(prefix: str, text: str) -> bytes:
    """The binary form inside a text form, after checking prefix, alphabet and checksum."""
    if len(text) > MAX_TEXT_LENGTH:
        raise EidTextError(f"text is {len(text)} characters; at most {MAX_TEXT_LENGTH}",
                           ErrorCode.FIELD_TOO_LARGE)
    compact = "".join(text.split()).lower()
    if not compact.startswith(prefix):
        raise EidTextError(f"text must start with {prefix!r}; it starts with "
                           f"{compact[:len(prefix)]!r}", ErrorCode.BAD_EID_TEXT_PREFIX)
    body = compact[len(prefix):]
    for position, char in enumerate(body, start=len(prefix) + 1):
        if char not in _ALPHABET:
            raise EidTextError(f"character {char!r} at position {position} is not base32 "
                               "(allowed: a-z and 2-7)", ErrorCode.BAD_EID_TEXT_CHARACTER)
    try:
        raw = base64.b32decode(body.upper() + "=" * (-len(body) % 8))
    except (binascii.Error, ValueError):
        raise EidTextError("text has an impossible base32 length: truncated or extra "
                           "characters", ErrorCode.BAD_EID_TEXT_CHECKSUM) from None
    data, checksum = raw[:-CHECKSUM_SIZE], raw[-CHECKSUM_SIZE:]
    if len(raw) <= CHECKSUM_SIZE or not hmac.compare_digest(checksum, _checksum(prefix, data)):
        raise EidTextError("checksum mismatch: the text was mistyped or truncated; copy it "
                           "again", ErrorCode.BAD_EID_TEXT_CHECKSUM)
    if to_text(prefix, data) != compact:  # stray bits in the last character
        raise EidTextError("the last character was altered (it carries unused bits that must "
                           "be zero); copy the text again", ErrorCode.BAD_EID_TEXT_CHECKSUM)
    return data


def eid_to_text(eid: Eid | bytes) -> str:
    """`meid1...` text of an EID."""
    return to_text(EID_PREFIX, eid.encode() if isinstance(eid, Eid) else eid)


def eid_from_text(text: str) -> bytes:
    """EID bytes from `meid1...` text (decode with Eid.decode or verify directly)."""
    return from_text(EID_PREFIX, text)


def cluster_id_to_text(cluster_id: ClusterId) -> str:
    """`mcid1...` text of a cluster ID."""
    return to_text(CLUSTER_ID_PREFIX, cluster_id.encode())


def cluster_id_from_text(text: str) -> ClusterId:
    """A decoded cluster ID from `mcid1...` text."""
    return ClusterId.decode(from_text(CLUSTER_ID_PREFIX, text))


def dump_cluster_id(cid: ClusterId, indent: str = "") -> list[str]:
    """Readable lines describing a cluster ID."""
    def key_line(name: str, key: bytes | None, key_hash: bytes) -> str:
        form = f"key {key.hex()}" if key is not None else "hash only"
        return f"{indent}{name}: {form}\n{indent}  hash {key_hash.hex()}"

    lines = [key_line("master", cid.master.key, cid.master_hash),
             f"{indent}version: {cid.version}",
             key_line("cluster key", cid.cluster_key.key, cid.cluster_key_hash),
             f"{indent}cluster key introduced at version: {cid.key_version}",
             f"{indent}master certificate: {cid.cert.hex() if cid.cert else '(absent)'}",
             f"{indent}cluster-ID signature: "
             f"{cid.signature.hex() if cid.signature else '(absent)'}",
             f"{indent}server addresses: {len(cid.addresses)}"]
    lines += [f"{indent}  {address}" for address in cid.addresses]
    return lines


def dump_eid(eid: Eid) -> str:
    """A readable multi-line description of every field of an EID."""
    local = eid.local.decode("utf-8", "backslashreplace")
    lines = [f"EID format version {eid.format_version}", "cluster ID:",
             *dump_cluster_id(eid.cluster_id, "  "),
             f"local part: {local!r} ({eid.local.hex()})"]
    if eid.persona is None:
        lines.append("persona: (none)")
    else:
        lines.append(f"persona: {eid.persona.cls} params={eid.persona.params!r}")
    lines.append(f"operation hints: {'(none)' if eid.hints is None else len(eid.hints)}")
    for hint in eid.hints or ():
        lines.append(f"  endpoint {hint.endpoint} op {hint.operation}: transit class "
                     f"{hint.transit_classification}, hashcash {hint.hashcash_bits} bits, "
                     f"other {hint.requirements!r}")
    lines.append("accepted algorithms: "
                 + ("(none)" if eid.algorithms is None else
                    ", ".join(f"{a.algorithm}@{a.clearance}" for a in eid.algorithms)))
    lines.append(f"signature: {eid.signature.hex()}")
    lines.append(f"principal: {eid.principal().short()}")
    return "\n".join(lines)
