"""Which TFLite runtime loads a model, and how: ai-edge-litert, tflite-runtime or tf.lite, their kernels, and
an interpreter opened with one-line errors.

The runtime is chosen explicitly (option) or as the first that imports, in the order of RUNTIMES, and
recorded. Nothing here imports TensorFlow unless tf.lite is the runtime chosen or the only one there.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import HarnessError, first_line


@dataclass(frozen=True)
class Runtime:
    name: str
    interpreter: Callable[..., Any]
    load_delegate: Callable[..., Any]
    version: str


def _litert() -> Runtime:
    from ai_edge_litert import interpreter as m

    return Runtime("ai-edge-litert", m.Interpreter, m.load_delegate, _dist_version("ai-edge-litert"))


def _tflite_runtime() -> Runtime:
    from tflite_runtime import interpreter as m

    return Runtime("tflite-runtime", m.Interpreter, m.load_delegate, _dist_version("tflite-runtime"))


def _tf_lite() -> Runtime:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return Runtime("tf.lite", tf.lite.Interpreter, tf.lite.experimental.load_delegate, tf.__version__)


# Order is the default preference: the light runtimes before TensorFlow.
RUNTIMES: dict[str, Callable[[], Runtime]] = {
    "ai-edge-litert": _litert,
    "tflite-runtime": _tflite_runtime,
    "tf.lite": _tf_lite,
}


def _dist_version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"


def select_runtime(name: str | None) -> Runtime:
    """The named runtime, or the first one that imports."""
    if name is not None:
        if name not in RUNTIMES:
            raise HarnessError(f"unknown TFLite runtime {name!r}; choose one of {', '.join(RUNTIMES)}")
        try:
            return RUNTIMES[name]()
        except ImportError as exc:
            raise HarnessError(f"TFLite runtime {name} is not installed ({exc.name or exc})") from None
    for loader in RUNTIMES.values():
        try:
            return loader()
        except ImportError:
            continue
    raise HarnessError("no TFLite runtime found: pip install ai-edge-litert (or tflite-runtime, or tensorflow)")


# Execution paths of the built-in ops: kernels name -> (OpResolverType member, default delegate applied).
# "xnnpack": the optimized kernels plus the runtime's default XNNPACK delegate (the runtime default);
# "builtin": the optimized kernels alone; "reference": TFLite's reference kernels (slow, the yardstick).
KERNELS: dict[str, tuple[str, bool]] = {
    "xnnpack": ("BUILTIN", True),
    "builtin": ("BUILTIN_WITHOUT_DEFAULT_DELEGATES", False),
    "reference": ("BUILTIN_REF", False),
}


def open_interpreter(runtime: Runtime, path: Path, threads: int | None, delegates: list | None, *,
          keep_tensors: bool = False, kernels: str | None = None, allocate: bool = True) -> Any:
    """An interpreter for `path` (allocated unless told not: reading its details needs no buffers) on the
    `kernels` named (KERNELS; None: the runtime's default); with `keep_tensors`, every tensor kept and,
    unless `kernels` says otherwise, no default delegate (XNNPACK would take the ops whose tensors are
    wanted; with "xnnpack" asked for it makes one partition per op, so every op output stays readable)."""
    kwargs: dict[str, Any] = {"model_path": str(path), "num_threads": threads,
                              "experimental_delegates": delegates or None}
    if keep_tensors and kernels is None:
        kernels = "builtin"
    if kernels is not None:
        resolver = sys.modules[runtime.interpreter.__module__].OpResolverType
        kwargs["experimental_op_resolver_type"] = getattr(resolver, KERNELS[kernels][0])
    if keep_tensors:
        kwargs["experimental_preserve_all_tensors"] = True
    try:
        with warnings.catch_warnings():
            if keep_tensors:  # "preserve_all_tensors is for debugging": that is what it is for here
                warnings.simplefilter("ignore")
            interpreter = runtime.interpreter(**kwargs)
        if allocate:
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise HarnessError(f"not a TFLite model: {path} ({first_line(exc)})") from None
    return interpreter


def free_half_loaded_delegate(exc: BaseException) -> None:
    """Free the runtime's Delegate whose __init__ failed, now and quietly.

    Its __del__ reads an attribute __init__ never set, so when the object is freed (at exit, since the
    error's traceback keeps it alive) Python prints a traceback after our one-line error. Dropping the
    traceback frees it here, with that one AttributeError silenced and any other reported as usual.
    """
    import gc
    import sys

    hook = sys.unraisablehook

    def quiet(unraisable: sys.UnraisableHookArgs) -> None:
        if not isinstance(unraisable.exc_value, AttributeError):
            hook(unraisable)

    sys.unraisablehook = quiet
    try:
        exc.__traceback__ = None
        gc.collect()
    finally:
        sys.unraisablehook = hook
