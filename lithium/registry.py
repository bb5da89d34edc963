"""Handler registry: Python callables registered under stable handler IDs.

TUNGSTEN stores only handler IDs (text), never code, so an entity's bindings survive a
restart and the node maps them back to whatever code registered that ID. A handler is
`fn(ctx, payload) -> reply`, sync or async. Sync handlers run inline on the event loop
(fast, and they must not block); mark one `blocking=True` to run it in a worker thread.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from carbon.error_codes import ErrorCode, MercuryError

_HANDLER_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,127}\Z")
_F = TypeVar("_F", bound=Callable[..., Any])


class HandlerIdError(MercuryError):
    """A handler ID that is malformed or already taken."""

    code = ErrorCode.INVALID_HANDLER_ID


def check_handler_id(handler_id: object) -> str:
    """Validate a handler ID: 1-128 of a-z 0-9 . _ -, e.g. `counter.add`."""
    if not isinstance(handler_id, str) or not _HANDLER_ID.match(handler_id):
        raise HandlerIdError(f"handler ID {handler_id!r} must be 1-128 of a-z 0-9 . _ - "
                             "starting with a letter or digit, e.g. 'counter.add'")
    return handler_id


@dataclass(frozen=True, slots=True)
class RegisteredHandler:
    """A handler and how to run it."""

    handler_id: str
    fn: Callable[..., Any]
    is_async: bool
    blocking: bool


class HandlerRegistry:
    """Handler ID -> callable. Use `@registry.handler("id")` or `registry.register(...)`."""

    def __init__(self) -> None:
        self._handlers: dict[str, RegisteredHandler] = {}

    def register(self, handler_id: str, fn: Callable[..., Any], *,
                 blocking: bool = False) -> RegisteredHandler:
        """Register `fn`; an ID can be registered once (why: a silent swap hides bugs)."""
        check_handler_id(handler_id)
        if handler_id in self._handlers:
            raise HandlerIdError(f"handler ID {handler_id!r} is already registered")
        is_async = inspect.iscoroutinefunction(fn)
        if is_async and blocking:
            raise HandlerIdError(f"{handler_id!r}: async handlers cannot be blocking=True")
        entry = RegisteredHandler(handler_id, fn, is_async, blocking)
        self._handlers[handler_id] = entry
        return entry

    def handler(self, handler_id: str, *, blocking: bool = False) -> Callable[[_F], _F]:
        """Decorator form of `register`; returns the function unchanged."""
        def decorate(fn: _F) -> _F:
            self.register(handler_id, fn, blocking=blocking)
            return fn
        return decorate

    def unregister(self, handler_id: str) -> bool:
        """Remove a handler; bindings to it then fail with HANDLER_NOT_REGISTERED."""
        return self._handlers.pop(handler_id, None) is not None

    def get(self, handler_id: str) -> RegisteredHandler | None:
        """The handler registered under `handler_id`, or None."""
        return self._handlers.get(handler_id)

    def __contains__(self, handler_id: object) -> bool:
        return handler_id in self._handlers
