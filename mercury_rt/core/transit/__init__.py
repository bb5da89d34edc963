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

__all__ = [
    "ALL_ALGORITHMS",
    "MAX_ALGORITHM_LIST",
    "REGISTRY",
    "AlgorithmId",
    "TransitAlgorithm",
    "TransitError",
    "algorithm",
    "by_cost",
    "cheapest",
    "decode_algorithm_list",
]
