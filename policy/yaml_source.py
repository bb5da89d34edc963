"""Load a YAML file into a pydantic v2 model, reporting every problem as `file:line: path: what`.

Generic on purpose: the security policy and the node configuration both load through here,
so operators see one error format everywhere. PyYAML is used at the node level (compose),
not the object level, so every value keeps the line it came from; pydantic error locations
are then mapped back to those lines. Duplicate mapping keys are an error (PyYAML silently
keeps the last one, which hides typos). The C loader is used when libyaml is present.
Files are bounded in size (MAX_FILE_BYTES), in values (MAX_NODES) and in nesting depth
(MAX_DEPTH): the events are scanned for depth before any tree is built, because composing
and building recurse once per level and a hostile file could nest a thousand levels deep.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pydantic
import yaml

from carbon.error_codes import ErrorCode, MercuryError

M = TypeVar("M", bound=pydantic.BaseModel)
Loc = tuple[str | int, ...]
SemanticCheck = Callable[[M], Iterable[tuple[Loc, str]]]

MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_NODES = 1_000_000
MAX_DEPTH = 64
"""Deepest nesting of mappings and sequences (the document itself is depth 0; aliases
count where they are used). Real policies and node configs are under 10 deep."""

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a file, located so an operator can go straight to it."""

    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.file}:{self.line}: {where}{self.message}"


class ConfigFileError(MercuryError):
    """A configuration or policy file that cannot be used; `.problems` lists every reason."""

    code = ErrorCode.CONFIG_INVALID

    def __init__(self, problems: Sequence[Problem], code: ErrorCode | None = None) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems), code)


@dataclass(slots=True)
class _Document:
    """Plain Python data plus the line of every mapping key / sequence item, by path."""

    data: Any
    lines: dict[tuple[str, ...], int]
    duplicates: tuple[Problem, ...]


def load_model(path: Path, model: type[M], check: SemanticCheck[M] | None = None) -> M:
    """Read `path`, validate against `model`, run `check`; raise ConfigFileError listing all."""
    text = _read(path)
    return parse_model(text, str(path), model, check)


def parse_model(text: str, filename: str, model: type[M],
                check: SemanticCheck[M] | None = None) -> M:
    """Like load_model, for text already in hand (tests, stdin, embedded defaults)."""
    doc = _compose(text, filename)
    problems = list(doc.duplicates)
    try:
        value = model.model_validate(doc.data)
    except pydantic.ValidationError as exc:
        problems += _pydantic_problems(exc, doc, filename)
        raise _error(problems) from None
    if check is not None:
        problems += [_locate(doc, filename, loc, msg, missing=True) for loc, msg in check(value)]
    if problems:
        raise _error(problems)
    return value


def _error(problems: list[Problem]) -> ConfigFileError:
    only_duplicates = all(p.message.startswith("duplicate key") for p in problems)
    code = ErrorCode.CONFIG_DUPLICATE_KEY if only_duplicates else ErrorCode.CONFIG_INVALID
    return ConfigFileError(sorted(problems, key=lambda p: p.line), code)


def _read(path: Path) -> str:
    name = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ConfigFileError([Problem(name, 1, "", f"file is {size} bytes; the limit is "
                                           f"{MAX_FILE_BYTES}")], ErrorCode.CONFIG_TOO_LARGE)
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigFileError([Problem(name, 1, "", f"cannot read file: {exc}")],
                              ErrorCode.CONFIG_UNREADABLE) from None


def _compose(text: str, filename: str) -> _Document:
    loader = _Loader(text)
    try:
        _check_depth(text, filename)
        node = loader.get_single_node()
        builder = _Builder(loader, filename)
        data = builder.build(node, ()) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        what = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        if "maximum nesting depth" in what:  # libyaml's own bound (1000), hit while it scans
            raise _too_deep(filename, mark) from None  # ahead in flow style
        raise ConfigFileError([Problem(filename, line, "", f"YAML syntax: {what}")],
                              ErrorCode.CONFIG_YAML_SYNTAX) from None
    except yaml.YAMLError as exc:
        raise ConfigFileError([Problem(filename, 1, "", f"YAML: {exc}")],
                              ErrorCode.CONFIG_YAML_SYNTAX) from None
    finally:
        loader.dispose()
    return _Document(data, builder.lines, tuple(builder.duplicates))


