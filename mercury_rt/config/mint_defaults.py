"""The cluster's EID mint defaults: `mint-defaults.yaml` in the cluster directory.

What goes into an EID is a cluster-wide choice (full keys or only their hashes, whether the
master certificate rides along, the per-operation hints and the accepted algorithms that
tell callers how to classify and stamp their first request). Kept beside the keys, so that
`mercury-rt eid mint` and every node of the cluster (NodeRuntime.eid_for, the EIDs its
entities call with) mint the same form without each caller repeating flags. The file is
optional and public (no secrets); without it the built-in MintDefaults apply (full keys,
certificate, no hints). Loaded through policy.yaml_source, so mistakes are `file:line`.

    keys: hashes                  # full (default) | hashes: shorter EIDs, keys fetched
    include_cert: false           # default: true with full keys
    include_cluster_signature: false
    algorithms:                   # [id, clearance] pairs; required with hints
      - {id: 1, clearance: 1}
    hints:
      - {endpoint: 1, operation: 3, transit: 1, hashcash_bits: 10}
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mercury_rt.core.identity import (
    AcceptedAlgorithm,
    MintDefaults,
    OperationHint,
)
from mercury_rt.core.identity.eid import MAX_ALGORITHMS, MAX_HASHCASH_BITS, MAX_HINTS
from policy.yaml_source import load_model

MINT_DEFAULTS_FILE = "mint-defaults.yaml"
_U32 = 2**32 - 1
Number = Annotated[int, Field(ge=0, le=_U32, strict=True)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HintEntry(_Strict):
    """One operation's suggested transit classification and hashcash cost."""

    endpoint: Number
    operation: Number
    transit: Number
    hashcash_bits: Annotated[int, Field(ge=0, le=MAX_HASHCASH_BITS, strict=True)] = 0

    def to_hint(self) -> OperationHint:
        return OperationHint(self.endpoint, self.operation, self.transit, self.hashcash_bits)


class AlgorithmEntry(_Strict):
    """An encryption algorithm the cluster's entities accept, and the clearance it gives."""

    id: Number
    clearance: Number

    def to_algorithm(self) -> AcceptedAlgorithm:
        return AcceptedAlgorithm(self.id, self.clearance)


class MintDefaultsFile(_Strict):
    """The file's model; `to_defaults()` is what minting uses."""

    keys: Literal["full", "hashes"] = "full"
    include_cert: bool | None = None
    include_cluster_signature: bool = False
    algorithms: Annotated[list[AlgorithmEntry], Field(min_length=1,
                                                      max_length=MAX_ALGORITHMS)] | None = None
    hints: Annotated[list[HintEntry], Field(min_length=1, max_length=MAX_HINTS)] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> MintDefaultsFile:
        if self.hints is not None and self.algorithms is None:
            raise ValueError("hints need algorithms: the accepted-algorithm list maps their "
                             "classifications to algorithms")
        if self.include_cert and self.keys == "hashes":
            raise ValueError("include_cert needs keys: full (a certificate is checked "
                             "against the full keys)")
        return self

    def to_defaults(self) -> MintDefaults:
        full = self.keys == "full"
        return MintDefaults(
            full_keys=full,
            include_cert=self.include_cert is not False,
            include_cluster_signature=self.include_cluster_signature,
            hints=None if self.hints is None else tuple(h.to_hint() for h in self.hints),
            algorithms=None if self.algorithms is None
            else tuple(a.to_algorithm() for a in self.algorithms))


def load_mint_defaults(cluster_dir: Path) -> MintDefaults:
    """The cluster's defaults from `cluster_dir`/mint-defaults.yaml, or the built-in ones
    when there is no such file; ConfigFileError (file:line) when it is wrong."""
    path = cluster_dir / MINT_DEFAULTS_FILE
    if not path.exists():
        return MintDefaults()
    return load_model(path, MintDefaultsFile).to_defaults()

