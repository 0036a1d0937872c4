"""Sharded eval: `--shard i/N` takes a deterministic share of the images; `eval --merge` puts the shares back.

The scale-out engine is the CI system people already run (a matrix of N jobs), not a scheduler of our
own. Shard i of N takes every N-th image of the run's id-ordered list, starting at the i-th, so shards
get a like mix of images. Merging interleaves the shards' images back into that order and lays each
image's detections out as the single run would have: the merged list is the single run's list, entry for
entry, and so are the scores.

`--shard auto` reads the shard from the job's environment: a Kubernetes Indexed Job's
JOB_COMPLETION_INDEX (from 0; the count from JOB_COMPLETIONS, which the Job's env must set, or given as
`auto/N`) or GitLab's `parallel:` CI_NODE_INDEX / CI_NODE_TOTAL (from 1). GitHub Actions sets no such
variables: a matrix passes its values on the command line (`--shard ${{ matrix.shard }}/3`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

from harness.common.fileio import sha256_file
from harness.errors import HarnessError
from harness.measure.checkpoint import image_ids_sha256, key_difference
from harness.records.selection import fields as record_fields
from harness.records.types import EvalRecord

T = TypeVar("T")
_SHARD_FIELDS = ("shard", "image_ids_sha256")  # the parts of a run key that differ between shards


@dataclass(frozen=True)
class Shard:
    """Shard `index` (counted from 1) of `count`."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str, environ: Mapping[str, str] | None = None) -> Shard:
        """'2/3' -> Shard(2, 3); 'auto' or 'auto/N' -> from `environ` (default os.environ); a one-line
        error for anything else."""
        head, sep, tail = text.partition("/")
        if head == AUTO:
            return from_environment(_count(tail, text) if sep else None, environ)
        try:
            index, count = int(head), int(tail)
        except ValueError:
            index = count = 0
        if not sep or count < 1 or not 1 <= index <= count:
            raise HarnessError(f"--shard wants i/N with 1 <= i <= N (e.g. 1/3), got {text!r}")
        return cls(index, count)

    def select(self, items: Sequence[T]) -> list[T]:
        """This shard's share: items index-1, index-1+count, ... (every image lands in exactly one shard)."""
        return list(items[self.index - 1 :: self.count])

    @property
    def suffix(self) -> str:
        """Added to output names so that shards written to one directory never collide."""
        return f".shard-{self.index}-of-{self.count}"

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


AUTO = "auto"
K8S_INDEX, K8S_COUNT = "JOB_COMPLETION_INDEX", "JOB_COMPLETIONS"
GITLAB_INDEX, GITLAB_COUNT = "CI_NODE_INDEX", "CI_NODE_TOTAL"
_NOT_FOUND = (f"--shard auto found no shard in the environment: it reads {K8S_INDEX} (Kubernetes Indexed Job, "
              f"with {K8S_COUNT} or --shard auto/N) and {GITLAB_INDEX}/{GITLAB_COUNT} (GitLab parallel:); "
              "elsewhere give it as --shard I/N (GitHub: --shard ${{ matrix.shard }}/N)")


def _count(text: str, whole: str) -> int:
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise HarnessError(f"--shard auto/N wants a count N >= 1, got {whole!r}")
    return count


def _int_env(env: Mapping[str, str], name: str) -> int:
    value = env[name]
    try:
        return int(value)
    except ValueError:
        raise HarnessError(f"--shard auto: ${name} is {value!r}, not an integer") from None


