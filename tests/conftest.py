"""Shared test settings: hypothesis profiles sized for CI (2 cores, 15-minute budget)."""

import os
from collections.abc import Iterator

import pytest
import structlog
from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=200, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(autouse=True)
def _fresh_structlog() -> Iterator[None]:
    """Commands run in-process (click's CliRunner) configure structlog for the process, e.g.
    at level warning; each test starts from structlog's defaults so `capture_logs` sees
    every event whatever ran before."""
    yield
    structlog.reset_defaults()
