"""Typed configuration: dataclasses filled from TOML files with strict key and type checks.

Every config class is a (nested) dataclass. ``load_config(Cls, path)`` reads a TOML file,
rejects unknown keys and wrong types with a one-line error naming the key and file, and
returns the instance. ``to_dict`` gives the resolved config for provenance records.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from handflow.errors import HandflowError

T = TypeVar("T")


def from_dict(cls: type[T], data: dict, where: str = "config") -> T:
    if not isinstance(data, dict):
        raise HandflowError(f"{where}: expected a table, found {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise HandflowError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(fields)})")
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, f"{where}.{name}")
    try:
        return cls(**kwargs)
    except HandflowError as err:  # a check across fields (__post_init__): say which file or table it read
        raise HandflowError(f"{where}: {err}") from err


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, where)
            except HandflowError as err:
                errors.append(str(err))
        raise HandflowError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            raise HandflowError(f"{where}: {value!r} is not one of {typing.get_args(tp)}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise HandflowError(f"{where}: expected a list, found {type(value).__name__}")
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise HandflowError(f"{where}: expected {len(args)} values, found {len(value)}")
            return tuple(_coerce(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        elem = args[0] if args else Any
        out = [_coerce(elem, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise HandflowError(f"{where}: expected a number, found {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise HandflowError(f"{where}: expected an integer, found {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise HandflowError(f"{where}: expected true/false, found {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise HandflowError(f"{where}: expected a string, found {value!r}")
        return value
    return value


def load_config(cls: type[T], path: str | Path) -> T:
    path = Path(path)
    if not path.is_file():
        raise HandflowError(f"missing config file: {path}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise HandflowError(f"corrupt config {path}: {err}") from err
    return from_dict(cls, data, where=str(path))


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)
