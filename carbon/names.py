"""Readable entity names such as `alice@example-cluster`, and client-side pinning.

People should not paste raw EIDs. A name is `local@cluster`; the cluster's naming
interface resolves it to EID bytes. A client may pin what it resolved: a later, different
answer for the same name is reported as NamePinMismatchError (it could be a re-keying or an
attack; a human decides), never silently accepted. EIDs are opaque bytes here.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass

from carbon.error_codes import ErrorCode, MercuryError
from carbon.protocol_spec import Interface, request
from carbon.types import BYTES, STR

MAX_NAME_LENGTH = 255
MAX_EID_BYTES = 4096
_LOCAL = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}\Z")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")

NAMING_SPEC = Interface("/argon/carbon/naming/v1", ops=[request(1, "resolve", STR, BYTES)])
RESOLVE = 1


class InvalidNameError(MercuryError):
    """Text that is not a valid entity name."""

    code = ErrorCode.INVALID_NAME


class NameNotFoundError(MercuryError):
    """The naming interface knows no entity by this name."""

    code = ErrorCode.NAME_NOT_FOUND


class NamePinMismatchError(MercuryError):
    """A name resolved to different EID bytes than the ones pinned earlier."""

    code = ErrorCode.NAME_PIN_MISMATCH


@dataclass(frozen=True, slots=True)
class EntityName:
    """A validated `local@cluster` name; compare and store its `text`."""

    local: str
    cluster: str

    @property
    def text(self) -> str:
        """The canonical written form."""
        return f"{self.local}@{self.cluster}"

    def __str__(self) -> str:
        return self.text


def parse_name(text: object) -> EntityName:
    """Validate `local@cluster` (lower-case; cluster is dot-separated DNS-style labels)."""
    if not isinstance(text, str) or len(text) > MAX_NAME_LENGTH:
        raise InvalidNameError(f"a name must be text of at most {MAX_NAME_LENGTH} characters")
    local, at, cluster = text.partition("@")
    if not at or "@" in cluster:
        raise InvalidNameError(f"name {text!r} must have exactly one '@', "
                               "as in alice@example-cluster")
    if not _LOCAL.match(local):
        raise InvalidNameError(f"name {text!r}: local part must be 1-64 of a-z 0-9 . _ - starting "
                         "with a letter or digit")
    if not cluster or not all(_LABEL.match(label) for label in cluster.split(".")):
        raise InvalidNameError(f"name {text!r}: cluster must be dot-separated labels of a-z 0-9 -")
    return EntityName(local, cluster)


def check_resolved_eid(name: EntityName, eid: object) -> bytes:
    """Validate a naming reply before pinning or using it."""
    if not isinstance(eid, bytes) or not 0 < len(eid) <= MAX_EID_BYTES:
        raise NameNotFoundError(f"{name}: the naming interface returned no usable EID")
    return eid


class NamePins:
    """Names this client has resolved, with the EID bytes it pinned (bounded, LRU)."""

    def __init__(self, max_names: int = 10_000) -> None:
        self._max = max_names
        self._pins: OrderedDict[str, bytes] = OrderedDict()

    def pinned(self, name: EntityName) -> bytes | None:
        """The EID pinned for `name`, or None."""
        return self._pins.get(name.text)

    def pin(self, name: EntityName, eid: bytes) -> bytes:
        """Pin a resolution; raises NamePinMismatchError if it differs from an existing pin."""
        known = self._pins.get(name.text)
        if known is not None and known != eid:
            raise NamePinMismatchError(
                f"{name} now resolves to a different EID than the one pinned; if the entity "
                "was re-created on purpose, unpin the name and resolve it again")
        self._pins[name.text] = eid
        self._pins.move_to_end(name.text)
        while len(self._pins) > self._max:
            self._pins.popitem(last=False)
        return eid

    def unpin(self, name: EntityName) -> None:
        """Forget a pin, accepting whatever the name resolves to next."""
        self._pins.pop(name.text, None)

    def __len__(self) -> int:
        return len(self._pins)
