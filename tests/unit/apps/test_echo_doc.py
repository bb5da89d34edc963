"""docs/protocol.md 5.8 describes the demo app as it is (issue 16 item 22): its published
spec, payload examples and recording rule."""

from __future__ import annotations

import json
from pathlib import Path

from carbon.protocol_spec import spec_to_value
from carbon.types import dumps_typed
from mercury_rt.apps.echo import ECHO, RECORDED_TEXT, recorded_key

DOC = (Path(__file__).parents[3] / "docs" / "protocol.md").read_text()
SECTION = DOC[DOC.index("### 5.8 The demo interface"):DOC.index("## 6. Nodes and routing")]


def test_the_documented_spec_is_the_demo_apps_published_spec() -> None:
    published = json.loads(SECTION.split("```")[1])
    assert published == spec_to_value(ECHO)


def test_the_documented_payloads_and_recording_rule_hold() -> None:
    assert f"`\"hi\"` = `{dumps_typed(str, 'hi').hex()}`" in SECTION
    assert f"`null` (`{dumps_typed(None, None).hex()}`)" in SECTION
    assert f"at most {RECORDED_TEXT} UTF-8 bytes" in SECTION
    long_text = "x" * (RECORDED_TEXT + 1)
    assert recorded_key("x" * RECORDED_TEXT) == ("x" * RECORDED_TEXT,)
    assert recorded_key(long_text)[0].startswith("sha256:")
