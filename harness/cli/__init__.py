"""The `harness` command: eval, score, zoo, demo.

Every user error becomes one line on stderr (`harness: error: ...`) and exit status 2; results are
written atomically, so an interrupted run never leaves a half-written file behind.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from harness import __version__
from harness.errors import HarnessError

EXIT_USAGE = 2
EXIT_GATE_FAILED = 1  # `harness check`: a gate failed (bad input stays EXIT_USAGE)


def _add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a zoo name (see `harness zoo`) or a path to a .tflite file / SavedModel directory")
    p.add_argument("--mirror", help="a local mirror laid out like ../shared/mirror (default: $HARNESS_MIRROR)")
    p.add_argument("--like", metavar="ZOO_NAME", help="for a model path: use this zoo card's contract")
    p.add_argument("--decoder", help="for a model path: head layout (tfod_centernet, ltrb_centernet, postprocessed)")
    p.add_argument("--threads", type=int, help="interpreter threads (default: the runtime's)")
    p.add_argument("--runtime", help="TFLite runtime: ai-edge-litert, tflite-runtime or tf.lite (default: first found)")
    p.add_argument("--delegate", metavar="LIB", help="external delegate library, e.g. /usr/lib/libvx_delegate.so")
    p.add_argument("--delegate-option", action="append", default=[], metavar="KEY=VALUE",
                   help="option for the external delegate (repeatable)")



def _add_record_sources(p: argparse.ArgumentParser) -> None:
    p.add_argument("records", nargs="*", help="run record files or directories of them")
    p.add_argument("--store", help="a record store (SQLite) to read, alone or with record files")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="harness", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"harness {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("eval", help="COCO mAP of a model, compared with its published baseline")
    _add_model_options(p)
    p.add_argument("--coco", help="COCO root with val2017/ and annotations/instances_val2017.json "
                                  "(default: the mirror's coco/)")
    p.add_argument("--protocol", help="decode/scoring protocol from the card (default: the card's)")
    p.add_argument("--engine", default="faster", help="scoring engine: faster (default) or pycocotools")
    p.add_argument("--max-images", type=int, help="evaluate only the first N images by id")
    p.add_argument("--shard", metavar="I/N", help="evaluate only shard I of N (every N-th image from the I-th); "
                                                  "`harness merge` joins the N records")
    p.add_argument("--restart", action="store_true", help="discard the checkpoint of an interrupted run "
                                                          "instead of resuming from it")
    p.add_argument("--output", default="out", help="directory for the detections JSON and the checkpoint of a "
                                                   "run in progress (default: out/)")
    p.add_argument("--json", metavar="FILE", help="write the run record here")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no per-class table")

    p = sub.add_parser("merge", help="join the records of `harness eval --shard I/N` runs and score them as one run")
    p.add_argument("records", nargs="+", help="the N shards' run records (harness eval --shard I/N --json FILE)")
    p.add_argument("--gt", help="ground truth instances_*.json (default: the file named in the records)")
    p.add_argument("--engine", default="faster", help="scoring engine: faster (default) or pycocotools")
    p.add_argument("--output", default="out", help="directory for the merged detections JSON (default: out/)")
    p.add_argument("--json", metavar="FILE", help="write the merged run record here")
    p.add_argument("--quiet", action="store_true", help="no per-class table")

    p = sub.add_parser("bench", help="latency phases and percentiles of a model on this host (board-ready)")
    _add_model_options(p)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--images", help="directory of real images (default: the mirror's coco/val2017_unlabeled)")
    src.add_argument("--random", action="store_true", help="random input instead of real images")
    p.add_argument("--cpus", help="pin the process to these CPUs, e.g. 0-3 or 2,3")
    p.add_argument("--warmup", type=int, default=5, help="warm-up invokes after the first (default 5)")
    p.add_argument("--min-count", type=int, default=50, help="steady state: at least this many invokes")
    p.add_argument("--min-duration", type=float, default=5.0, help="steady state: at least this many seconds")
    p.add_argument("--max-duration", type=float, default=60.0, help="steady state: stop after this many seconds")
    p.add_argument("--e2e-min-count", type=int, default=20, help="end to end: at least this many images")
    p.add_argument("--e2e-min-duration", type=float, default=3.0, help="end to end: at least this many seconds")
    p.add_argument("--json", metavar="FILE", help="write the run record here")

    p = sub.add_parser("detect", help="run a model on images: annotated copies and a table of detections "
                                      "(board-ready)")
    _add_model_options(p)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files, or directories of images")
    p.add_argument("--out", default="out/detect", help="directory for the annotated images and detections "
                                                       "JSON (default: out/detect)")
    p.add_argument("--threshold", type=float, default=0.3,
                   help="display threshold: draw and list detections scoring at least this (default 0.3); "
                        "evaluation never uses it")
    p.add_argument("--protocol", help="decode protocol from the card (default: the card's)")
    p.add_argument("--format", default="jpg", choices=("jpg", "png"), help="annotated image format (default jpg)")
    p.add_argument("--json", action="store_true", help="print the detections as JSON instead of a table")

    p = sub.add_parser("compare", help="two bench records: latency on the same host; two models (float, quantized): "
                                       "output error per head and per layer")
    p.add_argument("a", help="a bench record .json, or the float model (zoo name or path)")
    p.add_argument("b", help="a bench record .json, or the quantized model (zoo name or path)")
    _add_quant_compare_options(p)

    p = sub.add_parser("quantize", help="quantize a float SavedModel to TFLite with a replayable calibration set")
    _add_quantize_options(p)

    p = sub.add_parser("score", help="score an existing COCO results file (like MLPerf's accuracy-coco.py)")
    p.add_argument("--gt", required=True, help="ground truth instances_*.json")
    p.add_argument("--results", required=True, help="detections in the official results format")
    p.add_argument("--engine", default="faster", help="faster (default) or pycocotools")
    p.add_argument("--max-images", type=int, help="score only the first N images by id")
    p.add_argument("--json", metavar="FILE", help="write the run record here")

    p = sub.add_parser("zoo", help="list the model cards, or show one")
    p.add_argument("name", nargs="?")

    p = sub.add_parser("demo", help="evaluate the mirror's four mb3-centernet artifacts and compare them")
    p.add_argument("--mirror", help="the mirror (default: $HARNESS_MIRROR)")
    p.add_argument("--models", nargs="+", default=["mb3-centernet-hub", "mb3-centernet-f32", "mb3-centernet-int8",
                                                    "mb3-centernet-16x8"])
    p.add_argument("--max-images", type=int, help="evaluate only the first N images by id")
    p.add_argument("--output", default="reports/demo", help="directory for detections and records")
    p.add_argument("--no-bench", action="store_true", help="evaluate only, skip the latency runs")
    p.add_argument("--report", default="reports/demo/report", help="where the demo's report goes")
    p.add_argument("--compare-images", type=int, default=8, metavar="N",
                   help="images for the float-vs-quantized layer comparison (default 8)")

    p = sub.add_parser("store", help="the SQLite record store: import, export or list run records")
    p.add_argument("action", choices=("import", "export", "list"))
    p.add_argument("store", help="the store file, e.g. reports/runs.sqlite (created by import)")
    p.add_argument("paths", nargs="*", help="import: record files or directories; export: one .json file or a "
                                            "directory")

    p = sub.add_parser("report", help="tables, plots and an HTML/Markdown/CSV report over run records")
    _add_record_sources(p)
    p.add_argument("--out", default="reports/latest", help="output directory (default: reports/latest)")
    p.add_argument("--gallery", type=int, default=4, metavar="N", help="images per gallery (0: none; default 4)")
    p.add_argument("--gallery-threshold", type=float, default=0.3, metavar="SCORE",
                   help="draw boxes scoring at least this in the gallery (default 0.3; never affects AP)")
    p.add_argument("--title", default="CenterNet harness report")
    p.add_argument("--quiet", action="store_true", help="do not print the Markdown summary")

    p = sub.add_parser("check", help="CI gates over run records: exit 0 pass, 1 a gate failed, 2 bad input")
    _add_record_sources(p)
    p.add_argument("--ap-tolerance", type=float, metavar="POINTS",
                   help="accuracy gate: |AP - reference| <= POINTS; the reference is --expect or the published "
                        "baseline of a like-for-like run")
    p.add_argument("--expect", action="append", default=[], metavar="MODEL=AP",
                   help="the AP (points) MODEL must reach on the records' image set (repeatable)")
    p.add_argument("--allow-unlike", action="store_true",
                   help="also gate runs that are not like for like against the published baseline")
    p.add_argument("--max-quant-drop", type=float, metavar="POINTS",
                   help="quantization gate: float AP - quantized AP <= POINTS, siblings of one family")
    p.add_argument("--max-slowdown", type=float, metavar="RATIO",
                   help="latency gate: newest p50 / previous p50 on the same host fingerprint <= RATIO, "
                        "unless the difference is not significant")
    p.add_argument("--alpha", type=float, default=0.01, help="significance level of the latency gate (0.01)")
    p.add_argument("--skip-missing", action="store_true",
                   help="a gate with nothing to check passes with a note instead of exit 2 (a host's first run)")
    return parser


class _Parser(argparse.ArgumentParser):
    """Usage errors (a missing argument, `--max-images abc`) in the same one-line form as every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except HarnessError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return 130


