"""Named backends per component kind, imported lazily so that an unused backend's dependencies never load."""
from __future__ import annotations

import importlib
from typing import Any, Callable


class ComponentError(RuntimeError):
    """A backend cannot be built; the message says what to install or set."""


def build(kind: str, registry: dict[str, str], name: str, *args: Any, **kwargs: Any) -> Any:
    """registry maps a backend name to "module:function"; the function builds the component."""
    if name not in registry:
        raise ComponentError(f"unknown {kind} backend {name!r}; choose one of: {', '.join(sorted(registry))}")
    module_name, func_name = registry[name].split(":")
    factory: Callable[..., Any] = getattr(importlib.import_module(module_name), func_name)
    return factory(*args, **kwargs)
