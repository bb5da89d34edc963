"""Python shorthand types work everywhere a declared type does; unknown types fail loudly."""

from __future__ import annotations

import pytest

from carbon.types import STR, TypeDeclarationError, dumps_typed, loads_typed


@pytest.mark.parametrize(("shorthand", "value"), [(str, "hi"), (int, -5), (bytes, b"\x00"),
                                                  (bool, True), (None, None)])
def test_shorthand_round_trips_like_the_declared_type(shorthand: object, value: object) -> None:
    data = dumps_typed(shorthand, value)  # type: ignore[arg-type]
    assert loads_typed(shorthand, data) == value  # type: ignore[arg-type]
    if shorthand is str:
        assert data == dumps_typed(STR, value)


def test_an_unknown_type_raises_instead_of_encoding_null() -> None:
    with pytest.raises(TypeDeclarationError):
        dumps_typed(float, 1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeDeclarationError):
        loads_typed(float, b"\xf6")  # type: ignore[arg-type]
