"""Wire error codes are unique, in their layer's range, and all documented."""

from __future__ import annotations

import re
from pathlib import Path

from carbon.error_codes import ErrorCode

SOURCE = (Path(__file__).parents[3] / "carbon" / "error_codes.py").read_text()
DOC = (Path(__file__).parents[3] / "docs" / "protocol.md").read_text()


def test_no_name_or_value_is_defined_twice() -> None:
    assignments = re.findall(r"^    ([A-Z][A-Z0-9_]+) = (\d+)$", SOURCE, re.M)
    names = [n for n, _ in assignments]
    values = [int(v) for _, v in assignments]
    assert len(names) == len(set(names)), "a name is defined twice"
    assert len(values) == len(set(values)), "a value is defined twice (an alias)"
    assert len(ErrorCode) == len(assignments)


def test_every_code_is_in_a_layer_range() -> None:
    assert all(100 <= code < 900 for code in ErrorCode)


def test_every_wire_code_is_documented() -> None:
    missing = [c.name for c in ErrorCode
               if c < 800 and str(int(c)) not in DOC and c.name not in DOC]
    assert not missing, f"undocumented in docs/protocol.md: {missing}"
