"""A sliding replay window over a session's message numbers (RFC 6479, as WireGuard/DTLS).

Datagrams may arrive reordered, so a receiver accepts any number it has not seen that is
within WINDOW of the highest seen, and refuses everything else. The window is checked
only after the message authenticates (a forged number must not move it), then updated.
"""

from __future__ import annotations

WINDOW = 2048


class ReplayWindow:
    """Which message numbers of one session have been accepted."""

    __slots__ = ("_seen", "highest")

    def __init__(self) -> None:
        self.highest = -1
        self._seen = 0
        """Bit i set: number `highest - i` was accepted."""

    def fresh(self, number: int) -> bool:
        """Whether `number` may be accepted (not seen, not older than the window)."""
        if number > self.highest:
            return True
        offset = self.highest - number
        return offset < WINDOW and not (self._seen >> offset) & 1

    def accept(self, number: int) -> None:
        """Record `number` as accepted; call only after `fresh(number)` and authentication."""
        if number > self.highest:
            shift = number - self.highest
            # A jump past the window forgets it outright: shifting by an authenticated
            # peer's jump of up to 2**62 would allocate that many bits.
            self._seen = 1 if shift >= WINDOW else \
                ((self._seen << shift) | 1) & ((1 << WINDOW) - 1)
            self.highest = number
        else:
            self._seen |= 1 << (self.highest - number)
