"""The audit trail of gate decisions, as structlog events (JSON lines in production).

Shell side: the gate returns decisions and never logs; the node calls `audit_decision` for
each one. Every event names the rule that decided it and, for delegated requests, both
the real originator and the entity acted for, as the design requires.
"""

from __future__ import annotations

from typing import Any, TextIO

import structlog

from carbon.principal import Principal
from mercury_rt.core.gate import Allow, Decision, GateRequest


def json_audit_logger(stream: TextIO) -> Any:
    """A logger writing one JSON object per line to `stream`, with UTC ISO timestamps."""
    return structlog.wrap_logger(
        structlog.PrintLogger(stream),
        processors=[structlog.processors.TimeStamper(fmt="iso", utc=True),
                    structlog.processors.JSONRenderer(sort_keys=True)])


def audit_fields(request: GateRequest, decision: Decision) -> dict[str, Any]:
    """The audit record of one decision, as plain JSON-able fields."""
    fields: dict[str, Any] = {
        "target": request.target.text(),
        "rule": decision.rule,
    }
    if isinstance(decision, Allow):
        fields.update(outcome="allow", originator=_who(decision.originator),
                      acting_as=_who(decision.principal),
                      via=[_who(p) for p in decision.chain[:-1]],
                      stamp_bits=decision.stamp_bits)
    else:
        fields.update(outcome="deny", code=int(decision.code), error=decision.code.name,
                      stage=decision.stage, message=decision.message,
                      originator=_who(decision.originator) if decision.originator else None)
    return fields


def audit_decision(request: GateRequest, decision: Decision, logger: Any = None) -> None:
    """Log one decision as the `gate_decision` event (to structlog's default if no logger)."""
    log = logger if logger is not None else structlog.get_logger("mercury_rt.aio.audit")
    log.info("gate_decision", **audit_fields(request, decision))


def _who(who: Principal) -> dict[str, Any]:
    return {
        "cluster": who.cluster.hex(),
        "local": who.local.decode("utf-8", "backslashreplace"),
        "persona": who.persona.cls.text if who.persona else None,
    }