def _options(args: argparse.Namespace):
    from harness.models.backends import BackendOptions

    opts = {}
    for item in args.delegate_option:
        key, sep, value = item.partition("=")
        if not sep:
            raise HarnessError(f"--delegate-option wants KEY=VALUE, got {item!r}")
        opts[key] = value
    if args.threads is not None and args.threads < 1:
        raise HarnessError(f"--threads must be at least 1, got {args.threads} (leave it out for the runtime's default)")
    if args.delegate and not Path(args.delegate).is_file():
        raise HarnessError(f"cannot load delegate {args.delegate}: no such file (give the path of the delegate's .so)")
    return BackendOptions(threads=args.threads, runtime=args.runtime, delegate=args.delegate, delegate_options=opts)


def _card(args: argparse.Namespace):
    from harness.models.zoo import ZOO, card_for

    if args.model in ZOO and (args.like or args.decoder):
        raise HarnessError("--like and --decoder are for a model path, not a zoo name")
    return card_for(args.model, args.like, args.decoder)


def _ground_truth(coco: str | None, mirror: Path | None):
    from harness.scoring.coco import CocoGroundTruth

    if coco is None:
        if mirror is None:
            raise HarnessError("say where COCO is: --coco DIR, or --mirror DIR / $HARNESS_MIRROR with coco/ in it")
        root = mirror / "coco"
    else:
        root = Path(coco)
    if not root.is_dir():
        raise HarnessError(f"COCO root not found: {root}")
    return CocoGroundTruth(root / "annotations" / "instances_val2017.json", root / "val2017")


