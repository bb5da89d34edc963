"""Anti-amplification: until an address has shown it receives what we send, we send it at
most `factor` times the bytes it sent us.

A UDP source address is only a claim. Without this rule, a small request with a forged
source address would make us send a large reply (or a long run of retransmissions) to a
victim that never asked. So every address starts unvalidated, with an account of the bytes
it sent us (every datagram that decoded as an envelope) and the bytes we sent it; a
datagram that would take `sent` past `factor * received` is withheld. An address becomes
validated when it proves receipt: it echoes the random nonce of one of our fragmented
transfers, it answers an exchange id we chose and sent only to it, or the layer above vouches
for it (`Transport.validate_address`). Both tables are bounded and least-recently-proved
first out; evicting an account forgets what the address sent, which only lowers its budget.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from mercury_rt.core.transport.exchanges import Record
from mercury_rt.core.transport.wire import Addr

MAX_BLOCKED = 64
"""Replies remembered per address as waiting for its budget; one pushed out of this list
still resumes on its own retransmission timer or the peer's retransmitted request."""


@dataclass(slots=True)
class Account:
    """What one unvalidated address sent us and what we sent it, and the replies of ours
    that wait for it to raise its budget (by record id, oldest first, at most MAX_BLOCKED)."""

    received: int = 0
    sent: int = 0
    blocked: dict[int, Record] = field(default_factory=dict)


class AmplificationGuard:
    """Which addresses are validated, and the byte accounts of the others."""

    __slots__ = ("_accounts", "_max_accounts", "_max_validated", "factor", "validated")

    def __init__(self, factor: int, max_validated: int, max_accounts: int) -> None:
        self.factor = factor
        self._max_validated = max_validated
        self._max_accounts = max_accounts
        self.validated: OrderedDict[Addr, None] = OrderedDict()
        self._accounts: OrderedDict[Addr, Account] = OrderedDict()

    def received(self, addr: Addr, size: int) -> Account:
        """Credit `size` bytes from an unvalidated `addr` (the caller checked `validated`)."""
        account = self._accounts.get(addr)
        if account is None:
            account = self._accounts[addr] = Account()
            if len(self._accounts) > self._max_accounts:
                self._accounts.popitem(last=False)
        else:
            self._accounts.move_to_end(addr)
        account.received += size
        return account

    def allowance(self, addr: Addr) -> int:
        """Bytes we may still send to an unvalidated `addr`."""
        account = self._accounts.get(addr)
        if account is None:
            return 0
        return account.received * self.factor - account.sent

    def spend(self, addr: Addr, size: int) -> bool:
        """Take `size` bytes from an unvalidated `addr`'s allowance, if it has them."""
        account = self._accounts.get(addr)  # one lookup: this runs for every answer
        if account is None:
            return size <= 0
        if account.received * self.factor - account.sent < size:
            return False
        account.sent += size
        return True

    def charge(self, addr: Addr, size: int) -> None:
        """Record `size` bytes sent to an unvalidated `addr` (within its allowance)."""
        account = self._accounts.get(addr)
        if account is not None:
            account.sent += size

    def block(self, record: Record) -> None:
        """Remember a reply that waits for its address's budget to grow."""
        account = self._accounts.get(record.peer)
        if account is None:
            return
        blocked = account.blocked
        blocked[record.id] = record
        if len(blocked) > MAX_BLOCKED:
            del blocked[next(iter(blocked))]

    def validate(self, addr: Addr) -> list[Record]:
        """Mark `addr` validated (or refresh it); returns the replies that were waiting."""
        validated = self.validated
        if addr in validated:
            validated.move_to_end(addr)
            return []
        validated[addr] = None
        if len(validated) > self._max_validated:
            validated.popitem(last=False)
        account = self._accounts.pop(addr, None)
        if account is None:
            return []
        waiting = list(account.blocked.values())
        account.blocked.clear()
        return waiting

    def account(self, addr: Addr) -> Account | None:
        """The account of an unvalidated address, if one is kept (for tests and metrics)."""
        return self._accounts.get(addr)

    def __len__(self) -> int:
        return len(self._accounts)
