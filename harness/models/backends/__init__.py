"""Backends: one module per runtime behind `Backend`, found through the `BACKENDS` registry.

A backend loads a model, maps its outputs to the card's head names (checked at load time) and turns
a prepared input batch into those heads. It knows nothing of COCO and never looks at a clock.
"""

from __future__ import annotations

import importlib

from harness.errors import HarnessError
from harness.models.backends.base import BACKENDS, Backend, BackendOptions, map_outputs, register_backend

# Modules that register backends; imported on first use so that listing backends imports no runtime.
_MODULES = {"tflite": "harness.models.backends.tflite", "savedmodel": "harness.models.backends.savedmodel"}

__all__ = ["BACKENDS", "Backend", "BackendOptions", "create_backend", "map_outputs", "register_backend"]


def create_backend(name: str, model_path, outputs, options: BackendOptions | None = None) -> Backend:
    """Instantiate the backend registered as `name` (not loaded yet: call `.load()`)."""
    if name not in BACKENDS and name in _MODULES:
        importlib.import_module(_MODULES[name])
    try:
        cls = BACKENDS[name]
    except KeyError:
        raise HarnessError(f"unknown backend {name!r}; known: {', '.join(sorted(set(BACKENDS) | set(_MODULES)))}"
                           ) from None
    return cls(model_path, outputs, options or BackendOptions())
