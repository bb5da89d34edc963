"""CLI verbs for the identity area."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
