"""ReplayWindow against a reference model (docs/protocol.md 8.5).

The model holds every accepted number and the highest: a number is fresh exactly when it
was never accepted and is within WINDOW of the highest (or above it). Random sequences
mix new numbers, reorders, duplicates, far jumps and numbers just past the window edge.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mercury_rt.core.transit.replay import WINDOW, ReplayWindow


class Model:
    """The obvious, unbounded implementation."""

    def __init__(self) -> None:
        self.accepted: set[int] = set()
        self.highest = -1

    def fresh(self, number: int) -> bool:
        return number not in self.accepted and number > self.highest - WINDOW

    def accept(self, number: int) -> None:
        self.accepted.add(number)
        self.highest = max(self.highest, number)


@st.composite
def schedules(draw: st.DrawFn) -> list[tuple[int, bool]]:
    """(number, authenticated) steps relative to a moving high mark."""
    steps: list[tuple[int, bool]] = []
    high = 0
    for _ in range(draw(st.integers(1, 120))):
        kind = draw(st.sampled_from(["next", "back", "edge", "jump", "repeat"]))
        if kind == "next":
            number = high + draw(st.integers(1, 3))
        elif kind == "back":
            number = max(0, high - draw(st.integers(0, 64)))
        elif kind == "edge":
            number = max(0, high - WINDOW + draw(st.integers(-2, 2)))
        elif kind == "jump":
            number = high + draw(st.one_of(st.integers(WINDOW - 2, 3 * WINDOW),
                                           st.sampled_from([2**40, 2**61])))
        else:
            number = draw(st.sampled_from([n for n, _ in steps])) if steps else 0
        authenticated = draw(st.booleans()) or draw(st.booleans())
        steps.append((number, authenticated))
        high = max(high, number)
    return steps


@given(schedules())
def test_the_window_agrees_with_the_model(steps: list[tuple[int, bool]]) -> None:
    window, model = ReplayWindow(), Model()
    for number, authenticated in steps:
        assert window.fresh(number) is model.fresh(number), (number, model.highest)
        if authenticated and model.fresh(number):
            window.accept(number)
            model.accept(number)
        assert window.highest == model.highest


@given(schedules())
def test_no_number_is_accepted_twice(steps: list[tuple[int, bool]]) -> None:
    window = ReplayWindow()
    accepted: list[int] = []
    for number, _ in steps:
        if window.fresh(number):
            window.accept(number)
            accepted.append(number)
    assert len(accepted) == len(set(accepted))
