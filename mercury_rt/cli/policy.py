"""CLI verbs for the policy area."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