def cmd_eval(args: argparse.Namespace) -> int:
    from harness.measure.shard import Shard
    from harness.models.fetch import mirror_root

    shard = Shard.parse(args.shard) if args.shard is not None else None
    mirror = mirror_root(args.mirror)
    record = evaluate(args.model, _card(args), mirror, _ground_truth(args.coco, mirror), _options(args),
                      protocol=args.protocol, engine=args.engine, max_images=args.max_images,
                      output=Path(args.output), quiet=args.quiet, shard=shard, restart=args.restart)
    if args.json:
        from harness.common.fileio import write_json_atomic

        write_json_atomic(args.json, record, indent=1)
        print(f"run record: {args.json}")
    return 0


def _load_backend(card, mirror, options):
    """Resolve the card's model, create its backend and load it; returns (backend, load seconds)."""
    import time

    from harness.models.backends import create_backend
    from harness.models.fetch import resolve_model

    path = resolve_model(card, mirror)
    t0 = time.perf_counter()
    backend = create_backend(card.backend, path, card.outputs, options)
    backend.load()
    return backend, time.perf_counter() - t0


def evaluate(label: str, card, mirror, gt, options, *, protocol=None, engine="faster", max_images=None,
             output: Path, quiet: bool = False, shard=None, restart: bool = False) -> dict:
    """Resolve, load, run and score one model; print the summary; return the run record.

    Each finished image goes to a checkpoint beside the detections file, so the same call after a kill
    resumes where it stopped (`restart` discards it); `shard` (harness.measure.shard.Shard) runs only its share.
    """
    from harness.common.fileio import sha256_file, write_json_atomic
    from harness.common.summary import Progress
    from harness.measure.checkpoint import Checkpoint, checkpoint_path, run_key
    from harness.measure.runner import run_eval
    from harness.measure.shard import describe as shard_block
    from harness.records.schema import new_record

    if max_images is not None and max_images < 1:
        raise HarnessError("--max-images must be at least 1")
    proto_name = protocol or card.default_protocol
    card.protocol(proto_name)  # unknown protocol: fail before loading anything
    images = gt.images[:max_images] if max_images else gt.images
    all_ids = [i.id for i in images]
    if shard is not None:
        images = shard.select(images)
    if not images:
        where = f" for shard {shard} of {len(all_ids)} images" if all_ids else ""
        raise HarnessError(f"{gt.path} lists no images to evaluate{where}")
    ids = [i.id for i in images]
    backend, _ = _load_backend(card, mirror, options)
    backend_desc = backend.describe()
    detections_file = output / f"detections_{card.name}_{proto_name}{shard.suffix if shard else ''}.json"
    key = run_key(card, proto_name, backend.model_path, backend_desc.get("runtime"), options.delegate, gt.sha256,
                  ids, shard)
    checkpoint = Checkpoint(checkpoint_path(detections_file), key, restart=restart)
    resumed = len(checkpoint.done)
    if resumed:
        print(f"resuming from {checkpoint.path}: {resumed} of {len(images)} images already done")
    bar = Progress(len(images), f"eval {card.name}", enabled=not quiet)
    result, results, timing = run_eval(backend, card, gt, images, proto_name, engine, bar, checkpoint)
    dataset = gt.describe(ids)
    write_json_atomic(detections_file, results)
    checkpoint.remove()
    comparison = _print_eval(card, proto_name, dataset, engine, backend_desc["runtime"], result, quiet)
    ratio = f" ({timing.wall_s / timing.model_s:.2f}x model)" if timing.model_s else ""
    more = f" ({resumed} more from the checkpoint)" if resumed else ""
    print(f"model time {timing.model_s:.2f} s, wall {timing.wall_s:.2f} s{ratio} for {timing.images} images{more}")
    print(f"detections: {detections_file}")
    return new_record(
        "eval",
        model=card.to_dict(),
        model_label=label,
        protocol={"name": proto_name, **card.to_dict()["protocols"][proto_name]},
        backend=backend_desc,
        dataset=dataset,
        results=result.to_dict(),
        comparison=comparison,
        timing=timing.to_dict(),
        detections_file=str(detections_file),
        detections_sha256=sha256_file(detections_file),
        run_key=key,
        resumed_images=resumed,
        **({"shard": shard_block(shard, all_ids, ids)} if shard is not None else {}),
    )


def _print_eval(card, protocol: str, dataset: dict, engine: str, runtime: str, result, quiet: bool) -> dict:
    """Print an eval's stats, per-class table and baseline comparison; return the comparison block.

    `card` needs only `.name` and `.baseline` (merge rebuilds those from a record).
    """
    from harness.common import summary
    from harness.scoring.baseline import compare

    comparison = compare(card, protocol, dataset, result.stats["AP"])
    print(f"\n{card.name}: {dataset['image_count']} images of {dataset['split']}, protocol '{protocol}', "
          f"engine {engine}, {runtime}")
    print(summary.stats_table(result.stats))
    if not quiet:
        print()
        print(summary.per_class_table(result.per_class))
    print()
    print(summary.baseline_lines(comparison))
    return comparison


