"""The run record's types: the envelope every record has, and one TypedDict per kind that readers use.

A record that passed `harness.records.schema.validate` has the envelope's required keys and, per kind,
the keys in REQUIRED and the values in SHAPES: those are required keys here (readers index them), every
other key is optional (readers `.get` it). Nothing here runs at read time; the JSON on disk
is what the writers make, and these types describe it for the type checker (`nox -s lint`);
harness.records.selection.of_kind narrows validated records to a kind's type.

Required and optional keys are split the portable way (a total base class, a `total=False` subclass), since
the board side runs Pythons without `typing.Required`. A key that only some kinds carry is declared on those
kinds, never on the envelope: TypedDict forbids retyping a key in a subclass.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

Json = Any  # a JSON value whose shape no reader relies on


class _Host(TypedDict):
    fingerprint: str


class HostInfo(_Host, total=False):
    """harness.records.host.describe(): the machine a measurement came from."""

    hostname: str
    cpu_model: str | None
    machine: str
    cores: int | None
    affinity: list[int] | None
    memory_bytes: int | None
    os: str
    os_release: str | None
    kernel: str
    python: str
    board: str | None
    cpufreq: dict[str, Json]
    temperatures_c: dict[str, float]


class _Model(TypedDict):
    name: str


class ModelBlock(_Model, total=False):
    """A model card as ModelCard.to_dict writes it (eval and bench require `name`)."""

    family: str | None
    precision: str
    source: dict[str, Json]
    input: dict[str, Json]
    outputs: dict[str, dict[str, Json]]
    protocols: dict[str, dict[str, Json]]
    baseline: Baseline | None
    decoder: str


class Baseline(TypedDict, total=False):
    """A published number and where it comes from."""

    ap: float
    split: str
    images: int | None
    protocol: str
    source: str
    note: str
    quote: str


class Dataset(TypedDict, total=False):
    """harness.scoring.coco.CocoGroundTruth.describe: the images and annotations a run saw."""

    split: str | None
    annotations: str
    annotation_sha256: str
    images_dir: str | None
    image_count: int
    image_ids_sha256: str
    annotation_count: int


class Interval(TypedDict, total=False):
    """A bootstrap interval of one statistic (harness.scoring.intervals)."""

    lo: float | None
    hi: float | None
    level: float
    resamples: int


class _Results(TypedDict):
    stats: dict[str, float]  # COCO's 12 stats, fractions (AP -1 where undefined); SHAPES guarantees AP


class Results(_Results, total=False):
    per_class: dict[str, dict[str, Json]]
    engine: str
    image_count: int
    detection_count: int
    interval: dict[str, Interval]
    errors: dict[str, Json]  # schema 4: TIDE decomposition per size (harness.scoring.errors.decompose)


class Comparison(TypedDict, total=False):
    """The eval's comparison with the card's published baseline (harness.scoring.baseline.compare)."""

    baseline: Baseline | None
    like_for_like: bool
    reasons: list[str]
    interval_verdict: dict[str, Json] | None


class _Spread(TypedDict, total=False):
    count: int
    p90_s: float
    p99_s: float
    p10_s: float
    p25_s: float
    p75_s: float
    mean_s: float
    std_s: float
    min_s: float
    max_s: float
    total_s: float


class LatencyStats(_Spread, total=False):
    """harness.measure.profiler.summarize of raw samples (seconds); only `count` when there were none."""

    p50_s: float


class PhaseStats(_Spread):
    """A bench phase's stats: SHAPES guarantees the p50."""

    p50_s: float


class Phase(TypedDict):
    """One timed phase of a bench: its stats and every raw sample."""

    stats: PhaseStats
    samples_s: list[float]


PhaseName = Literal["model_only", "end_to_end"]


class Phases(TypedDict):
    first_inference_s: float
    model_only: Phase
    end_to_end: Phase


class BenchSettings(TypedDict, total=False):
    threads: int | None
    affinity: list[int] | None
    delegate: str | None
    delegate_options: dict[str, str]
    runtime: str | None
    model_sha256: str | None
    warmup: int


class Protocol(TypedDict, total=False):
    name: str
    preprocess: dict[str, Json]
    decoder: str | None
    decoder_settings: dict[str, Json]


class _Envelope(TypedDict):
    schema: str
    schema_version: int
    kind: str
    host: HostInfo


class RunRecord(_Envelope, total=False):
    """What every record has (schema.new_record); a kind this harness does not know is read as only this."""

    created: str
    harness: str
    command: list[str]
    versions: dict[str, str]
    provenance: dict[str, Json]  # harness.records.provenance.describe: commit, branch, CI run


class _Eval(RunRecord):
    model: ModelBlock
    dataset: Dataset
    results: Results
    backend: dict[str, Json]


class EvalRecord(_Eval, total=False):
    """`harness eval`: one model over a COCO image set (harness.measure.evaluate.eval_record)."""

    model_label: str
    protocol: Protocol
    comparison: Comparison
    timing: dict[str, Json]
    detections_file: str
    detections_sha256: str
    run_key: dict[str, Json]
    resumed_images: int
    shard: dict[str, Json]


class _Score(RunRecord):
    dataset: Dataset
    results: Results


class ScoreRecord(_Score, total=False):
    """`harness eval --results`: a results file scored against ground truth."""

    results_file: str


class _Bench(RunRecord):
    model: ModelBlock
    backend: dict[str, Json]
    settings: BenchSettings
    phases: Phases


class BenchRecord(_Bench, total=False):
    """`harness bench`: model-only and end-to-end latency with raw samples (harness.measure.benchmark)."""

    model_label: str
    protocol: Protocol
    peak_rss_bytes: int | None


class ABSide(TypedDict, total=False):
    label: str
    settings: BenchSettings
    blocks_s: list[list[float]]
    samples_s: list[float]
    stats: LatencyStats


class Ratio(TypedDict, total=False):
    """One side's p50 over another's, with its interval (harness.measure.ab.ratio_interval)."""

    ratio: float
    lo: float
    hi: float
    level: float
    blocks: int
    per_block: list[float]
    verdict: str


class _ABBench(RunRecord):
    design: dict[str, Json]
    sides: dict[str, ABSide]  # candidate / baseline / reference
    ratios: dict[str, Ratio]  # "candidate/baseline", ...


class ABBenchRecord(_ABBench, total=False):
    """`harness bench CANDIDATE --baseline ...`: interleaved A/B latency."""

    input: dict[str, Json]
    affinity: list[int] | None


__all__ = ["ABBenchRecord", "BenchRecord", "Dataset", "EvalRecord", "HostInfo", "Json", "ModelBlock", "PhaseName",
           "RunRecord", "ScoreRecord"]
