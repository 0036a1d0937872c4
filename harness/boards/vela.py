"""Vela, Arm's compiler for the Ethos-U NPUs: compile a .tflite for a board's NPU, and keep Vela's own estimate.

An Ethos-U runs only what Vela compiled: the NPU part of the graph becomes one `ethos-u` custom op, and
what Vela cannot place stays a TFLite op for the CPU. Vela also estimates the NPU's time (cycles at the
core clock, memory traffic included) and the SRAM/DRAM it uses; that estimate is the closest thing to a
board measurement the host can make, so it is recorded as Vela reports it (summary CSV and stdout), never
recomputed. Vela runs in a subprocess (`python -m ethosu.vela`): a crash in its native code stays there.

A target is one registry entry (`VelaTarget`): the accelerator and the system config / memory mode of
Vela's own `Arm/vela.ini` that describe the board. Another Ethos-U board is one more entry.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.common.fileio import sha256_file
from harness.errors import HarnessError

INSTALL_HINT = "pip install centernet-harness[vela]"
CASTS = frozenset({"QUANTIZE", "DEQUANTIZE"})  # I/O conversions at the graph's edges


@dataclass(frozen=True)
class VelaTarget:
    """A board's Ethos-U as Vela is told about it (`vela --help`, Vela's OPTIONS.md)."""

    name: str
    board: str
    accelerator: str  # --accelerator-config
    system_config: str  # --system-config, a section of --config
    memory_mode: str  # --memory-mode, a section of --config
    config: str = "Arm/vela.ini"  # the configuration file Vela ships
    optimise: str = "Performance"
    why: str = ""

    def options(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k not in ("name", "board", "why")}

    def argv(self) -> list[str]:
        return ["--accelerator-config", self.accelerator, "--config", self.config, "--system-config",
                self.system_config, "--memory-mode", self.memory_mode, "--optimise", self.optimise]


TARGETS: dict[str, VelaTarget] = {
    # i.MX 93: Ethos-U65 with 256 MACs/cycle at 1 GHz beside the Cortex-A55s, weights and feature maps in
    # LPDDR4, an on-chip SRAM dedicated to the NPU as its cache. Vela's own defaults for an Ethos-U65
    # (what `vela --accelerator-config ethos-u65-256 model.tflite` uses, as NXP's i.MX 93 guide runs it),
    # named here so the record says what the estimate assumed; NXP's fork of vela.ini states 384 KB of
    # dedicated SRAM for this memory mode.
    "imx93": VelaTarget("imx93", "NXP i.MX 93 (Arm Ethos-U65-256)", "ethos-u65-256", "Ethos_U65_Client_Server",
                        "Dedicated_Sram_384KB",
                        why="Vela's Ethos-U65 defaults: 1 GHz NPU clock, DRAM behind AXI1, 384 KiB dedicated SRAM"),
}


def check_target(name: str) -> VelaTarget:
    if name not in TARGETS:
        raise HarnessError(f"unknown NPU target {name!r}; use one of {', '.join(TARGETS)}")
    return TARGETS[name]


def vela_version() -> str:
    """The installed Vela's version; one line saying how to install it where it is missing."""
    from importlib.metadata import PackageNotFoundError, version
    from importlib.util import find_spec

    try:
        if find_spec("ethosu.vela") is None:
            raise ModuleNotFoundError
        return version("ethos-u-vela")
    except (ModuleNotFoundError, PackageNotFoundError):
        raise HarnessError(f"Vela (ethos-u-vela) is not installed; it compiles for the Ethos-U NPU: {INSTALL_HINT}")\
            from None


