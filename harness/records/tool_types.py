"""The record kinds of the tools beside eval and bench: quantization comparisons and searches, execution paths,
the doctor, op profiles, NPU compiles and test-dev submissions (harness.records.types has the envelope and the
measuring kinds; the same conventions hold here)."""

from __future__ import annotations

from typing import TypedDict

from harness.records.types import Dataset, Json, ModelBlock, RunRecord


class _QuantModel(TypedDict, total=False):
    name: str | None
    path: str


class QuantLayer(TypedDict, total=False):
    """One op output of the quantized model against the float one (harness.analyse.quant_error.ranking.Layer)."""

    name: str
    op: str
    index: int
    share: float | None
    snr_db: float | None
    injected_snr_db: float | None
    layer_snr_db: float | None
    growth_db: float | None


class _QuantCompare(RunRecord):
    float_model: _QuantModel
    quant_model: _QuantModel
    heads: dict[str, dict[str, Json]]  # head -> cosine, mse, snr_db, max_abs_err
    layers: list[QuantLayer]


class QuantCompareRecord(_QuantCompare, total=False):
    """`harness compare quant FLOAT QUANT`: per-head and per-layer quantization error."""

    first_bad_layer: str | None
    threshold: dict[str, Json]
    share_by_op: dict[str, dict[str, float]]
    growth_ranking: list[str]
    images: dict[str, Json]


class DoctorFinding(TypedDict, total=False):
    id: str
    ap_before: float | None
    ap_after: float | None
    evidence: str
    fix: str


class _Doctor(RunRecord):
    dataset: Dataset
    findings: list[DoctorFinding]


class DoctorRecord(_Doctor, total=False):
    """`harness doctor`: why a mAP may not match a published one, ranked by AP gain."""

    model: ModelBlock
    results_file: str


SearchCandidate = dict[str, Json]  # harness.analyse.precision.trials' row: name, status, ap, p50_ms, plan, ...


class _QuantSearch(RunRecord):
    validate: dict[str, Json]
    calibration: dict[str, Json]
    float: dict[str, Json]
    candidates: list[SearchCandidate]
    references: dict[str, str | None]  # float32 / int8 / int16x8 -> the candidate that is that reference


class QuantSearchRecord(_QuantSearch, total=False):
    """`harness quantize --max-drop`: the precision plans tried and the one chosen."""

    model: ModelBlock | str
    target: str
    max_drop: float
    chosen: str | None
    closest: str | None
    output: dict[str, Json]
    search: dict[str, Json]
    cost_source: str  # where the cost figures come from: "measured ...", "vela 5.2.0 ...", "modelled"


class _PathCompare(RunRecord):
    model: dict[str, Json]
    paths: list[dict[str, Json]]  # side A, side B: each an eval of one path
    heads: dict[str, Json]
    ap: dict[str, Json]


class PathCompareRecord(_PathCompare, total=False):
    """`harness compare paths`: one .tflite on two execution paths (harness.analyse.execution_paths.compare)."""

    images: dict[str, Json]
    tensors: dict[str, Json] | None
    method: dict[str, str]


class _OpProfile(RunRecord):
    model: dict[str, Json]
    source: dict[str, Json]
    profiles: list[Json]


class OpProfileRecord(_OpProfile, total=False):
    """A benchmark_model op-profile log read into a record (harness.records.op_profile)."""

    delegation: list[dict[str, Json]]
    memory: dict[str, Json] | None


class _NpuCompile(RunRecord):
    compiler: dict[str, Json]
    model: dict[str, Json]
    output: dict[str, Json]
    estimate: dict[str, Json]
    ops: dict[str, Json]
    memory: dict[str, Json]


class NpuCompileRecord(_NpuCompile, total=False):
    """`harness compile`: an NPU compiler's output and its own estimate (harness.boards.vela)."""

    target: str


class _Submission(RunRecord):
    model: dict[str, Json]
    dataset: Dataset
    submission: dict[str, Json]


class SubmissionRecord(_Submission, total=False):
    """`harness eval --split test-dev2017`: the zipped results file for the COCO server and its checks; no AP
    (harness.scoring.testdev)."""

    protocol: dict[str, Json]
    backend: dict[str, Json]
    timing: dict[str, Json]
    resumed_images: int


__all__ = ["DoctorRecord", "NpuCompileRecord", "OpProfileRecord", "PathCompareRecord", "QuantCompareRecord",
           "QuantLayer", "QuantSearchRecord", "SubmissionRecord"]
