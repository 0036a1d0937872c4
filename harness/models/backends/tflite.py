"""TFLite backend: float32, int8 and 16x8 models on ai-edge-litert, tflite-runtime or tf.lite (chosen and
opened by harness.models.backends.tflite_runtimes), and the one reader of a loaded interpreter's graph.

The reader (`op_list`, `read_ops`, `read_tensors`, `read_coverage`) is the only place that touches the
runtime's private op listing, guarded once: every caller (this backend, the quantization cost model and
converter checks, the per-layer and per-path comparisons) goes through it. A runtime that does not list its
ops gives `None` (coverage then says "unknown"; a command that cannot work without the ops says so in one
line).

What TFLite shows from Python, and what this relies on (checked on ai-edge-litert 2.3.0 and tf.lite 2.21):
`Interpreter._get_ops_details()` lists every node of the primary subgraph, the model's own ops first,
then one node per delegate partition (op name `DELEGATE`) appended after delegation, with the tensors
that partition reads and writes. The execution plan itself (which nodes run) is not exposed; a
partition's members are found from its outputs by walking back through the producing ops until the
partition's inputs. An op of the model that no partition covers runs on the CPU's built-in kernels.
This holds for the runtime's default XNNPACK delegate and for external delegates alike. With every
tensor preserved (keep_tensors), XNNPACK makes one partition per op, so coverage is read from a normal
load, never from a keep-tensors one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import HarnessError, first_line
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
from harness.models.backends.tflite_runtimes import (
    KERNELS,
    free_half_loaded_delegate,
    open_interpreter,
    select_runtime,
)

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
        interpreter = open_interpreter(select_runtime(None), path, None, None, allocate=False)
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
                free_half_loaded_delegate(exc)
                raise HarnessError(f"cannot load delegate {self.options.delegate}: {message}") from None
        if self.options.kernels is not None and self.options.kernels not in KERNELS:
            raise HarnessError(f"unknown kernels {self.options.kernels!r}; choose one of {', '.join(KERNELS)}")
        self.interpreter = open_interpreter(self.runtime, self.model_path, self.options.threads, delegates,
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
            self._tensors = read_tensors(self.interpreter)
        return self._tensors

    def ops(self) -> list[OpInfo]:
        """The model's ops in execution order (optional inputs, index -1, left out); with keep_tensors, no
        delegate partitions among them unless "xnnpack" kernels were asked for."""
        return read_ops(self.interpreter, f"reading the ops of {self.model_path.name}")

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
        """Which ops the delegate took and which stayed on the CPU (`read_coverage`; "unknown" on a
        runtime that does not list its ops)."""
        runtime = f"{self.runtime.name} {self.runtime.version}"
        return read_coverage(self.interpreter, self.delegate_asked(), runtime)

    def _mapped_as(self, head: str, idx: object) -> str:
        """The output's name; for a head found by position, that it was (NXP's rule, not the model's names)."""
        pos, out = next((i, o) for i, o in enumerate(self._outputs) if o.key == idx)
        return f"by position {pos} ({out.names[0]})" if self._rules.get(head) == "position" else out.names[0]


def open_tflite(path: str | Path, options: BackendOptions | None = None) -> TFLiteBackend:
    """A loaded TFLite backend with no heads mapped: where the graph readers (ops, tensors, values) start."""
    backend = TFLiteBackend(path, {}, options or BackendOptions())
    backend.load()
    return backend


# The graph reader: ops, tensors and what a delegate took, from a loaded interpreter.

DELEGATE_OP = "DELEGATE"


@dataclass(frozen=True)
class TensorInfo:
    """One tensor of a loaded model; `scale`/`zero_point` only for a per-tensor quantized integer tensor."""

    index: int
    name: str
    dtype: str
    scale: float | None
    zero_point: int | None
    shape: tuple[int, ...] = ()


@dataclass(frozen=True)
class OpInfo:
    """One op in execution order: its type (e.g. CONV_2D) and the tensor indices it reads and writes."""

    index: int
    op: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