def _check_tflite(model: Path) -> None:
    try:
        with model.open("rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise HarnessError(f"cannot read {model}: {exc.strerror or exc}") from None
    if len(head) < 8 or head[4:8] != b"TFL3":
        raise HarnessError(f"{model} is not a .tflite model (no TFL3 identifier): Vela compiles TFLite flatbuffers")


def graph_ops(path: Path) -> list[tuple[int, str, str]]:
    """(index, op type or custom code, first output tensor name) of the main subgraph, read with the
    flatbuffer schema Vela ships (a compiled model's `ethos-u` op loads in no stock interpreter)."""
    from ethosu.vela.tflite.BuiltinOperator import BuiltinOperator
    from ethosu.vela.tflite.Model import Model

    names = {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}
    m = Model.GetRootAsModel(path.read_bytes(), 0)
    codes = []
    for i in range(m.OperatorCodesLength()):
        c = m.OperatorCodes(i)
        code = max(c.BuiltinCode(), c.DeprecatedBuiltinCode())  # schema 3a keeps small codes in the old field
        codes.append(c.CustomCode().decode() if c.CustomCode() else names.get(code, str(code)))
    sg = m.Subgraphs(0)
    out = []
    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        first = sg.Tensors(op.Outputs(0)).Name().decode() if op.OutputsLength() else ""
        out.append((i, codes[op.OpcodeIndex()], first))
    return out


def cpu_ops(source: Path, compiled: Path) -> list[str]:
    """The ops Vela left to the CPU, as `index:OPTYPE` of the input graph: the compiled graph's ops other than
    `ethos-u`, found in the input by the tensor they write (`?:OPTYPE` for one Vela made up)."""
    where = {name: (i, op) for i, op, name in graph_ops(source)}
    left = []
    for _, op, name in graph_ops(compiled):
        if op == "ethos-u":
            continue
        i, _ = where.get(name, ("?", op))
        left.append(f"{i}:{op}")
    return left


_PRINTED = {"cpu": re.compile(r"^CPU operators = (\d+)", re.M), "npu": re.compile(r"^NPU operators = (\d+)", re.M)}


def _summary(csv_path: Path) -> dict:
    with csv_path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if len(rows) != 1:
        raise HarnessError(f"Vela's summary {csv_path} has {len(rows)} rows, expected 1")
    return rows[0]


def _run(model: Path, target: VelaTarget, out: Path) -> tuple[str, float]:
    cmd = [sys.executable, "-m", "ethosu.vela", str(model), *target.argv(), "--verbose-cycle-estimate",
           "--output-dir", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        last = next((ln for ln in reversed((proc.stderr + proc.stdout).splitlines()) if ln.strip()), "no message")
        raise HarnessError(f"Vela could not compile {model}: {last.strip()}")
    return proc.stdout, wall


def compile_model(model: str | Path, target_name: str, out_dir: str | Path) -> dict:
    """Compile `model` for `target_name` into `out_dir`; the body of an `npu_compile` record.

    The NPU model and Vela's summary CSV appear in `out_dir` whole or not at all (built in a temporary
    folder beside them, then renamed). A model with no op on the NPU (a float model) is refused.
    """
    target = check_target(target_name)
    model = Path(model)
    if not model.is_file():
        raise HarnessError(f"no such model file: {model}")
    _check_tflite(model)
    ver = vela_version()
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise HarnessError(f"--out {out} is a file: give a directory for the NPU model")
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        return _compile(target, ver, model, out)
    except HarnessError:
        if created and not any(out.iterdir()):
            out.rmdir()  # a refused model leaves no empty folder behind
        raise


def _compile(target: VelaTarget, ver: str, model: Path, out: Path) -> dict:
    with tempfile.TemporaryDirectory(dir=out, prefix=".vela-") as tmp:
        stdout, wall = _run(model, target, Path(tmp))
        produced = Path(tmp) / f"{model.stem}_vela.tflite"
        summary = Path(tmp) / f"{model.stem}_summary_{target.system_config}.csv"
        if not produced.is_file() or not summary.is_file():
            raise HarnessError(f"Vela wrote no {produced.name} / {summary.name} for {model}")
        row = _summary(summary)
        printed = {k: int(m.group(1)) for k, rx in _PRINTED.items() if (m := rx.search(stdout))}
        left = cpu_ops(model, produced)
        n_in = len(graph_ops(model))
        if printed.get("npu", 0) == 0:
            raise HarnessError(f"{model}: Vela placed no op on the NPU (all {n_in} stay on the CPU); the Ethos-U "
                               "runs int8 and int16 models only: quantize it first (harness quantize)")
        final, final_csv = out / produced.name, out / summary.name
        os.replace(produced, final)
        os.replace(summary, final_csv)
    return _body(target, ver, model, n_in, final, final_csv, row, printed, left, wall)


def _f(row: dict, key: str) -> float:
    return float(row.get(key) or 0.0)


def _body(target: VelaTarget, ver: str, model: Path, n_in: int, npu_model: Path, csv_path: Path, row: dict,
          printed: dict, left: list[str], wall: float) -> dict:
    kib = {area: _f(row, f"{area}_memory_used") for area in ("sram", "dram", "on_chip_flash", "off_chip_flash")}
    cycles = {k.removeprefix("cycles_"): int(_f(row, k)) for k in row if k.startswith("cycles_")}
    return {
        "target": target.name,
        "board": target.board,
        "compiler": {"name": "vela", "version": ver, "options": target.options(), "why": target.why,
                     "argv": [*target.argv(), "--verbose-cycle-estimate"]},
        "model": {"path": str(model), "sha256": sha256_file(model), "bytes": model.stat().st_size, "ops": n_in},
        "output": {"model": str(npu_model), "sha256": sha256_file(npu_model), "bytes": npu_model.stat().st_size,
                   "summary_csv": str(csv_path)},
        "estimate": {"inference_ms": round(_f(row, "inference_time") * 1000, 6),
                     "inferences_per_second": round(_f(row, "inferences_per_second"), 4),
                     "core_clock_hz": _f(row, "core_clock"), "cycles": cycles, "nn_macs": int(_f(row, "nn_macs")),
                     "source": f"vela {ver}"},
        "ops": {"npu": printed.get("npu"), "cpu": printed.get("cpu"), "cpu_ops": left,
                "cpu_ops_not_casts": [o for o in left if o.split(":", 1)[1] not in CASTS],
                "counted_by": "Vela, after its own graph rewrites (its 'NPU operators' / 'CPU operators' lines)"},
        "memory": {**{f"{area}_kib": v for area, v in kib.items()},
                   "sram_bytes": round(kib["sram"] * 1024), "dram_bytes": round(kib["dram"] * 1024),
                   "weights_area": row.get("weights_storage_area"),
                   "feature_map_area": row.get("feature_map_storage_area")},
        "compile_s": round(wall, 3),
    }


def compile_record(model: str | Path, target_name: str, out_dir: str | Path) -> dict:
    """`harness compile`: the npu_compile record of one model on one target."""
    from harness.records.schema import new_record

    return new_record("npu_compile", **compile_model(model, target_name, out_dir))


__all__ = ["CASTS", "INSTALL_HINT", "TARGETS", "VelaTarget", "check_target", "compile_model", "compile_record",
           "cpu_ops", "graph_ops", "vela_version"]
