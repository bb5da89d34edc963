"""Hashcash v1 stamps bound to one request, checked exactly, and the payments header slot.

Format (hashcash.org v1): `1:bits:date:resource:ext:rand:counter`, date YYMMDD[hhmm[ss]]
in UTC. Our resource binds the stamp to one request (docs/protocol.md section 7):
`mrt1.<target tag>.<endpoint>.<operation>.<request digest>`, lowercase hex, digits and dots
only, which both the PyPI `hashcash` package and the Debian `hashcash` tool accept. We count
leading zero bits of SHA-1 exactly (hashcash 0.1.2's check() rounds down to 4-bit steps and
skips the hash when asked to check expiry, so it is never used for decisions). Expiry and
double-spend are ours. Everything here is pure: `now` and randomness are passed in, and
stamp dates are converted with integer calendar arithmetic, not datetime (whose C module
loads time).
"""

from __future__ import annotations

import base64
import hashlib
from collections import OrderedDict
from dataclasses import dataclass

from carbon import cbor
from carbon.error_codes import ErrorCode, MercuryError
from carbon.principal import Principal

PAYMENT_HASHCASH = 1
MAX_PAYMENTS = 8
MAX_PAYMENT_BYTES = 512
MAX_STAMP_LENGTH = 256
MAX_MINT_BITS = 32
RESOURCE_PREFIX = "mrt1"
_PERIODS = {6: 86400, 10: 60, 12: 1}


class StampError(MercuryError):
    """A stamp or payments slot that cannot be accepted; the code says which check failed."""

    code = ErrorCode.HASHCASH_MALFORMED


@dataclass(frozen=True, slots=True)
class PaymentStamp:
    """One entry of the payments slot: a kind number and its opaque data."""

    kind: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Stamp:
    """A parsed v1 stamp; `text` is exactly what was hashed."""

    text: str
    claimed_bits: int
    date: str
    resource: str


@dataclass(frozen=True, slots=True)
class StampOk:
    """A stamp that meets the cost: its SHA-1 (the double-spend key) and when it expires."""

    digest: bytes
    bits: int
    expires_at: int


def decode_payments(value: cbor.Value) -> tuple[PaymentStamp, ...]:
    """The payments slot: a list (at most 8) of [kind, data] pairs; anything else, null
    included (no payments is the empty list), raises StampError (608)."""
    if not isinstance(value, list) or len(value) > MAX_PAYMENTS:
        raise StampError(f"payments must be a list of at most {MAX_PAYMENTS} [kind, data] "
                         "pairs", ErrorCode.PAYMENT_MALFORMED)
    out = []
    for item in value:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], int)
                and not isinstance(item[0], bool) and 0 <= item[0] <= 0xFFFF
                and isinstance(item[1], bytes) and len(item[1]) <= MAX_PAYMENT_BYTES):
            raise StampError(f"each payment is [kind 0-65535, data of at most "
                             f"{MAX_PAYMENT_BYTES} bytes]", ErrorCode.PAYMENT_MALFORMED)
        out.append(PaymentStamp(item[0], item[1]))
    return tuple(out)


def encode_payments(stamps: tuple[PaymentStamp, ...]) -> cbor.Value:
    """The wire form of the payments slot."""
    return [[s.kind, s.data] for s in stamps]


def hashcash_payment(stamp: str) -> PaymentStamp:
    """Wrap a stamp string for the payments slot."""
    return PaymentStamp(PAYMENT_HASHCASH, stamp.encode("ascii"))


def target_tag(target: Principal) -> str:
    """32 hex digits naming the target entity (cluster, local part, persona class)."""
    return target_tag_of(target.cluster, target.local,
                         target.persona.cls.text if target.persona else None)


def target_tag_of(cluster: bytes, local: bytes, persona: str | None) -> str:
    """target_tag from its parts."""
    encoded = cbor.dumps(["mrt1-target", cluster, local, persona])
    return hashlib.sha256(encoded).hexdigest()[:32]


class TargetTags:
    """target_tag_of, remembered for the most recently used targets (bounded).

    The gate computes a tag for every costed request, and a node's costed targets are few;
    the node owns one of these and hands it to the gate in its GateState.
    """

    def __init__(self, limit: int = 4096) -> None:
        self.limit = limit
        self._tags: OrderedDict[tuple[bytes, bytes, str | None], str] = OrderedDict()

    def of(self, cluster: bytes, local: bytes, persona: str | None) -> str:
        """target_tag_of(cluster, local, persona)."""
        key = (cluster, local, persona)
        tag = self._tags.get(key)
        if tag is not None:
            self._tags.move_to_end(key)
            return tag
        tag = self._tags[key] = target_tag_of(cluster, local, persona)
        if len(self._tags) > self.limit:
            self._tags.popitem(last=False)
        return tag


def request_digest(body: bytes) -> bytes:
    """16 bytes binding a stamp to one request body (everything but the payments slot)."""
    return hashlib.sha256(b"mercury-rt/request/v1\x00" + body).digest()[:16]


def stamp_resource(tag: str, endpoint: int, operation: int, digest: bytes) -> str:
    """The resource string a stamp for this request must carry."""
    return f"{RESOURCE_PREFIX}.{tag}.{endpoint}.{operation}.{digest.hex()}"


