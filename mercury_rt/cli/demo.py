"""CLI verb `demo`: the local demo cluster."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
