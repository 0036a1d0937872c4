"""TFLite backend: float32, int8 and 16x8 models on ai-edge-litert, tflite-runtime or tf.lite.

The runtime is chosen explicitly (option) or as the first that imports, in the order below, and
recorded. Nothing here imports TensorFlow unless tf.lite is the runtime chosen or the only one there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.common.fileio import sha256_file
from harness.errors import HarnessError
from harness.models.backends.base import Backend, ModelOutput, dequantize, map_outputs, quantize, register_backend


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


@register_backend
class TFLiteBackend(Backend):
    name = "tflite"

    def load(self) -> None:
        if not self.model_path.is_file():
            raise HarnessError(f"model file not found: {self.model_path}")
        self.runtime = select_runtime(self.options.runtime)
        delegates = []
        if self.options.delegate:
            try:
                delegates.append(self.runtime.load_delegate(self.options.delegate, self.options.delegate_options))
            except (ValueError, OSError, RuntimeError) as exc:
                raise HarnessError(f"cannot load delegate {self.options.delegate}: {_first_line(exc)}") from None
        try:
            self.interpreter = self.runtime.interpreter(
                model_path=str(self.model_path), num_threads=self.options.threads,
                experimental_delegates=delegates or None)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise HarnessError(f"not a TFLite model: {self.model_path} ({_first_line(exc)})") from None
        inputs = self.interpreter.get_input_details()
        if len(inputs) != 1:
            raise HarnessError(f"{self.model_path.name}: expected one image input, the model has {len(inputs)}")
        self._input = inputs[0]
        self._outputs = self._model_outputs()
        self._mapping = map_outputs(self.model_path.name, self._outputs, self.outputs)
        details = {d["index"]: d for d in self.interpreter.get_output_details()}
        self._reads = [(head, idx, *details[idx]["quantization"]) for head, idx in self._mapping.items()]

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

    def describe(self) -> dict:
        d = self._input
        return {
            "backend": self.name,
            "runtime": self.runtime.name,
            "runtime_version": self.runtime.version,
            "threads": self.options.threads,
            "delegate": self.options.delegate,
            "delegate_options": dict(self.options.delegate_options),
            "model": str(self.model_path),
            "model_sha256": sha256_file(self.model_path),
            "input": {"dtype": np.dtype(d["dtype"]).name, "shape": [int(s) for s in d["shape"]],
                      "quantization": [float(d["quantization"][0]), int(d["quantization"][1])]},
            "output_mapping": {head: self._name_of(idx) for head, idx in self._mapping.items()},
        }

    def _name_of(self, idx: object) -> str:
        return next(o.names[0] for o in self._outputs if o.key == idx)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__


__all__ = ["RUNTIMES", "TFLiteBackend", "select_runtime"]
