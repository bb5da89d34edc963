"""The documents' own `cluster new` / `cluster restore` examples would run as written:
each gives its addresses (the CLI refuses a cluster ID without any, issue 14 item 10)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DOCS = [ROOT / "docs" / "operator-guide.md", ROOT / "conf" / "example-cluster" / "README.md",
        ROOT / "README.md", ROOT / "docs" / "developer-guide.md"]


def commands(text: str) -> list[str]:
    """Every `mercury-rt cluster new|restore` command line (a line that starts with it, as in
    a code block), continuations joined."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [line for line in joined.splitlines()
            if re.match(r"\s*mercury-rt cluster (new|restore) ", line)]


def test_every_documented_cluster_creation_lists_its_addresses() -> None:
    found = [(doc.name, c) for doc in DOCS for c in commands(doc.read_text())]
    assert len(found) >= 3
    for doc, command in found:
        assert "--address" in command or "--no-addresses" in command, (doc, command)
