"""The one reader of a TFLite interpreter's graph: its ops, its tensors, and what a delegate took.

Every caller (the backend, the quantization cost model and converter checks, the per-layer and per-path
comparisons) reads ops and tensors through here, so the runtime's private op listing is called in one
place, guarded once: a runtime that does not list its ops gives `None` (coverage then says "unknown";
a command that cannot work without the ops says so in one line).

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
from typing import Any

import numpy as np

from harness.errors import HarnessError

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


def ops(interpreter: Any, needed_for: str) -> list[OpInfo]:
    """op_list, or one HarnessError saying that `needed_for` needs a runtime that lists its ops."""
    listed = op_list(interpreter)
    if listed is None:
        raise HarnessError(f"{needed_for} needs the model's op list, which this TFLite runtime does not give "
                           "(ai-edge-litert and tf.lite do)")
    return listed


def tensors(interpreter: Any) -> dict[int, TensorInfo]:
    """Every tensor of the model by index, with its shape and per-tensor quantization."""
    return {int(t["index"]): _tensor_info(t) for t in interpreter.get_tensor_details()}


def _tensor_info(t: dict[str, Any]) -> TensorInfo:
    q = t["quantization_parameters"]
    per_tensor = len(q["scales"]) == 1 and np.issubdtype(t["dtype"], np.integer)
    return TensorInfo(int(t["index"]), str(t["name"]), np.dtype(t["dtype"]).name,
                      float(q["scales"][0]) if per_tensor else None, int(q["zero_points"][0]) if per_tensor else None,
                      tuple(int(s) for s in t["shape"]))


def coverage(interpreter: Any, delegate: str | None, runtime: str) -> dict[str, Any]:
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


__all__ = ["DELEGATE_OP", "OpInfo", "TensorInfo", "coverage", "delegate_coverage", "op_list", "ops", "tensors"]
