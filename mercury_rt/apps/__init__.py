"""Applications a node loads from its config (`apps:`): handler code for its entities.

An app is a Python module with `setup(app: NodeApp) -> None`. It registers handlers and
attaches interfaces to the entities this node mirrors. `mercury_rt.apps.echo` is the
built-in demo app.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from carbon.error_codes import ErrorCode, MercuryError
from carbon.protocol_spec import ProtocolSpec, SpecRegistry
from lithium import HandlerRegistry, attach
from tungsten.api import StateStore


class AppError(MercuryError):
    """An app that cannot be loaded or set up."""

    code = ErrorCode.NODE_CONFIG_INVALID


@dataclass
class NodeApp:
    """What an app's setup() gets: where to register handlers and attach interfaces."""

    node_id: str
    mirrors: tuple[str, ...]
    registry: HandlerRegistry
    specs: SpecRegistry
    store: StateStore

    def attach_to_mirrors(self, interface: ProtocolSpec, *, endpoint: int,
                          handlers: dict[str, str]) -> None:
        """Offer `interface` on `endpoint` of every entity this node mirrors.

        The interface is registered on every node, mirror or not: with remote-state
        routing a node runs calls for entities whose state is elsewhere.
        """
        self.specs.add(interface)
        with self.store.writing() as txn:
            for entity in self.mirrors:
                attach(txn, entity.encode(), interface, endpoint=endpoint, specs=self.specs,
                       handlers=handlers)


def load_apps(names: list[str], app: NodeApp) -> None:
    """Import each app module and run its setup(); AppError says which one failed.

    An app is operator-chosen code: whatever it raises (a missing module, a syntax error,
    a bad interface in setup) becomes an AppError naming the app, so `node run` reports
    it as a config problem instead of a traceback.
    """
    for name in names:
        setup = import_app(name)
        try:
            setup(app)
        except Exception as exc:
            raise AppError(f"app {name!r} failed in setup(app): {_reason(exc)}") from exc


def import_app(name: str) -> Callable[[NodeApp], object]:
    """The app's setup function; AppError if the module cannot be imported or has none.
    `node check` calls this too, so a missing app fails the check, not only the start."""
    try:
        module = importlib.import_module(name)
    except Exception as exc:
        raise AppError(f"app {name!r} cannot be imported: {_reason(exc)}") from exc
    setup = getattr(module, "setup", None)
    if not callable(setup):
        raise AppError(f"app {name!r} has no setup(app) function")
    return setup  # type: ignore[no-any-return]


def _reason(exc: Exception) -> str:
    return exc.message if isinstance(exc, MercuryError) else f"{type(exc).__name__}: {exc}"
