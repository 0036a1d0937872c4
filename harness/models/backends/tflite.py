"""TFLite backend: float32, int8 and 16x8 models on ai-edge-litert, tflite-runtime or tf.lite.

The runtime is chosen explicitly (option) or as the first that imports, in the order below, and
recorded. Nothing here imports TensorFlow unless tf.lite is the runtime chosen or the only one there.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import HarnessError, first_line
from harness.models.backends import tflite_inspect
from harness.models.backends.base import (
    Backend,
    BackendOptions,
    ModelInput,
    ModelOutput,
    dequantize,
    map_outputs,
    quantize,
    register_backend,
)
from harness.models.backends.tflite_inspect import OpInfo, TensorInfo


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


# The FlatBuffer file identifier of a TFLite model, at bytes 4..8.
_IDENTIFIER = b"TFL3"


@register_backend
class TFLiteBackend(Backend):
    name = "tflite"
    takes = "a .tflite file"

    @classmethod
    def opens(cls, path: Path) -> bool:
        if path.is_dir():
            return False
        if path.suffix.lower() == ".tflite":
            return True
        try:
            with open(path, "rb") as f:
                return f.read(8)[4:] == _IDENTIFIER
        except OSError:
            return False

    @classmethod
    def model_input(cls, path: Path) -> ModelInput | None:
        """Size from the input tensor; dtype only when it cannot be fed float (an unquantized integer input)."""
        interpreter = _open(select_runtime(None), path, None, None, allocate=False)
        inputs = interpreter.get_input_details()
        if len(inputs) != 1 or len(inputs[0]["shape"]) != 4:
            return None
        d = inputs[0]
        sig = d.get("shape_signature", d["shape"])
        h, w = (int(s) if s > 0 else None for s in sig[1:3])
        integer = np.issubdtype(d["dtype"], np.integer) and not d["quantization"][0]
        return ModelInput(h, w, np.dtype(d["dtype"]).name if integer else None)

    def load(self) -> None:
        if not self.model_path.is_file():
            raise HarnessError(f"model file not found: {self.model_path}")
        self.runtime = select_runtime(self.options.runtime)
        delegates = []
        if self.options.delegate:
            if self.options.keep_tensors:
                raise HarnessError("keeping every tensor needs the built-in kernels: leave out the delegate")
            try:
                delegates.append(self.runtime.load_delegate(self.options.delegate, self.options.delegate_options))
            except (ValueError, OSError, RuntimeError) as exc:
                message = first_line(exc)
                _free_half_loaded_delegate(exc)
                raise HarnessError(f"cannot load delegate {self.options.delegate}: {message}") from None
        if self.options.kernels is not None and self.options.kernels not in KERNELS:
            raise HarnessError(f"unknown kernels {self.options.kernels!r}; choose one of {', '.join(KERNELS)}")
        self.interpreter = _open(self.runtime, self.model_path, self.options.threads, delegates,
                                 keep_tensors=self.options.keep_tensors, kernels=self.options.kernels)
        inputs = self.interpreter.get_input_details()
        if len(inputs) != 1:
            raise HarnessError(f"{self.model_path.name}: expected one image input, the model has {len(inputs)}")
        self._input = inputs[0]
        self._outputs = self._model_outputs()
        # Output order is the file's: NXP's example reads heads by it, the cards' position fallback too.
        self._rules: dict[str, str] = {}
        self._mapping = map_outputs(self.model_path.name, self._outputs, self.outputs, by_position=True,
                                    rules=self._rules)
        details = {d["index"]: d for d in self.interpreter.get_output_details()}
        self._reads = [(head, idx, *details[idx]["quantization"]) for head, idx in self._mapping.items()]
        self._tensors: dict[int, TensorInfo] | None = None

    def _model_outputs(self) -> list[ModelOutput]:
        """Every output with its tensor name and, when the model has a signature, its signature key."""
        keys: dict[int, str] = {}
        sigs = self.interpreter.get_signature_list()
        if sigs:
            runner = self.interpreter.get_signature_runner(next(iter(sigs)))
            keys = {d["index"]: key for key, d in runner.get_output_details().items()}
        return [
            ModelOutput(d["index"], tuple(n for n in (keys.get(d["index"]), d["name"]) if n),
                        tuple(int(s) for s in d["shape"]))
            for d in self.interpreter.get_output_details()
        ]

    def set_input(self, batch: np.ndarray) -> None:
        d = self._input
        if np.issubdtype(d["dtype"], np.integer):
            scale, zero_point = d["quantization"]
            batch = quantize(batch, d["dtype"], scale, zero_point)
        else:
            batch = batch.astype(d["dtype"], copy=False)
        if tuple(batch.shape) != tuple(d["shape"]):
            raise HarnessError(f"{self.model_path.name} takes input {list(d['shape'])}, got {list(batch.shape)}")
        self.interpreter.set_tensor(d["index"], batch)

    def invoke(self) -> None:
        self.interpreter.invoke()

    def read_outputs(self) -> dict[str, np.ndarray]:
        return {head: dequantize(self.interpreter.get_tensor(idx), scale, zp)
                for head, idx, scale, zp in self._reads}

    # Every tensor (meant for a backend loaded with keep_tensors: otherwise intermediate values are reused)

    @property
    def input_index(self) -> int:
        return int(self._input["index"])

    def tensors(self) -> dict[int, TensorInfo]:
        """Every tensor of the model by index, with its shape and per-tensor quantization."""
        if self._tensors is None:
            self._tensors = tflite_inspect.tensors(self.interpreter)
        return self._tensors

    def ops(self) -> list[OpInfo]:
        """The model's ops in execution order (optional inputs, index -1, left out); with keep_tensors, no
        delegate partitions among them unless "xnnpack" kernels were asked for."""
        return tflite_inspect.ops(self.interpreter, f"reading the ops of {self.model_path.name}")

    def tensor(self, key: int | str) -> np.ndarray | None:
        """A tensor's value after the last invoke, as float32 (dequantized), by index or name.

        None where it cannot be read (no buffer kept) or is quantized per channel (no one scale).
        """
        index = key if isinstance(key, int) else self._index_of(key)
        try:
            a = self.interpreter.get_tensor(index)
        except ValueError:
            return None
        if np.issubdtype(a.dtype, np.integer):
            info = self.tensors()[index]
            if info.scale is None:
                return None
            return (a.astype(np.float32) - np.float32(info.zero_point)) * np.float32(info.scale)
        return a.astype(np.float32, copy=False)

    def _index_of(self, name: str) -> int:
        if not hasattr(self, "_by_name"):
            self._by_name = {t.name: t.index for t in self.tensors().values()}
        try:
            return self._by_name[name]
        except KeyError:
            raise HarnessError(f"{self.model_path.name} has no tensor named {name!r}") from None

    def describe(self) -> dict:
        d = self._input
        out = {
            "backend": self.name,
            "runtime": self.runtime.name,
            "runtime_version": self.runtime.version,
            "threads": self.options.threads,
            "delegate": self.options.delegate,
            "delegate_options": dict(self.options.delegate_options),
            "model": str(self.model_path),
            "model_sha256": self.model_sha256(),
            "input": {"dtype": np.dtype(d["dtype"]).name, "shape": [int(s) for s in d["shape"]],
                      "quantization": [float(d["quantization"][0]), int(d["quantization"][1])]},
            "output_mapping": {head: self._mapped_as(head, idx) for head, idx in self._mapping.items()},
        }
        if self.options.kernels:
            out["kernels"] = self.options.kernels
        if self.options.keep_tensors:
            out["keep_tensors"] = ("every tensor preserved, default delegates off" if self.options.kernels is None
                                   else f"every tensor preserved, {self.options.kernels} kernels")
        else:
            out["delegation"] = self.coverage()
        return out

    def delegate_asked(self) -> str | None:
        """The delegate this load asked for: the external library, the runtime's default XNNPACK, or None."""
        if self.options.delegate:
            return self.options.delegate
        if self.options.keep_tensors and self.options.kernels is None:
            return None
        # ai-edge-litert, tflite-runtime and tf.lite all apply XNNPACK by default on a CPU build.
        uses_default = KERNELS[self.options.kernels][1] if self.options.kernels else True
        return "XNNPACK (runtime default)" if uses_default else None

    def coverage(self) -> dict[str, Any]:
        """Which ops the delegate took and which stayed on the CPU (tflite_inspect.coverage; "unknown" on a
        runtime that does not list its ops)."""
        runtime = f"{self.runtime.name} {self.runtime.version}"
        return tflite_inspect.coverage(self.interpreter, self.delegate_asked(), runtime)

    def _mapped_as(self, head: str, idx: object) -> str:
        """The output's name; for a head found by position, that it was (NXP's rule, not the model's names)."""
        pos, out = next((i, o) for i, o in enumerate(self._outputs) if o.key == idx)
        return f"by position {pos} ({out.names[0]})" if self._rules.get(head) == "position" else out.names[0]


def open_tflite(path: str | Path, options: BackendOptions | None = None) -> TFLiteBackend:
    """A loaded TFLite backend with no heads mapped: where the graph readers (ops, tensors, values) start."""
    backend = TFLiteBackend(path, {}, options or BackendOptions())
    backend.load()
    return backend


def _open(runtime: Runtime, path: Path, threads: int | None, delegates: list | None, *,
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


__all__ = ["KERNELS", "RUNTIMES", "OpInfo", "TFLiteBackend", "TensorInfo", "open_tflite", "select_runtime"]


def _free_half_loaded_delegate(exc: BaseException) -> None:
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
