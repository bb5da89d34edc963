"""The naming app: serve a cluster's readable names from the entity `names`.

Load it (`apps: [mercury_rt.apps.naming]`, `mercury-rt dev` always does) on the nodes that
mirror `names`, after the apps that attach to every mirrored entity: `names` then offers
`/argon/carbon/naming/v1` on its first free endpoint (callers find it at endpoint 0), answering
`resolve` from the names published in its state (`NodeRuntime.publish_name`, or
`mercury-rt name publish CONFIG NAME EID`).
"""

from __future__ import annotations

from carbon.names import NAMING_SPEC
from lithium.bindings import read_interface_map
from lithium.naming import attach_naming, register_naming
from mercury_rt.aio.names import NAMING_ENTITY
from mercury_rt.apps import NodeApp


def setup(app: NodeApp) -> None:
    """Register the resolve handler; attach the interface to `names` if mirrored here."""
    register_naming(app.registry)
    app.specs.add(NAMING_SPEC)
    if NAMING_ENTITY.decode() in app.mirrors:
        with app.store.writing() as txn:
            imap = read_interface_map(txn, NAMING_ENTITY)
            if imap.endpoint_of(NAMING_SPEC.interface) is not None:
                return
            free = next(n for n in range(1, len(imap.by_endpoint) + 2)
                        if n not in imap.by_endpoint)
            attach_naming(txn, NAMING_ENTITY, endpoint=free, specs=app.specs)
