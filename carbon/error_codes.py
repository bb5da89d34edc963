"""Stable wire error codes for every layer, and the exception family that carries them.

The codes live in the lowest package so that every layer (carbon, tungsten, policy,
lithium, mercury_rt) can raise a coded error without import cycles. A code, once
published in docs/protocol.md, never changes meaning. Each layer owns one range;
add members only inside your range's block.
"""

from __future__ import annotations

from enum import IntEnum


class ErrorCode(IntEnum):
    """Every error a peer or a caller can see, by number. Ranges: see docs/protocol.md."""

    # --- 100-199: codec (malformed datagrams and payloads) ---
    MALFORMED = 100
    TRAILING_BYTES = 101
    DUPLICATE_KEY = 102
    INDEFINITE_LENGTH = 103
    NON_CANONICAL = 104
    WRONG_TYPE = 105
    UNKNOWN_MESSAGE_TYPE = 106
    UNSUPPORTED_VERSION = 107
    TOO_LARGE = 108
    TOO_DEEP = 109
    TOO_MANY_ITEMS = 110
    FORBIDDEN_VALUE = 111

    # --- 200-299: transport (exchanges, fragments, bounds) ---
    TIMEOUT = 200
    CANCELLED = 201
    MESSAGE_TOO_LARGE = 202
    OVERLOADED = 203
    REQUEST_LOST = 204
    TOO_MANY_CALLS = 205

    # --- 300-399: identity (keys, cluster IDs, EIDs) ---

    # --- 400-499: entity state, CARBON interfaces, LITHIUM dispatch ---

    # --- 500-599: nodes and routing ---

    # --- 600-699: security gate (hashcash, source auth, delegation, MAC, DAC) ---
    HASHCASH_REQUIRED = 600
    HASHCASH_INSUFFICIENT = 601
    HASHCASH_MALFORMED = 602
    HASHCASH_WRONG_RESOURCE = 603
    HASHCASH_EXPIRED = 604
    HASHCASH_FUTURE = 605
    HASHCASH_DOUBLE_SPENT = 606
    HASHCASH_SPENT_STORE_FULL = 607
    PAYMENT_MALFORMED = 608
    SOURCE_UNVERIFIED = 620
    DELEGATION_MALFORMED = 630
    DELEGATION_EXPIRED = 631
    DELEGATION_BROKEN = 632
    DELEGATION_LOOP = 633
    DELEGATION_TOO_LONG = 634
    DELEGATION_BAD_SIGNATURE = 635
    DELEGATION_UNVERIFIED_DELEGATOR = 636
    MAC_INSUFFICIENT_CLEARANCE = 650
    MAC_UNKNOWN_CLUSTER = 651
    DAC_NOT_ON_ALLOW_LIST = 670
    DAC_ON_DENY_LIST = 671

    # --- 700-799: transit encryption ---

    # --- 800-899: local configuration and policy files (never on the wire) ---
    # 800-849: YAML sources (generic) and the security policy file
    CONFIG_UNREADABLE = 800
    CONFIG_YAML_SYNTAX = 801
    CONFIG_DUPLICATE_KEY = 802
    CONFIG_INVALID = 803
    CONFIG_TOO_LARGE = 804


class MercuryError(Exception):
    """Base of every error this runtime raises on purpose; carries a stable code."""

    code: ErrorCode = ErrorCode.MALFORMED

    def __init__(self, message: str, code: ErrorCode | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        """The human-readable explanation: what was wrong and, where possible, what to do."""
        return str(self.args[0]) if self.args else ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code.name}: {self.message})"
