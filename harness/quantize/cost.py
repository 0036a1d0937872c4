"""What "cheap" means for a deployment target: the cost the search minimizes, and which plans a target can run.

Three kinds of target, each figure saying where it comes from (`cost_source`):
- `cpu` is measured: the model-only p50 on this host with the bench's stopping rule (the search passes it
  in), and float32 may rightly win there.
- `imx93` (Ethos-U65-256) is estimated by Vela, Arm's compiler for the Ethos-U, which is also what the board
  runs (harness.boards.vela): each candidate is compiled and its cost is Vela's estimated inference time.
  A model Vela places nothing of on the NPU (float32) cannot run there. Vela estimates the NPU only: the
  ops it leaves to the CPU are reported from its output, count against the target's budget of CPU ops, and,
  other than the QUANTIZE/DEQUANTIZE at the edges, are charged at a modelled CPU rate (VELA_CPU_GMACS).
- `imx8mp-vx` is modelled, because no public estimator exists for the VX delegate and no board is attached:
  each op of the converted .tflite runs on the NPU when its type is in the target's list and its activations
  are a precision the NPU takes, else on the CPU. The figure is an estimate in milliseconds:

    sum over NPU ops  MACs x precision factor / NPU rate
  + sum over CPU ops  MACs / CPU rate
  + per tensor that crosses NPU <-> CPU: a fixed hand-over cost + its bytes / copy bandwidth

Assumptions of the modelled target, stated so they can be argued with (every one is a constant of NpuTarget):
- MACs: CONV_2D out_h*out_w*c_out*k_h*k_w*c_in, DEPTHWISE_CONV_2D out elements*k_h*k_w,
  FULLY_CONNECTED out elements*in features, TRANSPOSE_CONV in elements*k_h*k_w*c_out; every other op one
  MAC per output element.
- imx8mp-vx (VeriSilicon VIP8000 through the VX delegate, 2.3 TOPS nominal): int8 only; int16 activations
  are taken to fall back to the CPU. Effective 300 GMAC/s int8 (about a quarter of nominal, as small
  mobile convolutions get). CPU: 4x Cortex-A53, 8 GMAC/s float. Hand-over 0.3 ms per tensor, 1 GB/s.
- QUANTIZE and DEQUANTIZE ops run on the CPU but do not count against the budget of ops left to the
  CPU (at the graph's edges they are the I/O conversion; inside it, the crossings they mark are charged);
  every other CPU op counts.
The op list is the common subset of NXP's VX delegate and Arm's Vela supported-operator tables for the
ops this family of models uses; an op not listed is assumed to fall back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from harness.boards import vela
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


MODELLED: dict[str, NpuTarget] = {
    "imx8mp-vx": NpuTarget("imx8mp-vx", "i.MX 8M Plus NPU (VeriSilicon VIP8000, VX delegate): int8 only",
                           _COMMON_NPU_OPS, {"int8": 1.0}, 300.0, 8.0, 0.3, 1.0),
}
# Every target the search takes, and how its figure is had.
TARGETS: dict[str, str] = {"cpu": "measured", **dict.fromkeys(MODELLED, "modelled"),
                           **dict.fromkeys(vela.TARGETS, "vela")}
VELA_CPU_GMACS = 2.0  # modelled: an op Vela leaves to the CPU, float on the i.MX 93's Cortex-A55 pair
VELA_CPU_OP_BUDGET = 4  # ops other than the edge casts that may stay on the CPU (as the modelled targets)


def check_target(name: str) -> str:
    """How the target's figure is had ("measured" | "modelled" | "vela"); a Vela target needs Vela installed."""
    if name not in TARGETS:
        raise HarnessError(f"unknown target {name!r}; use one of {', '.join(TARGETS)}")
    if TARGETS[name] == "vela":
        vela.vela_version()
    return TARGETS[name]


def cost_source(name: str) -> str:
    """What a target's cost is, for every place it is shown: measured, modelled, or Vela's estimate."""
    kind = check_target(name)
    if kind == "vela":
        return f"vela {vela.vela_version()}"
    return "measured p50 on this host" if kind == "measured" else "modelled"


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


