"""The naming app: serve a cluster's readable names from the entity `names`.

Load it (`apps: [mercury_rt.apps.naming]`, `mercury-rt dev` always does) on the nodes that
mirror `names`: the entity then offers `/argon/carbon/naming/v1` on endpoint 1, answering
`resolve` from the names published in its state (`NodeRuntime.publish_name`, or
`mercury-rt name publish CONFIG NAME EID`).
"""

from __future__ import annotations

from carbon.names import NAMING_SPEC
from lithium.naming import attach_naming, register_naming
from mercury_rt.aio.names import NAMING_ENTITY
from mercury_rt.apps import NodeApp

NAMING_ENDPOINT = 1


def setup(app: NodeApp) -> None:
    """Register the resolve handler; attach the interface to `names` if mirrored here."""
    register_naming(app.registry)
    app.specs.add(NAMING_SPEC)
    if NAMING_ENTITY.decode() in app.mirrors:
        with app.store.writing() as txn:
            attach_naming(txn, NAMING_ENTITY, endpoint=NAMING_ENDPOINT, specs=app.specs)