def leading_zero_bits(digest: bytes) -> int:
    """Exact count of leading zero bits."""
    return len(digest) * 8 - int.from_bytes(digest, "big").bit_length()


def parse_stamp(text: str) -> Stamp:
    """Split and sanity-check a v1 stamp (no hashing). Raises StampError."""
    if len(text) > MAX_STAMP_LENGTH or not text.isascii():
        raise StampError(f"a stamp is ASCII of at most {MAX_STAMP_LENGTH} characters")
    parts = text.split(":")
    if len(parts) != 7 or parts[0] != "1":
        raise StampError("a stamp is '1:bits:date:resource:ext:rand:counter' (version 1)")
    bits = parts[1]
    if not bits.isdigit() or len(bits) > 3:
        raise StampError(f"stamp bits field {bits!r} is not a small number")
    if not (parts[2].isdigit() and len(parts[2]) in _PERIODS):
        raise StampError("stamp date must be YYMMDD, YYMMDDhhmm or YYMMDDhhmmss (UTC)")
    return Stamp(text, int(bits), parts[2], parts[3])


def stamp_time(date: str) -> tuple[int, int]:
    """(UTC start of the stated period in Unix seconds, period length). Raises StampError."""
    padded = date.ljust(12, "0")
    year, month, day = 2000 + int(padded[0:2]), int(padded[2:4]), int(padded[4:6])
    hour, minute, second = int(padded[6:8]), int(padded[8:10]), int(padded[10:12])
    if not (1 <= month <= 12 and 1 <= day <= _days_in_month(year, month)
            and hour < 24 and minute < 60 and second < 60):
        raise StampError(f"stamp date {date!r} is not a real date")
    start = _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
    return start, _PERIODS[len(date)]


def utc_stamp_date(now: float) -> str:
    """Unix seconds as the stamp's YYMMDDhhmmss (UTC), for years 2000-2099."""
    days, seconds = divmod(int(now), 86400)
    year, month, day = _civil_from_days(days)
    hour, rest = divmod(seconds, 3600)
    return f"{year % 100:02d}{month:02d}{day:02d}{hour:02d}{rest // 60:02d}{rest % 60:02d}"


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    year -= month <= 2
    era, year_of_era = divmod(year, 400)
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


def _civil_from_days(days: int) -> tuple[int, int, int]:
    """The inverse of _days_from_civil: (year, month, day)."""
    era, day_of_era = divmod(days + 719468, 146097)
    year_of_era = (day_of_era - day_of_era // 1460 + day_of_era // 36524
                   - day_of_era // 146096) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    shifted_month = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * shifted_month + 2) // 5 + 1
    month = shifted_month + (3 if shifted_month < 10 else -9)
    return era * 400 + year_of_era + (month <= 2), month, day


def check_stamp(text: str, resource: str, required: int, now: float, *, max_age: int,
                max_future: int) -> StampOk:
    """Everything but double-spend: shape, resource, bits (exact), date window."""
    stamp = parse_stamp(text)
    if stamp.resource != resource:
        raise StampError(f"stamp is for another request; mint one for resource {resource}",
                         ErrorCode.HASHCASH_WRONG_RESOURCE)
    if stamp.claimed_bits < required:
        raise StampError(f"stamp claims {stamp.claimed_bits} bits; {required} bits are required",
                         ErrorCode.HASHCASH_INSUFFICIENT)
    digest = hashlib.sha1(text.encode("ascii")).digest()
    actual = leading_zero_bits(digest)
    if actual < stamp.claimed_bits:
        raise StampError(f"stamp has {actual} leading zero bits, fewer than it claims; "
                         f"{required} bits are required", ErrorCode.HASHCASH_INSUFFICIENT)
    start, period = stamp_time(stamp.date)
    expires_at = start + period + max_age
    if expires_at <= now:
        raise StampError(f"stamp dated {stamp.date} (UTC) is older than {max_age} s; mint a "
                         "fresh one", ErrorCode.HASHCASH_EXPIRED)
    if start > now + max_future:
        raise StampError(f"stamp dated {stamp.date} (UTC) is in the future; check the clock",
                         ErrorCode.HASHCASH_FUTURE)
    return StampOk(digest, actual, expires_at)


def mint_stamp(resource: str, bits: int, now: float, rand: bytes) -> str:
    """Find a stamp with `bits` leading zero bits. CPU-bound: run it off the event loop.

    ~1 M hashes/s in Python: 20 bits take about a second on average. `rand` (>= 9 bytes
    from the caller's CSPRNG) makes the stamp unique.
    """
    if not 0 <= bits <= MAX_MINT_BITS:
        raise StampError(f"will not mint more than {MAX_MINT_BITS} bits",
                         ErrorCode.HASHCASH_INSUFFICIENT)
    date = utc_stamp_date(now)
    salt = base64.b64encode(rand[:12]).decode("ascii")
    prefix = f"1:{bits}:{date}:{resource}::{salt}:".encode("ascii")
    base = hashlib.sha1(prefix)
    target = 1 << (160 - bits)
    counter = 0
    while True:
        suffix = format(counter, "x").encode("ascii")
        h = base.copy()
        h.update(suffix)
        if int.from_bytes(h.digest(), "big") < target:
            return (prefix + suffix).decode("ascii")
        counter += 1
