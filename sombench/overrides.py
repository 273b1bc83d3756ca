"""`--set key=value`: typed overrides of an algorithm's config dataclass, on top of an optional preset.

A preset is a named set of config values declared next to the algorithm it configures (the class's
`presets`, e.g. SOM's "bandit"); its keys are checked like `--set` keys, so a preset naming a field the
config lacks is an error, never silently dropped. Every value is then checked against its field's domain
(algorithms/common/config.py) when the config is built.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any

from sombench.errors import InvalidValue, UserError

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _parse_int(text: str) -> int:
    try:
        return int(text.replace("_", ""))
    except ValueError:
        value = float(text)  # accept "1e5" for an integral value, as researchers write budgets
        if not math.isfinite(value) or value != int(value):
            raise ValueError(text) from None
        return int(value)


def _parse(text: str, annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if text.lower() == "none" and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _parse(text, inner[0])
    if origin is tuple:
        if not text.replace("(", "").replace(")", "").strip():
            return ()  # nothing: the field's domain says what it needs (hidden_sizes: one or more positive integers)
        parts = text.replace("(", "").replace(")", "").split(",")
        if len(parts) > 1 and not parts[-1].strip():
            parts = parts[:-1]  # one trailing comma, as Python writes a 1-tuple: (256,)
        if any(not p.strip() for p in parts):
            raise ValueError(text)  # an empty item: 32,,32 is a typo, not 32,32
        return tuple(_parse(p.strip(), args[0]) for p in parts)
    if annotation is bool:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValueError(text)
    if annotation is int:
        return _parse_int(text)
    if annotation is float:
        return float(text)
    if annotation is str:
        return text
    raise ValueError(f"unsupported field type {annotation}")


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def apply_overrides(config_cls: type, pairs: list[str], base: dict[str, Any] | None = None,
                    base_name: str = "preset") -> tuple[Any, dict[str, Any]]:
    """Build `config_cls` from `base` (a preset's values) with `key=value` pairs applied on top; returns
    (config, the parsed overrides).

    Raises UserError naming the bad pair and the valid keys, the expected type or the field's domain.
    """
    hints = typing.get_type_hints(config_cls)
    fields = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(base or {}) - fields)
    if unknown:
        raise UserError(f"{base_name} sets unknown config key(s) {', '.join(unknown)} for {config_cls.__name__}")
    parsed: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidValue("set", f"expects key=value, got {pair!r}")
        if key not in fields:
            raise InvalidValue("set", f"{pair!r}: unknown config key {key!r}; valid keys: {', '.join(sorted(fields))}")
        try:
            parsed[key] = _parse(text.strip(), hints[key])
        except ValueError:
            raise InvalidValue("set", f"{key}: expected {_type_name(hints[key])}, got {text!r}") from None
    try:
        config = config_cls(**{**(base or {}), **parsed})
    except ValueError as exc:  # ConfigError: a value outside its field's domain
        key = str(exc).split(" ", 1)[0]
        if key in parsed:
            raise InvalidValue("set", str(exc)) from None
        raise UserError(f"{base_name if key in (base or {}) else 'config'}: {exc}") from None
    return config, parsed
