"""Which records answer which question: latest runs, float/quantized siblings, bench series per host.

The report and the gates read the same store; picking "the" record for a question lives here once, so
a table and the gate that guards it never disagree about which run they mean. Each picker takes any
validated records and returns those of its kind, typed as that kind (harness.records.types).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, Literal, TypeVar, cast, overload

from harness.records.tool_types import (
    DoctorRecord,
    NpuCompileRecord,
    OpProfileRecord,
    PathCompareRecord,
    QuantCompareRecord,
    QuantSearchRecord,
)
from harness.records.types import ABBenchRecord, BenchRecord, EvalRecord, Json, RunRecord, ScoreRecord

FLOAT = "float32"
R = TypeVar("R", bound=RunRecord)
K = TypeVar("K", bound=Hashable)
Key = tuple[Hashable, ...]


@overload
def of_kind(records: Iterable[RunRecord], kind: Literal["eval"]) -> list[EvalRecord]: ...
@overload
def of_kind(records: Iterable[RunRecord], kind: Literal["score"]) -> list[ScoreRecord]: ...
@overload
def of_kind(records: Iterable[RunRecord], kind: Literal["bench"]) -> list[BenchRecord]: ...
@overload
def of_kind(records: Iterable[RunRecord], kind: Literal["ab_bench"]) -> list[ABBenchRecord]: ...
@overload
def of_kind(records: Iterable[RunRecord], kind: Literal["quant_compare"]) -> list[QuantCompareRecord]: ...
@overload
def of_kind(records: Iterable[RunRecord], kind: Literal["doctor"]) -> list[DoctorRecord]: ...
@overload
def of_kind(records: Iterable[RunRecord], kind: Literal["quant_search"]) -> list[QuantSearchRecord]: ...
@overload
def of_kind(records: Iterable[RunRecord], kind: Literal["path_compare"]) -> list[PathCompareRecord]: ...
@overload
def of_kind(records: Iterable[RunRecord], kind: Literal["op_profile"]) -> list[OpProfileRecord]: ...
@overload
def of_kind(records: Iterable[RunRecord], kind: Literal["npu_compile"]) -> list[NpuCompileRecord]: ...
def of_kind(records: Iterable[RunRecord], kind: str) -> list[Any]:
    """The records of one kind, typed as that kind: the one place a validated record is narrowed.

    Only records that went through `validate` belong here (every reader in harness.records returns such).
    """
    return [r for r in records if r["kind"] == kind]


def fields(record: RunRecord) -> Mapping[str, Json]:
    """The record as a plain mapping, for code that reads it whatever its kind (the store's index columns,
    an export's file name): a key its kind's type does not declare is then an ordinary `.get`."""
    return cast(Mapping[str, Json], record)



def model_name(rec: EvalRecord | BenchRecord | Mapping[str, Any]) -> str:
    return str(rec["model"]["name"] or rec.get("model_label") or "?")


def eval_key(rec: EvalRecord) -> Key:
    """One eval series: the same model, runtime, protocol and image set."""
    return (model_name(rec), rec["backend"].get("runtime"), rec.get("protocol", {}).get("name"),
            rec["dataset"].get("image_ids_sha256"))


def bench_key(rec: BenchRecord) -> Key:
    """One latency series: the same model on the same host with the same threads, delegate and runtime."""
    s = rec["settings"]
    return (model_name(rec), rec["host"]["fingerprint"], s.get("threads"), s.get("delegate"), s.get("runtime"))


def ab_key(rec: ABBenchRecord) -> tuple[Key, Key, str]:
    """One A/B question: the same candidate against the same baseline (model and settings) on one host."""
    def side(role: str) -> Key:
        sd = rec["sides"].get(role) or {}
        st = sd.get("settings", {})
        return (sd.get("label"), st.get("threads"), st.get("delegate"), st.get("runtime"))

    return (side("candidate"), side("baseline"), rec["host"]["fingerprint"])


def _order(rec: RunRecord) -> str:
    return str(rec.get("created") or "")


def series(records: Iterable[R], key: Callable[[R], K]) -> dict[K, list[R]]:
    """Records (of one kind: see of_kind) grouped by `key`, each group oldest first (stable for equal timestamps)."""
    groups: dict[K, list[R]] = defaultdict(list)
    for rec in records:
        groups[key(rec)].append(rec)
    return {k: sorted(v, key=_order) for k, v in groups.items()}


def latest_evals(records: Iterable[RunRecord]) -> list[EvalRecord]:
    return [g[-1] for g in series(of_kind(records, "eval"), eval_key).values()]


def latest_benches(records: Iterable[RunRecord]) -> list[BenchRecord]:
    return [g[-1] for g in series(of_kind(records, "bench"), bench_key).values()]


def bench_series(records: Iterable[RunRecord]) -> dict[Key, list[BenchRecord]]:
    return series(of_kind(records, "bench"), bench_key)


def ab_series(records: Iterable[RunRecord]) -> dict[tuple[Key, Key, str], list[ABBenchRecord]]:
    return series(of_kind(records, "ab_bench"), ab_key)


def search_subject(rec: QuantSearchRecord) -> str:
    """What a quant_search record searched: the model's name, else the SavedModel its plans start from
    (its last two path parts: the mirror's is mb3-centernet/raw)."""
    model = rec.get("model")
    if isinstance(model, dict) and model.get("name"):
        return str(model["name"])
    if isinstance(model, str) and model:
        return model
    for cand in rec["candidates"]:
        path = ((cand.get("plan") or {}).get("source") or {}).get("path")
        if path:
            return "/".join(str(path).replace("\\", "/").rstrip("/").split("/")[-2:])
    return "?"


def search_key(rec: QuantSearchRecord) -> Key:
    """One search series: the same model and deployment target, validated on the same images."""
    return (search_subject(rec), rec.get("target"), rec["validate"].get("image_ids_sha256"))


def latest_searches(records: Iterable[RunRecord]) -> list[QuantSearchRecord]:
    return [g[-1] for g in series(of_kind(records, "quant_search"), search_key).values()]


def precision(rec: EvalRecord | BenchRecord) -> str:
    return str(rec["model"].get("precision") or FLOAT)


def family(rec: EvalRecord) -> str | None:
    return rec["model"].get("family")


def quant_pairs(evals: Sequence[EvalRecord]) -> list[tuple[EvalRecord, EvalRecord]]:
    """(float, quantized) eval records of one family on the same images.

    Among several float siblings the one on the same runtime wins (a TFLite int8 is compared with the
    TFLite float, not the SavedModel), then the same protocol, then the newest.
    """
    pairs = []
    for q in evals:
        if precision(q) == FLOAT or family(q) is None:
            continue
        ds = q["dataset"].get("image_ids_sha256")
        floats = [f for f in evals if precision(f) == FLOAT and family(f) == family(q)
                  and f["dataset"].get("image_ids_sha256") == ds]
        if not floats:
            continue

        def rank(f: EvalRecord, q: EvalRecord = q) -> tuple[bool, bool, str]:
            return (f["backend"].get("runtime") == q["backend"].get("runtime"),
                    f.get("protocol", {}).get("name") == q.get("protocol", {}).get("name"), _order(f))

        pairs.append((max(floats, key=rank), q))
    return sorted(pairs, key=lambda p: (model_name(p[0]), model_name(p[1])))
