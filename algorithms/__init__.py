"""Algorithm registry. Each algorithm is one module in this package that decorates its class with
`@register`; `load_all()` imports every such module, so adding an algorithm means adding one file."""

from __future__ import annotations

import importlib
import pkgutil

from algorithms.common.base import Algorithm

REGISTRY: dict[str, type[Algorithm]] = {}


def register(cls: type[Algorithm]) -> type[Algorithm]:
    """Class decorator: make `cls` available under `cls.name`."""
    if cls.name in REGISTRY and REGISTRY[cls.name] is not cls:
        raise ValueError(f"algorithm name {cls.name!r} registered twice")
    REGISTRY[cls.name] = cls
    return cls


def load_all() -> dict[str, type[Algorithm]]:
    """Import every algorithm module in this package and return the registry."""
    for info in pkgutil.iter_modules(__path__):
        if info.name != "common" and not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
    return REGISTRY


def get(name: str) -> type[Algorithm]:
    """The algorithm class registered under `name` (KeyError if none)."""
    return load_all()[name]
