"""Transit security: every node message between nodes encrypted and authenticated.

- algorithms.py: the registry of numeric algorithm ids (KEM, KDF, AEAD, cost).
- negotiate.py: the design's negotiation as pure decisions: which algorithms clear a
  level, which one a sender picks, whether a receiver accepts, intra-cluster limits.
"""

from mercury_rt.core.transit.algorithms import (
    ALL_ALGORITHMS,
    MAX_ALGORITHM_LIST,
    REGISTRY,
    AlgorithmId,
    TransitAlgorithm,
    TransitError,
    algorithm,
    by_cost,
    cheapest,
    decode_algorithm_list,
)
from mercury_rt.core.transit.negotiate import (
    Allowed,
    Chosen,
    ClassifiedAboveTarget,
    GiveUp,
    NoCommonAlgorithm,
    TooWeak,
    TransitAccepted,
    TransitTable,
    accepted_algorithms,
    adequate,
    after_rejection,
    choose,
    clearance_of,
    eid_acceptable,
    hint_acceptable,
    inter_cluster_table,
    intra_check,
    intra_cluster_table,
    intra_protection,
    receiver_check,
)
from policy.transit import (
    entity_clearance,
    sender_classification,
    transit_floor,
    transit_minimum,
)

__all__ = [
    "ALL_ALGORITHMS",
    "MAX_ALGORITHM_LIST",
    "REGISTRY",
    "AlgorithmId",
    "Allowed",
    "Chosen",
    "ClassifiedAboveTarget",
    "GiveUp",
    "NoCommonAlgorithm",
    "TooWeak",
    "TransitAccepted",
    "TransitAlgorithm",
    "TransitError",
    "TransitTable",
    "accepted_algorithms",
    "adequate",
    "after_rejection",
    "algorithm",
    "by_cost",
    "cheapest",
    "choose",
    "clearance_of",
    "decode_algorithm_list",
    "eid_acceptable",
    "entity_clearance",
    "hint_acceptable",
    "inter_cluster_table",
    "intra_check",
    "intra_cluster_table",
    "intra_protection",
    "receiver_check",
    "sender_classification",
    "transit_floor",
    "transit_minimum",
]