def op_list(interpreter: Any) -> list[OpInfo] | None:
    """The interpreter's nodes in execution order (optional inputs, index -1, left out), delegate partitions
    (DELEGATE_OP) after the model's ops; None when the runtime does not list its ops (an old tflite-runtime)."""
    listing = getattr(interpreter, "_get_ops_details", None)
    if listing is None:
        return None
    return [OpInfo(int(o["index"]), str(o["op_name"]), tuple(int(i) for i in o["inputs"] if i >= 0),
                   tuple(int(i) for i in o["outputs"] if i >= 0))
            for o in listing()]


def read_ops(interpreter: Any, needed_for: str) -> list[OpInfo]:
    """op_list, or one HarnessError saying that `needed_for` needs a runtime that lists its ops."""
    listed = op_list(interpreter)
    if listed is None:
        raise HarnessError(f"{needed_for} needs the model's op list, which this TFLite runtime does not give "
                           "(ai-edge-litert and tf.lite do)")
    return listed


def read_tensors(interpreter: Any) -> dict[int, TensorInfo]:
    """Every tensor of the model by index, with its shape and per-tensor quantization."""
    return {int(t["index"]): _tensor_info(t) for t in interpreter.get_tensor_details()}


def _tensor_info(t: dict[str, Any]) -> TensorInfo:
    q = t["quantization_parameters"]
    per_tensor = len(q["scales"]) == 1 and np.issubdtype(t["dtype"], np.integer)
    return TensorInfo(int(t["index"]), str(t["name"]), np.dtype(t["dtype"]).name,
                      float(q["scales"][0]) if per_tensor else None, int(q["zero_points"][0]) if per_tensor else None,
                      tuple(int(s) for s in t["shape"]))


def read_coverage(interpreter: Any, delegate: str | None, runtime: str) -> dict[str, Any]:
    """delegate_coverage of a loaded interpreter; "unknown" (with a note naming `runtime`) when it lists no ops."""
    listed = op_list(interpreter)
    if listed is None:
        return {"delegate": delegate, "note": f"{runtime} does not list its ops: coverage unknown"}
    return delegate_coverage(listed, delegate)


def delegate_coverage(ops: Sequence[OpInfo], delegate: str | None) -> dict[str, Any]:
    """Coverage of `ops` (op_list after allocation) by the delegate partitions.

    `delegate` names what was asked for (the external library, the default XNNPACK, or None); it is
    recorded as is. `cpu_ops` lists "index:OP" of every model op no partition took; with a delegate
    asked for, any such op is a fall-back (`fell_back`), including a delegate that took nothing at all.
    """
    model_ops = [o for o in ops if o.op != DELEGATE_OP]
    kernels = [o for o in ops if o.op == DELEGATE_OP]
    producer = {t: o for o in model_ops for t in o.outputs}
    taken: set[int] = set()
    partitions = []
    for kernel in kernels:
        boundary = set(kernel.inputs)
        members: set[int] = set()
        stack = list(kernel.outputs)
        while stack:
            t = stack.pop()
            op = producer.get(t)
            if op is None or t in boundary or op.index in members:
                continue
            members.add(op.index)
            stack.extend(op.inputs)
        taken |= members
        partitions.append(sorted(members))
    by_index = {o.index: o.op for o in model_ops}
    cpu = [i for i in sorted(by_index) if i not in taken]
    return {
        "delegate": delegate,
        "partitions": len(kernels),
        "model_ops": len(model_ops),
        "delegated_ops": len(taken),
        "delegated_by_type": dict(sorted(Counter(by_index[i] for i in taken).items())),
        "cpu_ops": [f"{i}:{by_index[i]}" for i in cpu],
        "cpu_by_type": dict(sorted(Counter(by_index[i] for i in cpu).items())),
        "fell_back": bool(delegate) and bool(cpu),
        "method": "delegate partitions from Interpreter._get_ops_details() (DELEGATE nodes after the model's "
                  "ops), members by walking back from each partition's outputs to its inputs",
    }


__all__ = ["DELEGATE_OP", "OpInfo", "TFLiteBackend", "TensorInfo", "delegate_coverage", "op_list", "open_tflite",
           "read_coverage", "read_ops", "read_tensors"]
