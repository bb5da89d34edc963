"""IRON symbols: validated hierarchical names such as `/argon/mercury/entity-handlers`.

A symbol names interfaces, persona classes and TUNGSTEN sections. It is written as a
path of components separated by `/`, with a leading `/`. Components are lower-case
ASCII letters, digits and `-_.`, starting with a letter or digit, so a symbol's text is
its canonical form and compares byte-for-byte.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from carbon.error_codes import ErrorCode, MercuryError

MAX_SYMBOL_LENGTH = 255
MAX_COMPONENTS = 32
_COMPONENT = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}\Z")


class SymbolError(MercuryError):
    """Text that is not a valid IRON symbol."""

    code = ErrorCode.WRONG_TYPE


@dataclass(frozen=True, slots=True, order=True)
class Symbol:
    """A validated IRON symbol; construct with `Symbol.parse` or `Symbol(text)`."""

    text: str

    def __post_init__(self) -> None:
        _validate(self.text)

    @classmethod
    def parse(cls, text: str) -> Symbol:
        """Parse and validate; raises SymbolError saying what is wrong."""
        return cls(text)

    @property
    def components(self) -> tuple[str, ...]:
        """The path components, without the leading empty one."""
        return tuple(self.text[1:].split("/"))

    def child(self, component: str) -> Symbol:
        """The symbol one level below this one."""
        return Symbol(f"{self.text}/{component}")

    def __str__(self) -> str:
        return self.text


def _validate(text: object) -> None:
    if not isinstance(text, str):
        raise SymbolError(f"a symbol must be text, not {type(text).__name__}")
    if len(text) > MAX_SYMBOL_LENGTH:
        raise SymbolError(f"symbol longer than {MAX_SYMBOL_LENGTH} characters")
    if not text.startswith("/"):
        raise SymbolError(f"symbol {text!r} must start with '/' (e.g. /argon/carbon/metadata)")
    parts = text[1:].split("/")
    if len(parts) > MAX_COMPONENTS:
        raise SymbolError(f"symbol {text!r} has more than {MAX_COMPONENTS} components")
    for part in parts:
        if not _COMPONENT.match(part):
            raise SymbolError(
                f"symbol {text!r}: component {part!r} must be 1-63 of a-z 0-9 . _ - "
                "starting with a letter or digit")
