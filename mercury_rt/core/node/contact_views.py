"""The caller's contact view of each cluster it calls: what a call works out once per
cluster ID instead of on every call (issue 13).

A call to another cluster orders that cluster ID's addresses (SRV levels, weights, the
proximity rule) and asks which of them fell silent lately (each address in socket form,
`str(IPv4Address)`). Neither depends on the call: only on the cluster ID, the proximity
rule and the suspects. The view keeps the first two per cluster; the suspects are read
on every call, and while no listed node is suspect the order is drawn from the view's
`SrvTable` (exactly the draws a fresh table makes). Invalidation is explicit: a view is
used only for the very cluster ID object and proximity rule it was built from (a newer
version is another object, so it is rebuilt), `forget` drops a cluster's view when the
planner learns a newer cluster ID, and a suspect listed address makes the contact take
the general split order. The views are bounded (the oldest goes when full) and only
clusters whose cluster ID the planner proved get one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from carbon.bounded import keep_newest
from mercury_rt.core.identity import ClusterId, EndpointKey, endpoint_key
from mercury_rt.core.routing import ProximityRule, SrvTable
from mercury_rt.core.transport import Addr

MAX_VIEWS = 4096


@dataclass(frozen=True, slots=True)
class ContactView:
    """One cluster ID's SRV table and its listed addresses (socket form, endpoint key)."""

    cluster_id: ClusterId
    proximity: ProximityRule | None
    table: SrvTable
    listed: tuple[tuple[Addr, EndpointKey], ...]

    @staticmethod
    def of(cluster_id: ClusterId, proximity: ProximityRule | None) -> ContactView:
        """The view worked out afresh (the general path)."""
        listed = tuple(((str(a.host), a.port), endpoint_key(a)) for a in cluster_id.addresses)
        return ContactView(cluster_id, proximity, SrvTable.of(cluster_id.addresses, proximity),
                           listed)

    def silent(self, suspects: Mapping[Addr, float], now: float) -> frozenset[EndpointKey]:
        """The listed addresses suspect until after `now`: a contact tries them last."""
        if not suspects:
            return frozenset()
        return frozenset(key for address, key in self.listed
                         if suspects.get(address, now) > now)


class ContactViews:
    """Contact views by master hash, bounded; see the module docstring for invalidation."""

    def __init__(self, limit: int = MAX_VIEWS) -> None:
        self.limit = limit
        self._views: dict[bytes, ContactView] = {}

    def __len__(self) -> int:
        return len(self._views)

    def of(self, cluster_id: ClusterId, proximity: ProximityRule | None) -> ContactView:
        """The view of exactly `cluster_id` under `proximity`, kept or built."""
        master = cluster_id.master_hash
        view = self._views.get(master)
        if view is not None and view.cluster_id is cluster_id and view.proximity is proximity:
            return view
        view = ContactView.of(cluster_id, proximity)
        keep_newest(self._views, master, view, self.limit)
        return view

    def forget(self, master_hash: bytes) -> None:
        """Drop the cluster's view (its cluster ID was replaced)."""
        self._views.pop(master_hash, None)
