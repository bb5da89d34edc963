"""Applications a node loads from its config (`apps:`): handler code for its entities.

An app is a Python module with `setup(app: NodeApp) -> None`. It registers handlers and
attaches interfaces to the entities this node mirrors. `mercury_rt.apps.echo` is the
built-in demo app. Apps are found in the node config's `app_paths` and the config file's
own directory before the installed packages, so an app written beside its config runs
without PYTHONPATH or installing it.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

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


def load_apps(names: list[str], app: NodeApp, search: Sequence[Path] = ()) -> None:
    """Import each app module and run its setup(); AppError says which one failed.

    An app is operator-chosen code: whatever it raises (a missing module, a syntax error,
    a bad interface in setup) becomes an AppError naming the app, so `node run` reports
    it as a config problem instead of a traceback.
    """
    for name in names:
        setup = import_app(name, search)
        try:
            setup(app)
        except Exception as exc:
            raise AppError(f"app {name!r} failed in setup(app): {_reason(exc)}") from exc


def import_app(name: str, search: Sequence[Path] = ()) -> Callable[[NodeApp], object]:
    """The app's setup function; AppError if the module cannot be imported or has none.
    `node check` calls this too, so a missing app fails the check, not only the start.
    `search` (app_paths, then the config's folder) is put in front of sys.path first."""
    add_search_path(search)
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        where = ", ".join(str(p) for p in search) or "the installed packages"
        raise AppError(f"app {name!r} cannot be imported: {_reason(exc)} (looked in {where}"
                       f"{' and the installed packages' if search else ''}; put it in a "
                       "folder listed in app_paths or install it)") from exc
    except Exception as exc:
        raise AppError(f"app {name!r} cannot be imported: {_reason(exc)}") from exc
    setup = getattr(module, "setup", None)
    if not callable(setup):
        raise AppError(f"app {name!r} has no setup(app) function")
    return setup  # type: ignore[no-any-return]


def add_search_path(folders: Sequence[Path]) -> None:
    """Put `folders` at the front of sys.path, in order, for the life of the process (so
    an app's own later imports of its sibling modules work too), once each."""
    for folder in reversed(folders):
        text = str(folder)
        if text not in sys.path:
            sys.path.insert(0, text)
    importlib.invalidate_caches()  # folders created since start-up are seen


def _reason(exc: Exception) -> str:
    return exc.message if isinstance(exc, MercuryError) else f"{type(exc).__name__}: {exc}"