def _too_deep(filename: str, mark: Any) -> ConfigFileError:
    line = mark.line + 1 if mark is not None else 1
    return ConfigFileError([Problem(filename, line, "", f"nested more than {MAX_DEPTH} levels "
                                    f"deep; the limit is {MAX_DEPTH}")],
                           ErrorCode.CONFIG_TOO_DEEP)


def _check_depth(text: str, filename: str) -> None:
    """Refuse nesting past MAX_DEPTH from the event stream, which needs no recursion."""
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise _too_deep(filename, event.start_mark)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


class _Builder:
    """Turns a composed node tree into plain data, recording lines and duplicate keys."""

    def __init__(self, loader: Any, filename: str) -> None:
        self.loader = loader
        self.filename = filename
        self.lines: dict[tuple[str, ...], int] = {}
        self.duplicates: list[Problem] = []
        self.count = 0

    def build(self, node: yaml.Node, path: tuple[str, ...], depth: int = 0) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise yaml.YAMLError(f"more than {MAX_NODES} values (alias expansion?)")
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.CollectionNode) and depth >= MAX_DEPTH:
            raise _too_deep(self.filename, node.start_mark)  # aliases nest past the scan
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth + 1)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, str(i)), depth + 1)
                    for i, item in enumerate(node.value)]
        return self.loader.construct_object(node, deep=True)

    def _mapping(self, node: yaml.MappingNode, path: tuple[str, ...],
                 depth: int) -> dict[Any, Any]:
        seen: dict[str, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = str(self._key(key_node))
            line = key_node.start_mark.line + 1
            if key in seen:
                shown = ".".join((*path, key))
                self.duplicates.append(Problem(self.filename, line, shown,
                                               f"duplicate key (first at line {seen[key]})"))
            else:
                seen[key] = line
        self.loader.flatten_mapping(node)
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = self._key(key_node)  # again: merged-in keys were not seen above
            child = (*path, str(key))
            self.lines[child] = key_node.start_mark.line + 1
            result[key] = self.build(value_node, child, depth)
        return result

    def _key(self, key_node: yaml.Node) -> Any:
        """A mapping key, refused unless scalar before it is built: a sequence key made of
        aliases is small as nodes but exponential as text (str() below)."""
        if not isinstance(key_node, yaml.ScalarNode):
            raise yaml.YAMLError("mapping keys must be scalars")
        return self.loader.construct_object(key_node, deep=True)


def _pydantic_problems(exc: pydantic.ValidationError, doc: _Document,
                       filename: str) -> list[Problem]:
    return [_locate(doc, filename, tuple(err["loc"]), _message(err),
                    missing=err["type"] == "missing")
            for err in exc.errors(include_url=False)]


def _message(err: Any) -> str:
    msg = str(err["msg"])
    if err["type"] == "extra_forbidden":
        return "unknown key (check the spelling; see the operator guide for allowed keys)"
    if err["type"] == "missing":
        return "required key is missing"
    if err["type"] in ("model_type", "dict_type"):
        return "expected a mapping of keys to values"
    return msg[0].lower() + msg[1:] if msg else msg


def _locate(doc: _Document, filename: str, loc: Loc, message: str,
            missing: bool = False) -> Problem:
    """Map a validation location onto real keys; skip pydantic's union/validator tags."""
    path: list[str] = []
    node: Any = doc.data
    for i, elem in enumerate(loc):
        key = str(elem)
        if isinstance(node, dict) and any(str(k) == key for k in node):
            node = next(v for k, v in node.items() if str(k) == key)
            path.append(key)
        elif isinstance(node, list) and isinstance(elem, int) and 0 <= elem < len(node):
            node = node[elem]
            path.append(key)
        elif missing and i == len(loc) - 1:
            path.append(key)
    line = _line_for(doc.lines, tuple(path))
    return Problem(filename, line, ".".join(path), message)


def _line_for(lines: dict[tuple[str, ...], int], path: tuple[str, ...]) -> int:
    while path and path not in lines:
        path = path[:-1]
    return lines.get(path, 1)
