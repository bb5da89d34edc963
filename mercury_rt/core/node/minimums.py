"""The transit minimum of each served operation, remembered per policy (issue 13).

`transit_minimum` (policy/transit.py) walks the policy's rules for the entity, endpoint
and operation and names the rule that set each value, on every request, though the node
uses only the level, a function of the policy and the target alone. `TransitMinimums`
keeps that level: bound to the policy object (another one, after a reload, clears it),
and filled only through `keep` with targets of requests the gate admitted, so a peer
sending forged target EIDs or operations it may not call adds nothing. At `limit` entries
nothing more is kept and nothing is evicted (no peer can push out what others use); the
rest are computed each time, as before.
"""

from __future__ import annotations

from policy.access import Target
from policy.model import Policy
from policy.transit import transit_minimum

DEFAULT_LIMIT = 4096


class TransitMinimums:
    """Transit minimum levels of admitted targets under one policy."""

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        self._policy: Policy | None = None
        self._levels: dict[Target, int] = {}

    def __len__(self) -> int:
        return len(self._levels)

    def level(self, policy: Policy, target: Target) -> int:
        """`transit_minimum(policy, target).value`, remembered or computed."""
        if policy is not self._policy:
            self._policy = policy
            self._levels.clear()
        level = self._levels.get(target)
        return transit_minimum(policy, target).value if level is None else level

    def keep(self, policy: Policy, target: Target, level: int) -> None:
        """Remember `level` (from `level()` under `policy`) for a target the gate admitted."""
        if policy is self._policy and len(self._levels) < self.limit:
            self._levels[target] = level
