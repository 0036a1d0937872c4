"""The `harness` command: eval, score, zoo, demo.

Every user error becomes one line on stderr (`harness: error: ...`) and exit status 2; results are
written atomically, so an interrupted run never leaves a half-written file behind.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from harness import __version__
from harness.errors import HarnessError

EXIT_USAGE = 2


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harness", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"harness {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("eval", help="COCO mAP of a model, compared with its published baseline")
    _add_model_options(p)
    p.add_argument("--coco", help="COCO root with val2017/ and annotations/instances_val2017.json "
                                  "(default: the mirror's coco/)")
    p.add_argument("--protocol", help="decode/scoring protocol from the card (default: the card's)")
    p.add_argument("--engine", default="faster", help="scoring engine: faster (default) or pycocotools")
    p.add_argument("--max-images", type=int, help="evaluate only the first N images by id")
    p.add_argument("--output", default="out", help="directory for the detections JSON (default: out/)")
    p.add_argument("--json", metavar="FILE", help="write the run record here")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no per-class table")

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

    p = sub.add_parser("compare", help="compare the latency of two bench records from the same host")
    p.add_argument("a")
    p.add_argument("b")

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
    return parser


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
    from harness.backends import BackendOptions

    opts = {}
    for item in args.delegate_option:
        key, sep, value = item.partition("=")
        if not sep:
            raise HarnessError(f"--delegate-option wants KEY=VALUE, got {item!r}")
        opts[key] = value
    return BackendOptions(threads=args.threads, runtime=args.runtime, delegate=args.delegate, delegate_options=opts)


def _card(args: argparse.Namespace):
    from harness.zoo import ZOO, card_for_path, get_card

    if args.model in ZOO:
        if args.like or args.decoder:
            raise HarnessError("--like and --decoder are for a model path, not a zoo name")
        return get_card(args.model)
    if Path(args.model).exists() or "/" in args.model or args.model.endswith(".tflite"):
        return card_for_path(args.model, args.like, args.decoder)
    return get_card(args.model)  # raises with the list of names


def _ground_truth(coco: str | None, mirror: Path | None):
    from harness.coco import CocoGroundTruth

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
    from harness.fetch import mirror_root

    mirror = mirror_root(args.mirror)
    record = evaluate(args.model, _card(args), mirror, _ground_truth(args.coco, mirror), _options(args),
                      protocol=args.protocol, engine=args.engine, max_images=args.max_images,
                      output=Path(args.output), quiet=args.quiet)
    if args.json:
        from harness.fileio import write_json_atomic

        write_json_atomic(args.json, record, indent=1)
        print(f"run record: {args.json}")
    return 0


def _load_backend(card, mirror, options):
    """Resolve the card's model, create its backend and load it; returns (backend, load seconds)."""
    import time

    from harness.backends import create_backend
    from harness.fetch import resolve_model

    path = resolve_model(card, mirror)
    t0 = time.perf_counter()
    backend = create_backend(card.backend, path, card.outputs, options)
    backend.load()
    return backend, time.perf_counter() - t0


def evaluate(label: str, card, mirror, gt, options, *, protocol=None, engine="faster", max_images=None,
             output: Path, quiet: bool = False) -> dict:
    """Resolve, load, run and score one model; print the summary; return the run record."""
    from harness import summary
    from harness.baseline import compare
    from harness.fileio import write_json_atomic
    from harness.records import new_record
    from harness.runner import run_eval

    if max_images is not None and max_images < 1:
        raise HarnessError("--max-images must be at least 1")
    proto_name = protocol or card.default_protocol
    card.protocol(proto_name)  # unknown protocol: fail before loading anything
    images = gt.images[:max_images] if max_images else gt.images
    if not images:
        raise HarnessError(f"{gt.path} lists no images to evaluate")
    backend, _ = _load_backend(card, mirror, options)
    backend_desc = backend.describe()
    bar = summary.Progress(len(images), f"eval {card.name}", enabled=not quiet)
    result, results, timing = run_eval(backend, card, gt, images, proto_name, engine, bar)
    dataset = gt.describe([i.id for i in images])
    detections_file = output / f"detections_{card.name}_{proto_name}.json"
    write_json_atomic(detections_file, results)
    comparison = compare(card, proto_name, dataset, result.stats["AP"])
    print(f"\n{card.name}: {dataset['image_count']} images of {dataset['split']}, protocol '{proto_name}', "
          f"engine {engine}, {backend_desc['runtime']}")
    print(summary.stats_table(result.stats))
    if not quiet:
        print()
        print(summary.per_class_table(result.per_class))
    print()
    print(summary.baseline_lines(comparison))
    ratio = f" ({timing.wall_s / timing.model_s:.2f}x model)" if timing.model_s else ""
    print(f"model time {timing.model_s:.2f} s, wall {timing.wall_s:.2f} s{ratio} for {timing.images} images")
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
    )


