"""Backends: one module per runtime behind `Backend`, found through the `BACKENDS` registry.

A backend loads a model, maps its outputs to the card's head names (checked at load time) and turns
a prepared input batch into those heads. It knows nothing of COCO and never looks at a clock.

A new runtime (say ONNX) is one module with a `Backend` subclass (its `opens(path)` says which paths
are its models) plus one line in `_MODULES`; cards, `card_for` and model paths find it from there.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from harness.errors import HarnessError
from harness.models.backends.base import (
    BACKENDS,
    Backend,
    BackendOptions,
    ModelInput,
    map_outputs,
    register_backend,
)

# Modules that register backends, in the order a model path is offered to them; imported on first use
# so that listing backends imports no runtime.
_MODULES = {"tflite": "harness.models.backends.tflite", "savedmodel": "harness.models.backends.savedmodel"}

__all__ = ["BACKENDS", "Backend", "BackendOptions", "ModelInput", "backend_class", "backend_for_path",
           "backend_opening", "create_backend", "map_outputs", "register_backend"]


def backend_class(name: str) -> type[Backend]:
    """The backend class registered as `name`, importing its module on first use."""
    if name not in BACKENDS and name in _MODULES:
        importlib.import_module(_MODULES[name])
    try:
        return BACKENDS[name]
    except KeyError:
        raise HarnessError(f"unknown backend {name!r}; known: {', '.join(sorted(set(BACKENDS) | set(_MODULES)))}"
                           ) from None


def create_backend(name: str, model_path, outputs, options: BackendOptions | None = None) -> Backend:
    """Instantiate the backend registered as `name` (not loaded yet: call `.load()`)."""
    return backend_class(name)(model_path, outputs, options or BackendOptions())


def _all_classes() -> list[type[Backend]]:
    for name in _MODULES:
        backend_class(name)
    return list(BACKENDS.values())


def backend_opening(path: str | Path) -> str | None:
    """The name of the first backend whose `opens` takes `path`, or None."""
    p = Path(path)
    return next((cls.name for cls in _all_classes() if cls.opens(p)), None)


def backend_for_path(path: str | Path) -> str:
    """The backend for a model path; a HarnessError that says what each backend takes when none does."""
    name = backend_opening(path)
    if name is not None:
        return name
    if not Path(path).exists():
        raise HarnessError(f"model not found: {path}")
    takes = "; ".join(f"{cls.name}: {cls.takes}" for cls in _all_classes())
    raise HarnessError(f"no backend opens {path} ({takes})")
