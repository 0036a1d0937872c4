"""What "cheap" means for a deployment target: the cost the search minimizes, and which plans a target can run.

`cpu` is measured: the model-only p50 on this host with the bench's stopping rule (the search passes it
in), and float32 may rightly win there. The NPU targets are modelled, not measured, because no board is
attached: each op of the converted .tflite runs on the NPU when its type is in the target's list and its
activations are a precision the NPU takes, else on the CPU. The figure is an estimate in milliseconds:

    sum over NPU ops  MACs x precision factor / NPU rate
  + sum over CPU ops  MACs / CPU rate
  + per tensor that crosses NPU <-> CPU: a fixed hand-over cost + its bytes / copy bandwidth

Assumptions, stated so they can be argued with (every one is a constant of NpuTarget below):
- MACs: CONV_2D out_h*out_w*c_out*k_h*k_w*c_in, DEPTHWISE_CONV_2D out elements*k_h*k_w,
  FULLY_CONNECTED out elements*in features, TRANSPOSE_CONV in elements*k_h*k_w*c_out; every other op one
  MAC per output element.
- imx8mp-vx (VeriSilicon VIP8000 through the VX delegate, 2.3 TOPS nominal): int8 only; int16 activations
  are taken to fall back to the CPU. Effective 300 GMAC/s int8 (about a quarter of nominal, as small
  mobile convolutions get). CPU: 4x Cortex-A53, 8 GMAC/s float. Hand-over 0.3 ms per tensor, 1 GB/s.
- ethos-u (Ethos-U65-512 as Vela sees it): int8 and int16 activations (16x8), int16 at a quarter of the
  int8 rate; effective 200 GMAC/s int8. CPU: Cortex-M/A-class host, 2 GMAC/s float. Hand-over 0.5 ms,
  0.5 GB/s.
- QUANTIZE and DEQUANTIZE ops run on the CPU but do not count against the budget of ops left to the
  CPU (at the graph's edges they are the I/O conversion; inside it, the crossings they mark are charged);
  every other CPU op counts.
The op lists are the common subset of NXP's VX delegate and Arm's Vela supported-operator tables for
the ops this family of models uses; an op not listed is assumed to fall back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness.errors import HarnessError

_CASTS = frozenset({"QUANTIZE", "DEQUANTIZE"})
_COMMON_NPU_OPS = frozenset({
    "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "ADD", "SUB", "MUL", "LOGISTIC",
    "HARD_SWISH", "RELU", "RELU6", "RELU_N1_TO_1", "TANH", "AVERAGE_POOL_2D", "MAX_POOL_2D", "MEAN", "RESHAPE",
    "CONCATENATION", "PAD", "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "SOFTMAX", "STRIDED_SLICE", "SPLIT",
    "MAXIMUM", "MINIMUM", "TRANSPOSE",
})


@dataclass(frozen=True)
class OpInfo:
    """One op of a .tflite: its type, activation precision, MACs and the activations it reads and writes."""

    index: int
    op: str
    precision: str  # "int8" | "int16" | "float32" (of its output activation)
    macs: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    output_bytes: int


@dataclass(frozen=True)
class NpuTarget:
    """A modelled NPU: the ops and activation precisions it runs, and how fast (see the module text)."""

    name: str
    description: str
    ops: frozenset[str]
    precisions: dict[str, float]  # activation precision -> cost factor per MAC against int8
    npu_gmacs: float
    cpu_gmacs: float
    handover_ms: float
    copy_gb_s: float
    cpu_op_budget: int = 4  # default budget of ops left to the CPU (casts at the edges not counted)

    def place(self, op: OpInfo) -> str:
        return "npu" if op.op in self.ops and op.precision in self.precisions else "cpu"


TARGETS: dict[str, NpuTarget | None] = {
    "cpu": None,  # measured on this host
    "imx8mp-vx": NpuTarget("imx8mp-vx", "i.MX 8M Plus NPU (VeriSilicon VIP8000, VX delegate): int8 only",
                           _COMMON_NPU_OPS, {"int8": 1.0}, 300.0, 8.0, 0.3, 1.0),
    "ethos-u": NpuTarget("ethos-u", "Arm Ethos-U65-512 (Vela): int8, and 16x8 at a quarter of the rate",
                         _COMMON_NPU_OPS, {"int8": 1.0, "int16": 4.0}, 200.0, 2.0, 0.5, 0.5),
}


def check_target(name: str) -> NpuTarget | None:
    if name not in TARGETS:
        raise HarnessError(f"unknown target {name!r}; use one of {', '.join(TARGETS)}")
    return TARGETS[name]


def _macs(op: str, out_shape: tuple[int, ...], in_shape: tuple[int, ...], w_shape: tuple[int, ...] | None) -> int:
    out = int(np.prod(out_shape)) if out_shape else 1
    if w_shape is None or len(w_shape) < 2:
        return out
    if op == "CONV_2D":  # weights [c_out, k_h, k_w, c_in]
        return out * int(np.prod(w_shape[1:]))
    if op == "DEPTHWISE_CONV_2D":  # weights [1, k_h, k_w, c_out]
        return out * int(w_shape[1] * w_shape[2])
    if op == "FULLY_CONNECTED":  # weights [c_out, c_in]
        return out * int(w_shape[-1])
    if op == "TRANSPOSE_CONV":  # weights [c_out, k_h, k_w, c_in]
        return int(np.prod(in_shape)) * int(w_shape[0] * w_shape[1] * w_shape[2])
    return out


def _precision(dtype: object) -> str:
    name = np.dtype(dtype).name
    return {"int8": "int8", "uint8": "int8", "int16": "int16"}.get(name, "float32")


def graph_ops(model_path: str | Path) -> list[OpInfo]:
    """The ops of a .tflite with what the cost model needs, read by the harness's TFLite runtime with the default
    delegates off (tf.lite's own interpreter cannot prepare the int8->int16 QUANTIZE of mixed models)."""
    from harness.models.backends import BackendOptions
    from harness.models.backends.tflite import open_tflite

    backend = open_tflite(model_path, BackendOptions(keep_tensors=True))
    t = backend.tensors()
    produced: set[int] = set()
    ops = []
    for op in backend.ops():
        ins, outs = op.inputs, op.outputs
        if not outs:
            continue
        weights = [i for i in ins if i not in produced and len(t[i].shape) >= 2 and i != ins[0]]
        w_shape = t[weights[0]].shape if weights else None
        in_shape = t[ins[0]].shape if ins else ()
        out = t[outs[0]]
        # A conv's precision is that of its input activation (int8 in a 16x8 model writes int16 outputs).
        ops.append(OpInfo(op.index, op.op, _precision(out.dtype), _macs(op.op, out.shape, in_shape, w_shape),
                          ins, outs, int(np.prod(out.shape)) * np.dtype(out.dtype).itemsize))
        produced.update(outs)
    return ops


@dataclass
class Price:
    """A plan's figure on a target, and whether the target can run it at all."""

    cost: float | None
    eligible: bool
    reason: str = ""
    detail: dict = field(default_factory=dict)


def npu_price(target: NpuTarget, ops: list[OpInfo], cpu_op_budget: int | None = None) -> Price:
    """The modelled cost of one converted model on `target` (see the module text)."""
    budget = target.cpu_op_budget if cpu_op_budget is None else cpu_op_budget
    place = {op.index: target.place(op) for op in ops}
    producer = {t: op for op in ops for t in op.outputs}
    ms = {"npu": 0.0, "cpu": 0.0, "handover": 0.0}
    cpu_ops: list[str] = []
    crossings = 0
    for op in ops:
        if place[op.index] == "npu":
            ms["npu"] += op.macs * target.precisions[op.precision] / (target.npu_gmacs * 1e6)
        else:
            ms["cpu"] += op.macs / (target.cpu_gmacs * 1e6)
            if op.op not in _CASTS:
                cpu_ops.append(op.op)
        for i in op.inputs:
            src = producer.get(i)
            if src is not None and place[src.index] != place[op.index]:
                crossings += 1
                ms["handover"] += target.handover_ms + src.output_bytes / (target.copy_gb_s * 1e6)
    cost = round(sum(ms.values()), 3)
    npu_macs = sum(op.macs for op in ops if place[op.index] == "npu")
    detail = {"model": target.name, "ms": {k: round(v, 3) for k, v in ms.items()}, "cpu_ops": len(cpu_ops),
              "cpu_op_types": sorted(set(cpu_ops)), "crossings": crossings, "cpu_op_budget": budget,
              "npu_mac_share": round(npu_macs / max(1, sum(op.macs for op in ops)), 4)}
    if len(cpu_ops) > budget:
        return Price(cost, False, f"{len(cpu_ops)} ops left to the CPU ({', '.join(sorted(set(cpu_ops)))}) "
                                  f"> budget {budget} on {target.name}", detail)
    return Price(cost, True, "", detail)


def price(target_name: str, model_path: str | Path, *, p50_ms: Callable[[], float | None],
          cpu_op_budget: int | None = None) -> Price:
    """The figure the search minimizes for one built model: measured p50 (cpu) or the NPU model's."""
    target = check_target(target_name)
    if target is None:
        p50 = p50_ms()
        return Price(p50, p50 is not None, "" if p50 is not None else "latency not measured",
                     {"model": "cpu: model-only p50 on this host, ms"})
    return npu_price(target, graph_ops(model_path), cpu_op_budget)


__all__ = ["TARGETS", "NpuTarget", "OpInfo", "Price", "check_target", "graph_ops", "npu_price", "price"]
