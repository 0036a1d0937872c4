"""What the commands print, made from the records the applications return (COCO tables, bench phases)."""

from __future__ import annotations

from pathlib import Path

from harness.common.summary import table


def stats_table(stats: dict[str, float], interval: dict | None = None) -> str:
    """The 12 COCO stats in pycocotools' order, with each one's interval (fractions) when there is one."""
    from harness.scoring.evaluator import STAT_KEYS

    if not interval:
        return table(["stat", "value"], [(k, stats[k]) for k in STAT_KEYS])

    def bounds(k: str) -> str:
        s = interval.get(k) or {}
        return "-" if s.get("lo") is None or s.get("hi") is None else f"[{s['lo']:.3f}, {s['hi']:.3f}]"

    return table(["stat", "value", f"{100 * float(interval['level']):g}% interval"],
                 [(k, stats[k], bounds(k)) for k in STAT_KEYS])


def per_class_table(per_class: dict[str, dict[str, float]]) -> str:
    """AP per class, best first; a class absent from the images (AP -1) shows as '-'. Ground-truth boxes
    and images per class are shown where the record has them (an AP from 3 boxes is noise)."""
    def ap(v: float) -> str:
        return "-" if v < 0 else f"{v:.3f}"

    rows = sorted(per_class.items(), key=lambda kv: -kv[1]["AP"])
    counts = any("instances" in d for _, d in rows)
    return table(["class", "AP", "AP50", "APs", "APm", "APl", *(("boxes", "images") if counts else ())],
                 [(n, ap(d["AP"]), ap(d["AP50"]), ap(d["APs"]), ap(d["APm"]), ap(d["APl"]),
                   *((d.get("instances", "-"), d.get("images", "-")) if counts else ())) for n, d in rows])


def baseline_lines(cmp: dict) -> str:
    """The measured AP beside the published one, and why they are not comparable when they are not."""
    b = cmp["baseline"]
    if b is None:
        return f"measured AP {cmp['measured_ap']:.1f}; the card has no published baseline"
    head = (f"measured AP {cmp['measured_ap']:.1f} vs published {b['ap']:.1f} "
            f"({b['split']}, protocol '{b['protocol']}', {b['source']}): difference {cmp['difference']:+.1f}")
    if cmp["like_for_like"]:
        head += " (like for like)"
    else:
        head += "\nnot like for like: " + "; ".join(cmp["reasons"])
    if cmp.get("interval_verdict"):
        v = cmp["interval_verdict"]
        head += f"\nwithin sampling error ({100 * float(v['level']):g}%): {v['text']}"
    return head


def print_eval(record: dict, per_class: bool) -> None:
    """An eval record's stats, per-class table (unless quiet) and baseline comparison."""
    d, results = record["dataset"], record["results"]
    print(f"\n{record['model']['name']}: {d['image_count']} images of {d['split']}, protocol "
          f"'{record['protocol']['name']}', engine {results['engine']}, {record['backend'].get('runtime')}")
    interval = results.get("interval")
    print(stats_table(results["stats"], interval))
    if interval:
        from harness.scoring.intervals import headline

        print(headline(interval))
    if per_class:
        print()
        print(per_class_table(results["per_class"]))
    print()
    print(baseline_lines(record["comparison"]))


def print_eval_run(record: dict, per_class: bool) -> None:
    """What `harness eval` prints for one run: resume note, scores, where the time went, the detections."""
    from harness.measure.checkpoint import checkpoint_path

    resumed, total = record["resumed_images"], record["dataset"]["image_count"]
    if resumed:
        print(f"resuming from {checkpoint_path(Path(record['detections_file']))}: {resumed} of {total} images "
              "already done")
    print_eval(record, per_class)
    t = record["timing"]
    ratio = f" ({t['wall_s'] / t['model_s']:.2f}x model)" if t["model_s"] else ""
    more = f" ({resumed} more from the checkpoint)" if resumed else ""
    print(f"model time {t['model_s']:.2f} s, wall {t['wall_s']:.2f} s{ratio} for {t['images']} images{more}")
    print(f"detections: {record['detections_file']}")


def print_bench(record: dict) -> None:
    """A bench record's phases: start-up, load, first inference, then the steady-state percentiles."""
    desc, settings, ph = record["backend"], record["settings"], record["phases"]
    ttfi = record["time_to_first_inference_s"]
    print(f"\n{record['model']['name']} on {desc['runtime']} {desc['runtime_version']}, threads "
          f"{settings['threads'] or 'default'}, delegate {settings['delegate'] or 'none'}, "
          f"input: {record['input']['kind']}")
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
    print(table(["phase", "n", "p50 ms", "p90 ms", "p99 ms", "mean ms", "std ms", "min ms", "max ms", "per s"],
                rows))
    print(f"peak RSS {record['peak_rss_bytes'] / 2**20:.0f} MiB")
    for w in record["warnings"]:
        print(w)


def print_ab(record: dict) -> None:
    """An ab_bench record: each side's p50 and spread, then every ratio with its interval and verdict."""
    d = record["design"]
    print(f"\ninterleaved: {d['blocks']} blocks x {d['block_size']} invokes per side, order rotating, "
          f"input: {record['input']['kind']}")
    rows = []
    for role, side in record["sides"].items():
        st, s = side["stats"], side["settings"]
        rows.append((role, side["label"], s.get("runtime"), s.get("threads") or "default", s.get("delegate") or "none",
                     st["count"], *(f"{st[k] * 1e3:.2f}" for k in ("p50_s", "p90_s", "min_s", "max_s"))))
    print(table(["side", "model", "runtime", "threads", "delegate", "n", "p50 ms", "p90 ms", "min ms", "max ms"],
                rows))
    for name, r in record["ratios"].items():
        print(f"p50 {name}: {r['ratio']:.3f} [{r['lo']:.3f}, {r['hi']:.3f}] ({100 * r['level']:g}% {r['method']} "
              f"over {r['blocks']} blocks): {r['verdict']}")


def print_quant_compare(record: dict) -> None:
    """A quant_compare record's per-head and per-layer summary, and the AP lost when eval records were given."""
    from harness.analyse.quant_error.compare import format_summary

    print(format_summary(record))
    if "delta_ap" in record:
        d = record["delta_ap"]
        print("AP lost: " + ", ".join(f"{k} {v['float']:.3f}->{v['quant']:.3f}" for k, v in d["overall"].items())
              + ("" if d["like_for_like"] else f" (not like for like: {'; '.join(d['reasons'])})"))
    if "errors" in record:
        from harness.analyse.error_shift import first_bad, headline

        e = record["errors"]
        print(f"errors: {e['reason']}" if "reason" in e else "errors: " + headline(e, first_bad(record)))


def print_record(record: dict) -> None:
    """Any record the demo makes, as its own command prints it (quiet: no per-class table)."""
    if record["kind"] == "eval":
        print_eval_run(record, per_class=False)
    elif record["kind"] == "bench":
        print_bench(record)
    elif record["kind"] == "quant_compare":
        print_quant_compare(record)
