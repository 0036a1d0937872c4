"""Reading run records back: every command that takes a record reads it here, validated and upgraded.

A record read any other way (a bare json.loads) would skip the schema check and the v1 -> v2 upgrade,
and a file that is not a record would fail later with a KeyError instead of one line naming the file.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, overload

from harness.errors import HarnessError
from harness.models.zoo import ModelCard
from harness.records.schema import SCHEMA, digest, read_record_file
from harness.records.types import BenchRecord, EvalRecord, ModelBlock, RunRecord

# What a record of each kind is called in an error, and the command that writes it.
_WRITTEN_BY = {
    "eval": "an eval record (harness eval --json)",
    "bench": "a bench run record (harness bench --json)",
    "ab_bench": "an A/B bench record (harness bench CANDIDATE --baseline BASELINE --json)",
    "score": "a score record (harness eval --results --json)",
    "quant_compare": "a quant_compare record (harness compare quant --json)",
    "quantize": "a quantize record (harness quantize writes MODEL.tflite.json)",
}


@overload
def read_record(path: str | Path, kind: Literal["eval"]) -> EvalRecord: ...
@overload
def read_record(path: str | Path, kind: Literal["bench"]) -> BenchRecord: ...
@overload
def read_record(path: str | Path, kind: str | None = None) -> RunRecord: ...
def read_record(path: str | Path, kind: str | None = None) -> RunRecord:
    """The one run record in a file, validated (and upgraded); with `kind`, it must be of that kind."""
    records = read_record_file(path)
    if len(records) != 1:
        raise HarnessError(f"{path} holds {len(records)} run records; expected one")
    record = records[0]
    if kind is not None and record["kind"] != kind:
        raise HarnessError(f"{path} is not {_WRITTEN_BY.get(kind, f'a {kind} record')}")
    return record


def collect(paths: Sequence[str | Path]) -> list[RunRecord]:
    """Records from files and directories (every *.json under a directory that is a run record)."""
    out: list[RunRecord] = []
    for p in map(Path, paths):
        if p.is_dir():
            for f in sorted(p.rglob("*.json")):
                if _looks_like_record(f):
                    out.extend(read_record_file(f))
        elif p.exists():
            out.extend(read_record_file(p))
        else:
            raise HarnessError(f"no such record file or directory: {p}")
    return out


def _warn(line: str) -> None:
    print(f"harness: warning: {line}", file=sys.stderr)


def _looks_like_record(path: Path) -> bool:
    """Directories also hold detections and other JSON; only files that open like a record count."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    return SCHEMA.encode() in head


def load_records(paths: Sequence[str | Path], store: str | Path | None = None,
                 warn: Callable[[str], None] | None = None) -> list[RunRecord]:
    """Records from a store and/or record files (report, check); none at all is an input error.

    A record both in the store and in a file counts once. A store row that cannot be read is left out and
    `warn` (default: a `harness: warning:` line on stderr) is told which, so one bad row never stops a report.
    """
    records: list[RunRecord] = []
    if store:
        from harness.records.store import RecordStore

        with RecordStore(store, create=False) as s:
            records.extend(s.records())
            for line in s.skipped:
                (warn or _warn)(line)
    records.extend(collect(paths))
    if not records:
        raise HarnessError("no run records: give record files / directories, or --store FILE")
    return list({digest(r): r for r in records}.values())


def card_from_record(model: ModelBlock) -> ModelCard:
    """The model card a record's `model` block was written from (ModelCard.to_dict read back).

    merge scores the shards of one run again and compares with the baseline the shards carried: the
    card in their records, which need not be in this harness's zoo (a model path with --like).
    """
    from harness.models.preprocess import Preprocess
    from harness.models.zoo import Baseline, Output, Protocol, Source

    def protocol(p: dict) -> Protocol:
        kw = _known(Protocol, p)
        kw["preprocess"] = Preprocess.from_dict(p["preprocess"]) if p.get("preprocess") else None
        return Protocol(**kw)

    try:
        fields = _known(ModelCard, model)
        fields["source"] = Source(**_known(Source, model["source"]))
        # Before schema 3 the input was {height, width, dtype, resize}: Preprocess's defaults are the rest.
        fields["input"] = Preprocess.from_dict(model["input"])
        fields["outputs"] = {head: Output(tuple(o.get("names") or ()),
                                          tuple(o["shape"]) if o.get("shape") is not None else None,
                                          o.get("position"))
                             for head, o in model["outputs"].items()}
        fields["protocols"] = {name: protocol(p) for name, p in model["protocols"].items()}
        baseline = model.get("baseline")
        fields["baseline"] = Baseline(**_known(Baseline, baseline)) if baseline else None
        return ModelCard(**fields)
    except (KeyError, TypeError, AttributeError) as exc:
        raise HarnessError(f"the record's model block is not a model card ({exc.__class__.__name__}: {exc})") from None


def _known(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of `data` that are fields of dataclass `cls` (a newer record may carry more)."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in data.items() if k in names}