def from_environment(count: int | None = None, environ: Mapping[str, str] | None = None) -> Shard:
    """This job's shard, read from the CI system's variables; `count` is the N of `--shard auto/N`.

    Kubernetes counts completions from 0, GitLab nodes from 1; a Shard counts from 1. An environment
    that names two systems, or a count that disagrees with the given one, is refused rather than guessed.
    """
    import os

    env = os.environ if environ is None else environ
    found: list[tuple[str, int, int | None]] = []  # (where, index from 1, count or None)
    if env.get(K8S_INDEX, "") != "":
        found.append((f"${K8S_INDEX}", _int_env(env, K8S_INDEX) + 1,
                      _int_env(env, K8S_COUNT) if env.get(K8S_COUNT) else None))
    if env.get(GITLAB_INDEX, "") != "":
        if not env.get(GITLAB_COUNT):
            raise HarnessError(f"--shard auto: ${GITLAB_INDEX} is set but ${GITLAB_COUNT} is not")
        found.append((f"${GITLAB_INDEX}/${GITLAB_COUNT}", _int_env(env, GITLAB_INDEX), _int_env(env, GITLAB_COUNT)))
    if not found:
        raise HarnessError(_NOT_FOUND)
    if len(found) > 1:
        raise HarnessError(f"--shard auto: both {found[0][0]} and {found[1][0]} are set; say which with --shard I/N")
    where, index, env_count = found[0]
    if count is not None and env_count is not None and count != env_count:
        raise HarnessError(f"--shard auto/{count} disagrees with {where}, which says {env_count} shards")
    count = count if count is not None else env_count
    if count is None:
        raise HarnessError(f"--shard auto: {where} gives the index but nothing gives the count: set ${K8S_COUNT} "
                           "in the Job's env (as spec.completions) or give --shard auto/N")
    if not 1 <= index <= count:
        raise HarnessError(f"--shard auto: {where} puts this job at shard {index} of {count}, outside 1..{count}")
    return Shard(index, count)


def describe(shard: Shard, all_ids: Sequence[int], own_ids: Sequence[int]) -> dict:
    """The `shard` block of an eval record: enough for `eval --merge` to prove nothing is missing or doubled."""
    return {"index": shard.index, "count": shard.count, "image_ids": list(own_ids),
            "of_images": len(all_ids), "of_image_ids_sha256": image_ids_sha256(all_ids)}


