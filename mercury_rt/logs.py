"""Log configuration for processes that run nodes: structlog to stderr, at a chosen level.

structlog's default prints to stdout, which mixes logs into a program's output (a demo's
report, a benchmark's JSON). Entry points call `configure_logging` once; libraries only
ever log through `structlog.get_logger`.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "error": logging.ERROR}


def configure_logging(level: str = "info", stream: TextIO | None = None,
                      json: bool = False) -> None:
    """Send structlog output to `stream` (stderr) at `level`; JSON lines if asked."""
    renderer: structlog.types.Processor = (structlog.processors.JSONRenderer() if json
                                           else structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        processors=[structlog.processors.add_log_level,
                    structlog.processors.TimeStamper(fmt="iso", utc=True), renderer],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stderr),
        cache_logger_on_first_use=False)
