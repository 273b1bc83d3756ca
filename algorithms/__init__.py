"""Algorithm registry. Each algorithm is one module in this package that decorates its class with
`@register`; `load_all()` imports every such module, so adding an algorithm means adding one file.

Installed packages add algorithms through the `sombench.algorithms` entry-point group: each entry
names a module whose classes use `@register`, or an `Algorithm` subclass itself (which is then
registered). `load_all()` loads them after this package's own modules; two classes under one name,
or an entry that cannot be loaded or is not an algorithm, raise RegistryError (one line).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import pkgutil

from algorithms.common.base import Algorithm

REGISTRY: dict[str, type[Algorithm]] = {}


ENTRY_POINT_GROUP = "sombench.algorithms"


class RegistryError(ValueError):
    """Two algorithms under one name, or a plug-in entry that cannot be loaded or is not an algorithm."""


def register(cls: type[Algorithm]) -> type[Algorithm]:
    """Class decorator: make `cls` available under `cls.name`; RegistryError if another class has it."""
    other = REGISTRY.get(cls.name)
    if other is not None and other is not cls:
        raise RegistryError(f"algorithm name {cls.name!r} is registered twice, by {other.__module__}.{other.__qualname__} "
                            f"and by {cls.__module__}.{cls.__qualname__}; give one of them another `name`")
    REGISTRY[cls.name] = cls
    return cls


_PLUGINS_LOADED: list[bool] = []


def _load_plugins() -> None:
    """Load every `sombench.algorithms` entry point once (see the module docstring)."""
    if _PLUGINS_LOADED:
        return
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        where = f"entry point {ep.name!r} ({ep.value}) of the {ENTRY_POINT_GROUP} group"
        try:
            obj = ep.load()
        except RegistryError:
            raise
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [""])[0]
            raise RegistryError(f"{where} cannot be loaded: {type(exc).__name__}: {first}") from None
        if isinstance(obj, type):
            if not issubclass(obj, Algorithm):
                raise RegistryError(f"{where} names {obj.__qualname__}, which is not an algorithms.common.base.Algorithm")
            register(obj)
    _PLUGINS_LOADED.append(True)


def load_all() -> dict[str, type[Algorithm]]:
    """Import every algorithm module in this package and return the registry."""
    for info in pkgutil.iter_modules(__path__):
        if info.name != "common" and not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
    _load_plugins()
    return REGISTRY


def get(name: str) -> type[Algorithm]:
    """The algorithm class registered under `name` (KeyError if none)."""
    return load_all()[name]