def interleave(parts: Sequence[Sequence[T]]) -> list[T]:
    """The inverse of `Shard.select` over shards 1..N: the single run's order."""
    total = sum(len(p) for p in parts)
    n = len(parts)
    return [parts[k % n][k // n] for k in range(total)]


@dataclass
class Merged:
    """The shards put back together: the single run's image ids and detections, in its order."""

    records: list[EvalRecord]  # in shard order
    image_ids: list[int]
    results: list[dict]


_SHARD_BLOCK = {"index": int, "count": int, "image_ids": list, "of_images": int, "of_image_ids_sha256": str}
_RECORD = {"run_key": dict, "shard": dict, "model": dict, "protocol": dict, "backend": dict, "dataset": dict,
           "timing": dict, "detections_file": str}
_NOT_ONE_SPLIT = ("the shards' image lists do not add up to the run's image list; "
                  "were the records edited or taken from different runs?")


def read_records(paths: Sequence[str | Path]) -> list[tuple[Path, EvalRecord]]:
    """Read shard run records (validated and upgraded by the one record reader), refusing anything that is
    not the record of `harness eval --shard`."""
    from harness.records.reader import read_record

    out = []
    for p in map(Path, paths):
        if not p.exists():
            raise HarnessError(f"run record not found: {p}")
        rec = record_fields(read_record(p))
        if not (rec.get("kind") == "eval" and _has(rec, _RECORD) and _has(rec["shard"], _SHARD_BLOCK)):
            raise HarnessError(f"{p} is not the record of a sharded eval (harness eval --shard i/N --json FILE)")
        out.append((p, cast(EvalRecord, rec)))  # an eval record, with its shard block checked above
    return out


def _has(d: Mapping[str, Any], fields: Mapping[str, type]) -> bool:
    return all(isinstance(d.get(k), t) for k, t in fields.items())


def merge(records: Sequence[tuple[Path, EvalRecord]], gt) -> Merged:
    """Check that the records are the N shards of one run, then join their detections in run order."""
    from harness.scoring.coco import load_results

    by_index = _complete_set(records)
    ordered = [by_index[i] for i in sorted(by_index)]
    _check_one_run(ordered, gt)
    image_ids = _run_image_ids([rec for _, rec in ordered])
    per_image: dict[int, list[dict]] = {i: [] for i in image_ids}
    for path, rec in ordered:
        own = set(rec["shard"]["image_ids"])
        det_path = _detections_path(path, rec)
        for r in load_results(det_path, gt):
            if r["image_id"] not in own:
                raise HarnessError(f"{det_path} has detections for image {r['image_id']}, "
                                   f"which is not in shard {rec['shard']['index']}/{rec['shard']['count']}")
            per_image[r["image_id"]].append(r)
    return Merged([rec for _, rec in ordered], image_ids, [r for i in image_ids for r in per_image[i]])


def _check_one_run(ordered: Sequence[tuple[Path, EvalRecord]], gt) -> None:
    """Same model, protocol, settings and data in every shard, and the ground truth they were run on."""
    first_path, first = ordered[0]
    for path, rec in ordered[1:]:
        why = key_difference(_common_key(first["run_key"]), _common_key(rec["run_key"]))
        if why:
            raise HarnessError(f"{path} and {first_path} come from different runs ({why}); merge the shards of one run")
        if rec["shard"]["of_image_ids_sha256"] != first["shard"]["of_image_ids_sha256"]:
            raise HarnessError(f"{path} and {first_path} split different image lists (--max-images differs?)")
    if first["run_key"].get("annotation_sha256") != gt.sha256:
        raise HarnessError(f"the shards were evaluated against another annotation file than {gt.path}")


def _run_image_ids(shards: Sequence[EvalRecord]) -> list[int]:
    """The single run's image list, rebuilt from the shards and checked against the hash they recorded."""
    parts = [rec["shard"]["image_ids"] for rec in shards]
    total = shards[0]["shard"]["of_images"]
    if [len(p) for p in parts] != [len(range(i, total, len(parts))) for i in range(len(parts))]:
        raise HarnessError(_NOT_ONE_SPLIT)
    image_ids = interleave(parts)
    if image_ids_sha256(image_ids) != shards[0]["shard"]["of_image_ids_sha256"] or len(set(image_ids)) != total:
        raise HarnessError(_NOT_ONE_SPLIT)
    return image_ids


def _complete_set(records: Sequence[tuple[Path, EvalRecord]]) -> dict[int, tuple[Path, EvalRecord]]:
    counts = {rec["shard"]["count"] for _, rec in records}
    if len(counts) != 1:
        raise HarnessError(f"the records come from splits into different numbers of shards: {sorted(counts)}")
    count = counts.pop()
    by_index: dict[int, tuple[Path, EvalRecord]] = {}
    for path, rec in records:
        i = rec["shard"]["index"]
        if i in by_index:
            raise HarnessError(f"shard {i}/{count} is given twice: {by_index[i][0]} and {path}")
        by_index[i] = (path, rec)
    missing = [f"{i}/{count}" for i in range(1, count + 1) if i not in by_index]
    if missing:
        raise HarnessError(f"missing shard {', '.join(missing)}: merge needs all {count} records")
    return by_index


def _common_key(key: dict) -> dict:
    return {k: v for k, v in key.items() if k not in _SHARD_FIELDS}


def _detections_path(record_path: Path, rec: EvalRecord) -> Path:
    """The shard's detections file: where the record says, else beside the record (a CI artifact moved
    as one folder); its sha256 must be the one recorded, so a stale file from another run is refused."""
    named = Path(rec.get("detections_file", ""))
    path = named if named.is_file() else record_path.parent / named.name
    if not path.is_file():
        raise HarnessError(f"detections of {record_path} not found at {named} nor beside the record; "
                           "keep each shard's record and detections file together")
    want = rec.get("detections_sha256")
    if want and sha256_file(path) != want:
        raise HarnessError(f"{path} is not the detections file {record_path} was written with (sha256 differs)")
    return path


def combine_timings(timings: Sequence[dict]) -> dict:
    """The shards' timing as one block: machine time summed over shards; each shard's own kept."""
    total = {k: sum(t.get(k) or 0.0 for t in timings) for k in ("wall_s", "model_s", "decode_s", "wait_s")}
    images = sum(t.get("images") or 0 for t in timings)
    return {**total, "images": images,
            "wall_over_model": total["wall_s"] / total["model_s"] if total["model_s"] else None,
            "model_ms_p50": None,  # a median does not combine; see per_shard
            "model_ms_mean": total["model_s"] / images * 1e3 if images else None,
            "per_shard": list(timings)}