def cmd_bench(args: argparse.Namespace) -> int:
    from harness.fetch import mirror_root
    from harness.fileio import write_json_atomic
    from harness.profiler import StopRule

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
    from harness.bench import BenchSettings

    if warmup < 0 or model_only.min_count < 1 or end_to_end.min_count < 1:
        raise HarnessError("--warmup must be >= 0 and the minimum counts >= 1")
    return BenchSettings(model_only=model_only, end_to_end=end_to_end, warmup=warmup)


def benchmark(label: str, card, mirror, options, images_dir: Path | None, settings, cpus: str | None = None) -> dict:
    """Load and time one model on this host; print the summary; return the run record."""
    from harness import summary
    from harness.bench import list_images, run_bench, set_affinity
    from harness.records import new_record

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


def cmd_compare(args: argparse.Namespace) -> int:
    import json

    from harness import summary
    from harness.bench import compare_records

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


def cmd_score(args: argparse.Namespace) -> int:
    from harness import summary
    from harness.coco import CocoGroundTruth, load_results
    from harness.evaluator import score_results
    from harness.records import new_record

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
        from harness.fileio import write_json_atomic

        write_json_atomic(args.json, new_record("score", dataset=gt.describe(ids), results=result.to_dict(),
                                                results_file=str(args.results)), indent=1)
    return 0


def cmd_zoo(args: argparse.Namespace) -> int:
    import json

    from harness import summary
    from harness.zoo import ZOO, get_card

    if args.name:
        print(json.dumps(get_card(args.name).to_dict(), indent=1))
        return 0
    rows = [(c.name, c.backend, c.decoder, f"{c.baseline.ap:.1f}" if c.baseline else "-",
             c.baseline.split if c.baseline else "") for c in ZOO.values()]
    print(summary.table(["model", "backend", "decoder", "published AP", "split"], rows))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from harness import summary
    from harness.backends import BackendOptions
    from harness.fetch import mirror_root
    from harness.fileio import write_json_atomic
    from harness.profiler import StopRule
    from harness.zoo import get_card

    mirror = mirror_root(args.mirror)
    if mirror is None:
        raise HarnessError("the demo needs the mirror: --mirror ../shared/mirror or $HARNESS_MIRROR")
    gt = _ground_truth(None, mirror)
    out = Path(args.output)
    demo_bench = _bench_settings(3, StopRule(20, 2.0, 30.0), StopRule(10, 1.0, 30.0))
    rows = []
    for name in args.models:
        rec = evaluate(name, get_card(name), mirror, gt, BackendOptions(), max_images=args.max_images,
                       output=out, quiet=True)
        write_json_atomic(out / f"eval_{name}.json", rec, indent=1)
        s = rec["results"]["stats"]
        row = [name, rec["backend"]["runtime"], s["AP"], s["AP50"], s["AP75"], s["APs"], s["APm"], s["APl"],
               s["AR100"]]
        if not args.no_bench:
            b = benchmark(name, get_card(name), mirror, BackendOptions(), mirror / "coco" / "val2017_unlabeled",
                          demo_bench)
            write_json_atomic(out / f"bench_{name}.json", b, indent=1)
            row += [f"{b['phases']['model_only']['stats']['p50_s'] * 1e3:.1f}",
                    f"{b['phases']['end_to_end']['stats']['p50_s'] * 1e3:.1f}"]
        rows.append(row)
    print(f"\nmb3-centernet on {rows and rec['dataset']['image_count']} images of the mirror's val2017 "
          f"(published: {rec['comparison']['baseline']['ap']} on full val2017)")
    header = ["model", "runtime", "AP", "AP50", "AP75", "APs", "APm", "APl", "AR100"]
    if not args.no_bench:
        header += ["invoke p50 ms", "end-to-end p50 ms"]
    print(summary.table(header, rows))
    print(f"records: {out}/eval_*.json")
    return 0


COMMANDS = {"eval": cmd_eval, "bench": cmd_bench, "compare": cmd_compare, "score": cmd_score, "zoo": cmd_zoo,
            "demo": cmd_demo}
