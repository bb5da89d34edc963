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
    TTL_TOO_LONG = 206
    REQUEST_FAILED = 207
    NO_ANSWER = 208

    # --- 300-399: identity (keys, cluster IDs, EIDs) ---
    IDENTITY_MALFORMED = 300
    UNKNOWN_HASH_ALGORITHM = 301
    BAD_FIELD_LENGTH = 302
    FIELD_TOO_LARGE = 303
    UNSUPPORTED_EID_VERSION = 304
    BAD_PUBLIC_KEY = 305
    BAD_EID_SIGNATURE = 306
    BAD_CLUSTER_KEY_CERT = 307
    BAD_CLUSTER_ID_SIGNATURE = 308
    MASTER_MISMATCH = 309
    CLUSTER_KEY_MISMATCH = 310
    VERSION_DOWNGRADE = 311
    ROTATED_OUT_KEY = 312
    KEYS_UNAVAILABLE = 313
    HINTS_WITHOUT_ALGORITHMS = 314
    BAD_SERVER_ADDRESS = 315
    STORAGE_MISMATCH = 316
    BAD_EID_TEXT_PREFIX = 317
    BAD_EID_TEXT_CHARACTER = 318
    BAD_EID_TEXT_CHECKSUM = 319
    BAD_SEED_PHRASE = 320
    KEY_FILE_PERMISSIONS = 321
    KEY_FILE_INVALID = 322
    KEY_FILE_MISSING = 323
    CLUSTER_ID_UNSIGNED = 324
    KEY_VERSION_CONFLICT = 325
    KEY_FILE_UNWRITABLE = 326
    KEY_FILE_PASSPHRASE = 327
    SRV_LOOKUP_FAILED = 328

    # --- 400-499: entity state, CARBON interfaces, LITHIUM dispatch ---
    # TUNGSTEN state store
    STATE_FAILURE = 400
    STATE_MAP_FULL = 401
    STATE_KEY_TOO_LARGE = 402
    STATE_CORRUPT = 403
    STATE_CONFLICT = 404
    STATE_CLOSED = 405
    STATE_READ_ONLY = 406
    STATE_TOO_LARGE_FOR_REMOTE = 407
    BAD_REMOTE_STATE = 408
    # CARBON declarations and names
    INVALID_TYPE_DECLARATION = 410
    PAYLOAD_TYPE_MISMATCH = 411
    INVALID_PROTOCOL_SPEC = 412
    INVALID_TUPLE = 413
    INVALID_NAME = 414
    NAME_NOT_FOUND = 415
    NAME_PIN_MISMATCH = 416
    ENDPOINT_IN_USE = 417
    UNKNOWN_INTERFACE = 418
    # LITHIUM dispatch and invocation
    ENTITY_NOT_ON_NODE = 420
    UNKNOWN_ENDPOINT = 421
    UNKNOWN_OPERATION = 422
    WRONG_OPERATION_KIND = 423
    UNKNOWN_PERSONA = 424
    NO_HANDLER_BOUND = 425
    HANDLER_NOT_REGISTERED = 426
    HANDLER_FAILED = 427
    HANDLER_TIMEOUT = 428
    REPLY_TYPE_MISMATCH = 429
    HANDLERS_BUSY = 430
    DEADLINE_EXPIRED = 431
    INVALID_HANDLER_ID = 432
    # Connections between entities (docs/protocol.md 5.9)
    CONNECTION_UNKNOWN = 440
    CONNECTION_NOT_PEER = 441
    CONNECTION_ID_IN_USE = 442
    CONNECTION_REFUSED = 443
    CONNECTION_CLOSED = 444
    CONNECTION_PEER_VANISHED = 445
    CONNECTION_IDLE = 446
    TOO_MANY_CONNECTIONS = 447
    TOO_MANY_ENTITY_CONNECTIONS = 448
    TOO_MANY_PEER_CONNECTIONS = 449
    RESERVATION_NOT_KEPT = 450

    # Replicated entity state on etcd (docs/operator-guide.md, "Mirrored state on etcd")
    REPLICATION_UNAVAILABLE = 460
    REPLICATION_CHANGE_TOO_LARGE = 461
    REPLICATION_SPACE_EXCEEDED = 462
    REPLICATION_REPLY_TOO_LARGE = 463
    WATCH_COMPACTED = 464
    LEASE_EXPIRED = 465
    CLUSTER_ID_PUBLISHED_MEANWHILE = 466

    # --- 500-599: nodes and routing ---
    # Client-side contact outcomes (mercury_rt.core.routing.contact).
    NO_NODE_ANSWERED = 500
    CONTACT_ATTEMPTS_EXHAUSTED = 501
    TOO_MANY_REDIRECTS = 502
    REDIRECT_LOOP = 503
    TOO_MANY_CLUSTER_ID_RESTARTS = 504
    CLUSTER_ID_NOT_NEWER = 505
    CLUSTER_ID_REJECTED = 506
    INVALID_CONTACT_TRANSITION = 507
    REDIRECT_NOT_LISTED = 508
    # Server-side routing replies (mercury_rt.core.routing.decide); 510-519 travel on the wire.
    NODE_LOCAL_ERROR = 510
    UNKNOWN_ENTITY = 511
    ENTITY_MOVED = 512
    NO_LIVE_MIRROR = 513
    FORWARD_HOPS_EXCEEDED = 514
    REDIRECT = 515
    NODE_DRAINING = 516
    # Forwarding records (mercury_rt.core.routing.forwarding).
    BAD_FORWARDING_RECORD = 520
    FORWARDING_SIGNATURE_INVALID = 521
    FORWARDING_RECORD_MISMATCH = 522
    # Intra-cluster membership (mercury_rt.core.membership).
    BAD_HEARTBEAT = 530
    HEARTBEAT_NOT_CERTIFIED = 531
    STALE_HEARTBEAT = 532
    TOO_MANY_NODES = 533
    # Held one-way messages (mercury_rt.core.node.held).
    HELD_QUEUE_FULL = 540
    HELD_MESSAGE_UNKNOWN = 541
    HELD_MESSAGE_CONFLICT = 542
    HELD_MESSAGE_TOO_LARGE = 543
    HELD_RECORD_CORRUPT = 544

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
    INTRA_SEAL_INVALID = 700
    TRANSIT_REQUIRED = 701
    UNKNOWN_TRANSIT_KEY = 702
    UNKNOWN_SESSION = 703
    TRANSIT_OPEN_FAILED = 704
    STALE_FIRST_DATAGRAM = 705
    REPLAYED = 706
    ALGORITHM_TOO_WEAK = 707
    UNKNOWN_ALGORITHM = 708
    NO_COMMON_ALGORITHM = 709
    CLASSIFIED_ABOVE_TARGET = 710
    TRANSIT_CERT_INVALID = 711
    SOURCE_NOT_PROVEN = 712
    RETRY_TOKEN_REQUIRED = 713
    SESSION_LIMIT = 714
    TRANSIT_MALFORMED = 715

    # --- 800-899: local configuration and policy files (never on the wire) ---
    # 800-849: YAML sources (generic) and the security policy file
    CONFIG_UNREADABLE = 800
    CONFIG_YAML_SYNTAX = 801
    CONFIG_DUPLICATE_KEY = 802
    CONFIG_INVALID = 803
    CONFIG_TOO_LARGE = 804
    CONFIG_TOO_DEEP = 805
    # 850-869: node configuration (mercury_rt.config)
    NODE_CONFIG_INVALID = 850
    NODE_CLUSTER_DIR_UNUSABLE = 851


def known_code(code: int) -> ErrorCode | None:
    """The ErrorCode for a number a peer sent, or None if this version does not know it
    (a newer peer's code: keep the number, do not guess a meaning)."""
    return _BY_VALUE.get(code)


_BY_VALUE: dict[int, ErrorCode] = {int(c): c for c in ErrorCode}


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
