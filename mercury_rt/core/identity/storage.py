"""Storage form: an EID with its cluster ID stripped, so the cluster ID is kept once.

TUNGSTEN stores each EID as (cluster ref, rest), where the ref is (master hash, version)
and `rest` records which parts of the cluster ID were embedded (the form bits) plus
everything else. A node keeps one record per (master hash, version) and one "latest"
pointer per master hash: a cluster-ID update (new version) writes those two records
only. Rebuilding with the referenced cluster ID gives back the original bytes exactly,
so the stored EID still verifies; routing uses the latest cluster ID's addresses.
"""

from __future__ import annotations

from dataclasses import dataclass

from carbon import cbor
from carbon.error_codes import ErrorCode
from mercury_rt.core.identity.cluster_id import FORM_FULL, IDENTITY_LIMITS, ClusterId
from mercury_rt.core.identity.eid import EID_FIELDS, Eid
from mercury_rt.core.identity.errors import IdentityError
from mercury_rt.core.identity.fields import expect_int, expect_list
from mercury_rt.core.identity.keys import show_hash


@dataclass(frozen=True, slots=True)
class ClusterRef:
    """Which cluster-ID version an EID was minted under."""

    master_hash: bytes
    version: int


@dataclass(frozen=True, slots=True)
class StoredEid:
    """An EID without its cluster ID: `rest` is CBOR [form, eid fields except cluster ID]."""

    cluster_ref: ClusterRef
    rest: bytes


def strip_cluster_id(eid: bytes | Eid) -> tuple[StoredEid, ClusterId]:
    """Split an EID into its storage form and the cluster ID to keep once per version."""
    decoded = eid if isinstance(eid, Eid) else Eid.decode(eid)
    cid = decoded.cluster_id
    fields = [*decoded.body_value(), decoded.signature]
    fields[1] = cid.form
    return StoredEid(ClusterRef(cid.master_hash, cid.version), cbor.dumps(fields)), cid


def rebuild_eid(stored: StoredEid, cluster_id: ClusterId) -> bytes:
    """The exact original EID bytes, given the cluster ID its ref names."""
    ref = stored.cluster_ref
    if (cluster_id.master_hash, cluster_id.version) != (ref.master_hash, ref.version):
        raise IdentityError(f"stored EID refers to cluster {show_hash(ref.master_hash)} "
                            f"version {ref.version}, not {show_hash(cluster_id.master_hash)} "
                            f"version {cluster_id.version}", ErrorCode.STORAGE_MISMATCH)
    fields = expect_list(cbor.loads(stored.rest, IDENTITY_LIMITS), "stored EID",
                         length=EID_FIELDS)
    form = expect_int(fields[1], "stored EID form", 0, FORM_FULL)
    try:
        fields[1] = cluster_id.project(form).to_value()
    except IdentityError as exc:
        raise IdentityError(f"cannot rebuild stored EID: {exc.message}",
                            ErrorCode.STORAGE_MISMATCH) from None
    return cbor.dumps(fields)