def _precision(dtype: npt.DTypeLike) -> str:
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
    detail = {"model": target.name, "cost_source": "modelled", "ms": {k: round(v, 3) for k, v in ms.items()},
              "cpu_ops": len(cpu_ops), "cpu_op_types": sorted(set(cpu_ops)), "crossings": crossings,
              "cpu_op_budget": budget, "npu_mac_share": round(npu_macs / max(1, sum(op.macs for op in ops)), 4)}
    if len(cpu_ops) > budget:
        return Price(cost, False, f"{len(cpu_ops)} ops left to the CPU ({', '.join(sorted(set(cpu_ops)))}) "
                                  f"> budget {budget} on {target.name}", detail)
    return Price(cost, True, "", detail)


def vela_price(target_name: str, model_path: str | Path, out_dir: str | Path,
               cpu_op_budget: int | None = None) -> Price:
    """Vela's estimate of one converted model on a Vela target (see the module text); the NPU model stays in
    `out_dir`."""
    vela.check_target(target_name)
    budget = VELA_CPU_OP_BUDGET if cpu_op_budget is None else cpu_op_budget
    source = f"vela {vela.vela_version()}"
    try:
        body = vela.compile_model(model_path, target_name, out_dir)
    except HarnessError as exc:
        return Price(None, False, f"cannot run on the NPU of {target_name}: {exc}",
                     {"model": source, "cost_source": source, "cpu_op_budget": budget})
    left = body["ops"]["cpu_ops_not_casts"]
    at = {int(o.split(":", 1)[0]) for o in left if not o.startswith("?")}
    cpu_ms = sum(op.macs for op in graph_ops(model_path) if op.index in at) / (VELA_CPU_GMACS * 1e6) if at else 0.0
    npu_ms = body["estimate"]["inference_ms"]
    if cpu_ms:
        source += " + modelled CPU ops"
    types = sorted({o.split(":", 1)[1] for o in left})
    opts = body["compiler"]["options"]
    detail = {"model": f"{source}: {opts['accelerator']}, {opts['system_config']}, {opts['memory_mode']}",
              "cost_source": source, "ms": {"npu": round(npu_ms, 3), "cpu_modelled": round(cpu_ms, 3)},
              "npu_ops": body["ops"]["npu"], "cpu_ops": len(left), "cpu_op_list": body["ops"]["cpu_ops"],
              "cpu_op_types": types, "cpu_op_budget": budget, "sram_kib": body["memory"]["sram_kib"],
              "dram_kib": body["memory"]["dram_kib"], "npu_model": body["output"]["model"]}
    cost = round(npu_ms + cpu_ms, 6)  # Vela's figure is cycles / clock: kept whole
    if len(left) > budget:
        return Price(cost, False, f"Vela left {len(left)} ops to the CPU ({', '.join(types)}) > budget {budget} "
                                  f"on {target_name}", detail)
    return Price(cost, True, "", detail)


def price(target_name: str, model_path: str | Path, *, p50_ms: Callable[[], float | None],
          cpu_op_budget: int | None = None, out_dir: str | Path | None = None) -> Price:
    """The figure the search minimizes for one built model: measured p50 (cpu), Vela's estimate (an Ethos-U
    board; the NPU model goes to `out_dir`, a temporary folder by default) or the modelled NPU's."""
    kind = check_target(target_name)
    if kind == "measured":
        p50 = p50_ms()
        return Price(p50, p50 is not None, "" if p50 is not None else "latency not measured",
                     {"model": "cpu: model-only p50 on this host, ms", "cost_source": "measured p50 on this host"})
    if kind == "vela":
        if out_dir is not None:
            return vela_price(target_name, model_path, out_dir, cpu_op_budget)
        import tempfile

        with tempfile.TemporaryDirectory(prefix="harness-vela-") as tmp:
            p = vela_price(target_name, model_path, tmp, cpu_op_budget)
            p.detail.pop("npu_model", None)  # gone with the folder
            return p
    return npu_price(MODELLED[target_name], graph_ops(model_path), cpu_op_budget)


__all__ = ["MODELLED", "TARGETS", "VELA_CPU_GMACS", "NpuTarget", "OpInfo", "Price", "check_target", "cost_source",
           "graph_ops", "npu_price", "price", "vela_price"]