def cmd_merge(args: argparse.Namespace) -> int:
    from types import SimpleNamespace

    from harness.common.fileio import sha256_file, write_json_atomic
    from harness.measure.checkpoint import image_ids_sha256
    from harness.measure.shard import combine_timings, merge, read_records
    from harness.models.zoo import Baseline
    from harness.records.schema import new_record
    from harness.scoring.coco import CocoGroundTruth
    from harness.scoring.evaluator import score_results

    records = read_records(args.records)
    gt = CocoGroundTruth(args.gt or records[0][1]["dataset"]["annotations"])
    merged = merge(records, gt)
    result = score_results(gt, merged.results, merged.image_ids, args.engine)
    first = merged.records[0]
    model, proto_name = first["model"], first["protocol"]["name"]
    detections_file = Path(args.output) / f"detections_{model['name']}_{proto_name}.json"
    write_json_atomic(detections_file, merged.results)
    dataset = {**gt.describe(merged.image_ids), "images_dir": first["dataset"].get("images_dir")}
    card = SimpleNamespace(name=model["name"], baseline=Baseline(**model["baseline"]) if model["baseline"] else None)
    comparison = _print_eval(card, proto_name, dataset, args.engine, first["backend"].get("runtime"), result,
                             args.quiet)
    print(f"merged {len(records)} shards: {len(merged.image_ids)} images, {len(merged.results)} detections")
    print(f"detections: {detections_file}")
    if args.json:
        record = new_record(
            "eval", model=model, model_label=first.get("model_label"), protocol=first["protocol"],
            backend=first["backend"], dataset=dataset, results=result.to_dict(), comparison=comparison,
            timing=combine_timings([r["timing"] for r in merged.records]),
            detections_file=str(detections_file), detections_sha256=sha256_file(detections_file),
            run_key={**first["run_key"], "shard": None, "image_ids_sha256": image_ids_sha256(merged.image_ids)},
            resumed_images=sum(r.get("resumed_images", 0) for r in merged.records),
            merged_from=[str(path) for path, _ in records])
        write_json_atomic(args.json, record, indent=1)
        print(f"run record: {args.json}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from harness.common.fileio import write_json_atomic
    from harness.measure.profiler import StopRule
    from harness.models.fetch import mirror_root

    mirror = mirror_root(args.mirror)
    if args.random:
        images_dir = None
    elif args.images:
        images_dir = Path(args.images)
    else:
        images_dir = mirror / "coco" / "val2017_unlabeled" if mirror else None
    settings = _bench_settings(args.warmup, StopRule(args.min_count, args.min_duration, args.max_duration),
                               StopRule(args.e2e_min_count, args.e2e_min_duration, args.max_duration))
    record = benchmark(args.model, _card(args), mirror, _options(args), images_dir, settings, cpus=args.cpus)
    if args.json:
        write_json_atomic(args.json, record, indent=1)
        print(f"run record: {args.json}")
    return 0


def _bench_settings(warmup: int, model_only, end_to_end):
    from harness.measure.bench import BenchSettings

    if warmup < 0 or model_only.min_count < 1 or end_to_end.min_count < 1:
        raise HarnessError("--warmup must be >= 0 and the minimum counts >= 1")
    return BenchSettings(model_only=model_only, end_to_end=end_to_end, warmup=warmup)


def benchmark(label: str, card, mirror, options, images_dir: Path | None, settings, cpus: str | None = None) -> dict:
    """Load and time one model on this host; print the summary; return the run record."""
    from harness.common import summary
    from harness.measure.bench import list_images, run_bench, set_affinity
    from harness.records.schema import new_record

    affinity = set_affinity(cpus)
    images = list_images(images_dir, settings.max_images) if images_dir else None
    backend, load_s = _load_backend(card, mirror, options)
    body = run_bench(backend, card, images, settings, load_s)
    desc = backend.describe()
    ph = body["phases"]
    ttfi = body["time_to_first_inference_s"]
    print(f"\n{card.name} on {desc['runtime']} {desc['runtime_version']}, threads {options.threads or 'default'}, "
          f"delegate {options.delegate or 'none'}, input: {body['input']['kind']}")
    print(f"time from process start to first inference: {ttfi:.3f} s" if ttfi is not None else
          "time from process start to first inference: unknown on this OS")
    print(f"load {ph['load_s'] * 1e3:.1f} ms, first inference {ph['first_inference_s'] * 1e3:.1f} ms, "
          f"warm-up {len(ph['warmup']['samples_s'])} runs")
    rows = []
    for name in ("model_only", "end_to_end"):
        st = ph[name]["stats"]
        rows.append((name, st["count"], *(f"{st[k] * 1e3:.2f}" for k in ("p50_s", "p90_s", "p99_s", "mean_s",
                                                                         "std_s", "min_s", "max_s")),
                     f"{st['throughput_per_s']:.2f}"))
    print(summary.table(["phase", "n", "p50 ms", "p90 ms", "p99 ms", "mean ms", "std ms", "min ms", "max ms",
                         "per s"], rows))
    print(f"peak RSS {body['peak_rss_bytes'] / 2**20:.0f} MiB")
    for w in body["warnings"]:
        print(w)
    settings_rec = {"threads": options.threads, "affinity": affinity, "delegate": options.delegate,
                    "delegate_options": dict(options.delegate_options), "runtime": desc["runtime"],
                    "model_sha256": desc.get("model_sha256"), "warmup": settings.warmup}
    return new_record("bench", model=card.to_dict(), model_label=label, backend=desc, settings=settings_rec, **body)


def cmd_detect(args: argparse.Namespace) -> int:
    import json

    from harness.common import summary
    from harness.common.fileio import write_json_atomic
    from harness.measure.detect import TABLE_HEADER, check_settings, detect, list_images, table_rows
    from harness.models.fetch import mirror_root

    paths = list_images(args.images)  # a missing image or a bad option fails before the model is loaded
    card = _card(args)
    check_settings(card, args.threshold, args.protocol, args.format)
    backend, _ = _load_backend(card, mirror_root(args.mirror), _options(args))
    out = Path(args.out)
    result = detect(backend, card, paths, out, score_threshold=args.threshold, protocol=args.protocol,
                    fmt=args.format)
    saved = write_json_atomic(out / f"detections_{card.name}.json", result, indent=1)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(summary.table(TABLE_HEADER, table_rows(result)))
    print(f"\n{card.name}: {len(paths)} images, threshold {args.threshold:g}; annotated images and {saved.name} "
          f"in {out}/")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    import json

    from harness.common import summary
    from harness.measure.bench import compare_records

    records = [str(x).endswith(".json") for x in (args.a, args.b)]
    if not any(records):
        return cmd_quant_compare(args)
    if not all(records):
        raise HarnessError("compare takes two bench records (.json) or two models (zoo names or paths), not one "
                           "of each")
    recs = []
    for path in (args.a, args.b):
        try:
            rec = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise HarnessError(f"cannot read run record {path}: {exc}") from None
        if not isinstance(rec, dict) or rec.get("kind") != "bench" or "phases" not in rec:
            raise HarnessError(f"{path} is not a bench run record (harness bench --json)")
        recs.append(rec)
    out = compare_records(*recs)
    print(f"same host fingerprint {recs[0]['host']['fingerprint']}: like for like")
    rows = [(phase, k, f"{v['a'] * 1e3:.2f}", f"{v['b'] * 1e3:.2f}", f"{v['b_over_a']:.3f}")
            for phase, stats in out.items() for k, v in stats.items()]
    print(summary.table(["phase", "stat", "A ms", "B ms", "B/A"], rows))
    return 0


# --------------------------------------------------------------------------------------------------
# quantize, and compare of two models (harness/quantize.py, harness/quant_compare.py)


def _add_calibration_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--calib", metavar="DIR", help="directory of calibration images")
    p.add_argument("--calib-list", metavar="FILE", help="replay these files of --calib in this order "
                                                         "(JSON array or one name per line)")
    p.add_argument("--recipe", help="a published recipe's settings: nxp (int8, shuffle with seed 1337, "
                                    "100 images, PIL's default resize)")
    p.add_argument("--count", type=int, help="calibration images to draw (default 100, or the recipe's)")
    p.add_argument("--seed", type=int, help="seed of the shuffle draw (default 0, or the recipe's)")
    p.add_argument("--draw", help="how to draw from --calib: shuffle (Python's random, as NXP) or sorted")
    p.add_argument("--resize", help="resize filter: bilinear (default, as the eval), pil-default, bicubic, ...")


def _add_quantize_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("saved_model", help="the float SavedModel directory")
    p.add_argument("--output", required=True, metavar="FILE", help="the .tflite to write; the record of how it "
                                                                   "was made goes to FILE.json")
    p.add_argument("--mode", help="int8 (default; NXP's: int8 input, float outputs), 16x8, dynamic, float32")
    _add_calibration_options(p)
    p.add_argument("--size", metavar="HxW", help="calibration image size when the SavedModel's input has none")
    p.add_argument("--float-layers", nargs="+", default=[], metavar="NAME",
                   help="keep these layers (op output tensor names, as `harness compare` lists them) in float")
    p.add_argument("--float-layers-from", metavar="FILE",
                   help="layer names to keep in float: a text file (one per line) or a `harness compare` record "
                        "(its top layers, see --float-top and --float-rank)")
    p.add_argument("--float-top", type=int, default=10, help="with a compare record: how many layers (default 10)")
    p.add_argument("--float-rank", choices=("share", "growth_db"), default="share",
                   help="with a compare record: rank by injected error share (default) or by error growth")
    p.add_argument("--float-ops", nargs="+", default=[], metavar="TYPE",
                   help="keep every layer of these op types in float, e.g. MUL ADD")
    p.add_argument("--eval-images", metavar="DIR", help="warn when calibration images are also here (default: "
                                                        "the mirror's coco/val2017)")
    p.add_argument("--mirror", help="the mirror (default: $HARNESS_MIRROR)")


def _add_quant_compare_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mirror", help="models and images: the mirror (default: $HARNESS_MIRROR)")
    p.add_argument("--like", metavar="ZOO_NAME", help="a model path's contract (default for B: A's card)")
    p.add_argument("--images", metavar="DIR", help="images to compare on (default: the mirror's coco/val2017)")
    p.add_argument("--max-images", type=int, default=8, help="the first N images by name (default 8)")
    p.add_argument("--saved-model", metavar="DIR", help="the float SavedModel: adds the QuantizationDebugger's "
                                                        "layer-wise error (int8)")
    _add_calibration_options(p)
    p.add_argument("--threshold-db", type=float, default=None,
                   help="accumulated SNR below which a layer counts as bad (default 20)")
    p.add_argument("--evals", nargs=2, metavar=("FLOAT_JSON", "QUANT_JSON"),
                   help="eval records of the two models: adds the AP lost per class and per object size")
    p.add_argument("--runtime", help="TFLite runtime: ai-edge-litert, tflite-runtime or tf.lite")
    p.add_argument("--threads", type=int, help="interpreter threads for the per-head run")
    p.add_argument("--json", metavar="FILE", help="write the quant_compare record here")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _calibration(args: argparse.Namespace, size: tuple[int, int], dtype: str = "float32"):
    """The calibration set the options describe (a recipe's settings, overridden by explicit options)."""
    from harness.quantize.convert import draw_calibration, get_recipe

    recipe = get_recipe(args.recipe) if args.recipe else None
    if args.calib is None:
        if args.calib_list:
            raise HarnessError("--calib-list names files of a directory: give it with --calib DIR")
        return None

    def pick(value, attr, default):
        return value if value is not None else (getattr(recipe, attr) if recipe else default)

    return draw_calibration(args.calib, size=size, count=pick(args.count, "count", 100),
                            draw=pick(args.draw, "draw", "shuffle"), seed=pick(args.seed, "seed", 0),
                            resize=pick(args.resize, "resize", "bilinear"), list_file=args.calib_list, dtype=dtype)


def _input_size(shape, option: str | None) -> tuple[int, int]:
    if option:
        h, sep, w = option.lower().partition("x")
        if not sep or not h.isdigit() or not w.isdigit():
            raise HarnessError(f"--size wants HxW, e.g. 512x512, got {option!r}")
        return int(h), int(w)
    if len(shape) != 4 or shape[1] is None or shape[2] is None:
        raise HarnessError(f"the SavedModel's input {list(shape)} has no fixed size: give --size HxW")
    return int(shape[1]), int(shape[2])


def _float_layers(args: argparse.Namespace) -> list[str]:
    import json

    names = list(args.float_layers)
    if args.float_layers_from:
        path = Path(args.float_layers_from)
        try:
            text = path.read_text()
        except OSError as exc:
            raise HarnessError(f"cannot read {path}: {exc.strerror or exc}") from None
        try:
            rec = json.loads(text)
        except json.JSONDecodeError:
            rec = None
        if isinstance(rec, dict) and rec.get("kind") == "quant_compare":
            key = args.float_rank
            ranked = sorted((r for r in rec.get("layers", []) if r.get(key)), key=lambda r: -r[key])
            names += [r["name"] for r in ranked[: args.float_top]]
        else:
            names += [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return list(dict.fromkeys(names))


def cmd_quantize(args: argparse.Namespace) -> int:
    from harness.common.fileio import write_json_atomic
    from harness.models.fetch import mirror_root
    from harness.quantize import convert as q
    from harness.records.schema import new_record

    recipe = q.get_recipe(args.recipe) if args.recipe else None
    mode = q.get_mode(args.mode or (recipe.mode if recipe else "int8"))
    shape, dtype = q.saved_model_input(args.saved_model)
    calibration = _calibration(args, _input_size(shape, args.size), dtype) if mode.calibrated else None
    if mode.calibrated and calibration is None:
        raise HarnessError(f"mode {mode.name} needs calibration images: --calib DIR (and --calib-list FILE to "
                           "replay a list)")
    overlap = None
    mirror = mirror_root(args.mirror)
    eval_dir = Path(args.eval_images) if args.eval_images else (mirror / "coco" / "val2017" if mirror else None)
    if calibration is not None and eval_dir is not None:
        overlap = q.calibration_overlap(calibration, eval_dir)
        hits = sorted(set(overlap["by_name"]) | set(overlap["by_content"]))
        if hits:
            print(f"harness: warning: {len(hits)} of {len(calibration.files)} calibration images are also "
                  f"evaluation images in {eval_dir} (e.g. {hits[0]}): AP measured there is flattered",
                  file=sys.stderr)
    layers = _float_layers(args)
    print(f"quantizing {args.saved_model} ({mode.name}"
          + (f", {len(calibration.files)} calibration images drawn by {calibration.draw}" if calibration else "")
          + (f", {len(layers)} named layers and op types {args.float_ops or '-'} kept in float"
             if layers or args.float_ops else "") + ") ...", flush=True)
    body = q.quantize_saved_model(args.saved_model, args.output, mode.name, calibration, float_layers=layers,
                                  float_ops=args.float_ops, recipe=args.recipe, overlap=overlap)
    record = write_json_atomic(q.sidecar_path(args.output), new_record("quantize", **body), indent=1)
    out = body["output"]
    print(f"{args.output}: {out['bytes']} bytes, sha256 {out['sha256']}, input {out['input_dtype']}, "
          f"{body['convert_seconds']:.0f} s with TensorFlow {body['tensorflow']}")
    print(f"record: {record}")
    return 0


def cmd_quant_compare(args: argparse.Namespace) -> int:
    import json

    from harness.analyse.quant_compare import FIRST_BAD_SNR_DB, compare_models, delta_ap, format_summary
    from harness.common.fileio import write_json_atomic
    from harness.models.backends import BackendOptions
    from harness.models.fetch import mirror_root, resolve_model
    from harness.models.zoo import ZOO, card_for
    from harness.quantize.convert import Calibration, list_images, read_sidecar, saved_model_input
    from harness.records.schema import new_record

    mirror = mirror_root(args.mirror)

    float_card = card_for(args.a, args.like)
    quant_card = card_for(args.b, args.like or (args.a if args.a in ZOO else None))
    float_path, quant_path = resolve_model(float_card, mirror), resolve_model(quant_card, mirror)
    if args.max_images < 1:
        raise HarnessError("--max-images must be at least 1")
    images_dir = Path(args.images) if args.images else (mirror / "coco" / "val2017" if mirror else None)
    if images_dir is None:
        raise HarnessError("say which images to compare on: --images DIR, or --mirror DIR / $HARNESS_MIRROR")
    files = [images_dir / n for n in list_images(images_dir)[: args.max_images]]
    sidecar = read_sidecar(quant_path)
    saved_model = Path(args.saved_model) if args.saved_model else None
    calibration = None
    if saved_model is not None:
        if args.calib:
            calibration = _calibration(args, _input_size(saved_model_input(saved_model)[0], None))
        elif sidecar and sidecar.get("calibration"):
            calibration = Calibration.from_dict(sidecar["calibration"])
    body = compare_models(float_card, float_path, quant_card, quant_path, files,
                          options=BackendOptions(threads=args.threads, runtime=args.runtime),
                          saved_model=saved_model, calibration=calibration, sidecar=sidecar,
                          threshold_db=FIRST_BAD_SNR_DB if args.threshold_db is None else args.threshold_db,
                          quiet=args.quiet)
    if args.evals:
        evals = []
        for path in args.evals:
            try:
                rec = json.loads(Path(path).read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise HarnessError(f"cannot read eval record {path}: {exc}") from None
            if not isinstance(rec, dict) or rec.get("kind") != "eval":
                raise HarnessError(f"{path} is not an eval record (harness eval --json)")
            evals.append(rec)
        body["delta_ap"] = {"float_record": args.evals[0], "quant_record": args.evals[1], **delta_ap(*evals)}
    print(format_summary(body))
    if "delta_ap" in body:
        d = body["delta_ap"]
        print("AP lost: " + ", ".join(f"{k} {v['float']:.3f}->{v['quant']:.3f}" for k, v in d["overall"].items())
              + ("" if d["like_for_like"] else f" (not like for like: {'; '.join(d['reasons'])})"))
    if args.json:
        write_json_atomic(args.json, new_record("quant_compare", **body), indent=1)
        print(f"run record: {args.json}")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from harness.common import summary
    from harness.records.schema import new_record
    from harness.scoring.coco import CocoGroundTruth, load_results
    from harness.scoring.evaluator import score_results

    if args.max_images is not None and args.max_images < 1:
        raise HarnessError("--max-images must be at least 1")
    gt = CocoGroundTruth(args.gt)
    results = load_results(args.results, gt)
    ids = [i.id for i in gt.images][: args.max_images]
    if args.max_images is not None:
        kept = set(ids)
        results = [r for r in results if r["image_id"] in kept]
    result = score_results(gt, results, ids, args.engine)
    print(f"{len(results)} detections on {len(ids)} images, engine {args.engine}")
    print(summary.stats_table(result.stats))
    if args.json:
        from harness.common.fileio import write_json_atomic

        write_json_atomic(args.json, new_record("score", dataset=gt.describe(ids), results=result.to_dict(),
                                                results_file=str(args.results)), indent=1)
    return 0


def cmd_zoo(args: argparse.Namespace) -> int:
    import json

    from harness.common import summary
    from harness.models.zoo import ZOO, get_card

    if args.name:
        print(json.dumps(get_card(args.name).to_dict(), indent=1))
        return 0
    rows = [(c.name, c.backend, c.decoder, f"{c.baseline.ap:.1f}" if c.baseline else "-",
             c.baseline.split if c.baseline else "") for c in ZOO.values()]
    print(summary.table(["model", "backend", "decoder", "published AP", "split"], rows))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Evaluate and bench each model, keep the records (files and a store), end with the report."""
    from harness.common.fileio import write_json_atomic
    from harness.measure.profiler import StopRule
    from harness.models.backends import BackendOptions
    from harness.models.fetch import mirror_root
    from harness.models.zoo import get_card
    from harness.records.store import RecordStore

    mirror = mirror_root(args.mirror)
    if mirror is None:
        raise HarnessError("the demo needs the mirror: --mirror ../shared/mirror or $HARNESS_MIRROR")
    gt = _ground_truth(None, mirror)
    out = Path(args.output)
    demo_bench = _bench_settings(3, StopRule(20, 2.0, 30.0), StopRule(10, 1.0, 30.0))
    records = []
    with RecordStore(out / "runs.sqlite") as store:
        for name in args.models:
            rec = evaluate(name, get_card(name), mirror, gt, BackendOptions(), max_images=args.max_images,
                           output=out, quiet=True)
            write_json_atomic(out / f"eval_{name}.json", rec, indent=1)
            store.add([rec])
            records.append(rec)
            if not args.no_bench:
                b = benchmark(name, get_card(name), mirror, BackendOptions(), mirror / "coco" / "val2017_unlabeled",
                              demo_bench)
                write_json_atomic(out / f"bench_{name}.json", b, indent=1)
                store.add([b])
                records.append(b)
        for float_name, quant_name in _demo_quant_pairs(args.models):
            rec = _quant_compare_record(float_name, quant_name, mirror, args.compare_images)
            write_json_atomic(out / f"compare_{float_name}_{quant_name}.json", rec, indent=1)
            store.add([rec])
            records.append(rec)
    from harness.analyse.report.build import build_report

    report = build_report(records, args.report, base_dir=out, title="mb3-centernet on the mirror")
    print()
    print(report.markdown_text)
    print(f"records: {out}/eval_*.json, {out}/bench_*.json and the store {out}/runs.sqlite")
    print(f"report: {report.html}")
    return 0


def _demo_quant_pairs(models: Sequence[str]) -> list[tuple[str, str]]:
    """(float, quantized) TFLite siblings among the demo's models: the pairs `harness compare` explains."""
    from harness.models.zoo import get_card

    cards = [get_card(m) for m in models]
    floats = [c for c in cards if c.precision == "float32" and c.backend == "tflite"]
    return [(f.name, q.name) for q in cards if q.precision != "float32" and q.backend == "tflite"
            for f in floats[:1] if f.family == q.family]


def _quant_compare_record(float_name: str, quant_name: str, mirror: Path, count: int) -> dict:
    """`harness compare FLOAT QUANT` on the mirror's first images, by tensor matching (no SavedModel needed)."""
    from harness.analyse.quant_compare import compare_models, format_summary
    from harness.models.backends import BackendOptions
    from harness.models.fetch import resolve_model
    from harness.models.zoo import get_card
    from harness.quantize.convert import list_images
    from harness.records.schema import new_record

    fc, qc = get_card(float_name), get_card(quant_name)
    images = mirror / "coco" / "val2017"
    files = [images / n for n in list_images(images)[:count]]
    body = compare_models(fc, resolve_model(fc, mirror), qc, resolve_model(qc, mirror), files,
                          options=BackendOptions(), quiet=True)
    print(format_summary(body))
    return new_record("quant_compare", **body)


def _records(args: argparse.Namespace) -> list[dict]:
    """Records from --store and/or record files; none at all is an input error."""
    from harness.records.schema import collect

    records: list[dict] = []
    if args.store:
        from harness.records.store import RecordStore

        with RecordStore(args.store, create=False) as store:
            records.extend(store.records())
    records.extend(collect(args.records))
    if not records:
        raise HarnessError("no run records: give record files / directories, or --store FILE")
    from harness.records.schema import digest

    unique = {digest(r): r for r in records}  # a record both in the store and in a file counts once
    return list(unique.values())


def cmd_store(args: argparse.Namespace) -> int:
    from harness.common import summary
    from harness.records.schema import collect
    from harness.records.store import RecordStore, export_records

    if args.action == "import":
        if not args.paths:
            raise HarnessError("store import needs record files or directories to import")
        records = collect(args.paths)
        with RecordStore(args.store) as store:
            added = store.add(records, where="import")
            print(f"{args.store}: {added} new of {len(records)} records ({store.count()} in the store)")
        return 0
    with RecordStore(args.store, create=False) as store:
        records = store.records()
    if args.action == "export":
        if len(args.paths) != 1:
            raise HarnessError("store export needs one destination: a .json file or a directory")
        dest = export_records(records, args.paths[0])
        print(f"{len(records)} records -> {dest}")
        return 0
    rows = [(r["kind"], r.get("model", {}).get("name", "") if isinstance(r.get("model"), dict) else "",
             r["host"]["fingerprint"], r.get("created")) for r in records]
    print(summary.table(["kind", "model", "host", "created"], rows))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from harness.analyse.report.build import build_report

    if args.gallery < 0:
        raise HarnessError("--gallery must be >= 0")
    if not 0.0 <= args.gallery_threshold <= 1.0:
        raise HarnessError(f"--gallery-threshold is a score between 0 and 1, got {args.gallery_threshold:g}")
    records = _records(args)
    base = next((Path(r).parent if Path(r).is_file() else Path(r) for r in args.records), None)
    report = build_report(records, args.out, gallery_images=args.gallery, base_dir=base, title=args.title,
                          gallery_threshold=args.gallery_threshold)
    if not args.quiet:
        print(report.markdown_text)
    print(f"report: {report.html}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from harness.analyse.check import run_gates

    expected = {}
    for item in args.expect:
        name, sep, value = item.rpartition("=")
        try:
            expected[name] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name:
            raise HarnessError(f"--expect wants MODEL=AP (AP in points, e.g. mb3-centernet-f32=28.5), got {item!r}")
    findings = run_gates(_records(args), tolerance=args.ap_tolerance, expected=expected,
                         allow_unlike=args.allow_unlike, max_quant_drop=args.max_quant_drop,
                         max_slowdown=args.max_slowdown, alpha=args.alpha, skip_missing=args.skip_missing)
    for f in findings:
        print(f"{'PASS' if f.passed else 'FAIL'} [{f.gate}] {f.message}")
    failed = [f for f in findings if not f.passed]
    print(f"{len(findings) - len(failed)} passed, {len(failed)} failed")
    return EXIT_GATE_FAILED if failed else 0


COMMANDS = {"eval": cmd_eval, "bench": cmd_bench, "detect": cmd_detect, "compare": cmd_compare, "score": cmd_score,
            "merge": cmd_merge, "zoo": cmd_zoo, "demo": cmd_demo, "store": cmd_store, "report": cmd_report,
            "check": cmd_check, "quantize": cmd_quantize}
