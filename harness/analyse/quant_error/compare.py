"""Float vs quantized model on real images: how far each head drifts, and which layers make it drift.

Per layer, three measures, because "which layer costs the accuracy" has three answers:

- injected: the error an op adds on its own. With the float SavedModel and the calibration set (int8),
  TFLite's QuantizationDebugger builds its NumericVerify debug model, where every quantized op is paired
  with a float op fed the same dequantized inputs; read with preserved tensors, that is measured
  (`layer_snr_db`, `rmse_over_scale`). Without it, the rounding of the op's output to its quantization
  step is the estimate (`rounding_snr_db`): a step that is coarse for the signal (a calibrated range
  stretched by rare outliers) injects much. `ranking` and `share` are of the injected noise-to-signal
  ratios, which add up to first order.
- accumulated (any two .tflite files of one float model): both run with every intermediate tensor kept
  and the default delegates off; each op output of the quantized model is matched by tensor name to the
  float model's (`snr_db`, `cosine`): where the error starts (`first_bad_layer`) and how it spreads.
- growth: the accumulated SNR an op loses beyond its inputs' and its own rounding (`growth_db`,
  `growth_ranking`): an op that injects little can still amplify the noise of its input, as a depthwise
  conv with a large weight on a channel that its per-tensor input quantizes coarsely does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness.analyse.quant_error.layers import accumulated_errors, layerwise_errors
from harness.analyse.quant_error.ranking import CLEAN_SNR_DB, FIRST_BAD_SNR_DB, summarize_layers
from harness.analyse.tensor_error import TOP, ErrorStats
from harness.common import summary
from harness.errors import HarnessError
from harness.models.pipeline import Pipeline


def head_errors(float_model, quant_model, batches: Iterable[np.ndarray],
                progress: Callable[[int], None] | None = None) -> dict:
    """Per-head error of the quantized model's outputs against the float model's, as the eval reads them.

    The models are anything with `predict(batch) -> heads`: Pipelines, or backends.
    """
    stats: dict[str, ErrorStats] = {}
    for n, batch in enumerate(batches, 1):
        fo = float_model.predict(batch)
        qo = quant_model.predict(batch)
        for head, fv in fo.items():
            if head in qo:
                stats.setdefault(head, ErrorStats()).update(fv, qo[head])
        if progress:
            progress(n)
    return {head: s.to_dict() for head, s in stats.items()}


def delta_ap(float_eval: Mapping[str, Any], quant_eval: Mapping[str, Any]) -> dict:
    """AP lost by the quantized model, overall, per object size and per class, from two eval records."""
    reasons = []
    fd, qd = float_eval.get("dataset", {}), quant_eval.get("dataset", {})
    for key in ("annotation_sha256", "image_ids_sha256"):
        if fd.get(key) != qd.get(key):
            reasons.append(f"{key} differs")
    fp, qp = float_eval.get("protocol", {}).get("name"), quant_eval.get("protocol", {}).get("name")
    if fp != qp:
        reasons.append(f"protocol {fp} vs {qp}")
    fpp, qpp = float_eval.get("protocol", {}).get("preprocess"), quant_eval.get("protocol", {}).get("preprocess")
    if fpp and qpp and fpp != qpp:
        diff = sorted(k for k in set(fpp) | set(qpp) if fpp.get(k) != qpp.get(k))
        reasons.append(f"preprocessing differs ({', '.join(diff)})")
    fs, qs = float_eval["results"]["stats"], quant_eval["results"]["stats"]
    overall = {k: {"float": fs[k], "quant": qs[k], "delta": qs[k] - fs[k]}
               for k in ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR100") if k in fs and k in qs}
    per_class: dict[str, dict[str, Any]] = {}
    fc, qc = float_eval["results"].get("per_class", {}), quant_eval["results"].get("per_class", {})
    for name, f in fc.items():
        q = qc.get(name)
        if q is None or f["AP"] < 0:
            continue
        per_class[name] = {k: (q[k] - f[k] if f[k] >= 0 and q[k] >= 0 else None) for k in ("AP", "APs", "APm", "APl")}
        per_class[name]["float_AP"] = f["AP"]
    worst = sorted(per_class, key=lambda n: per_class[n]["AP"])
    return {"like_for_like": not reasons, "reasons": reasons, "overall": overall, "per_class": per_class,
            "worst_classes": worst[:TOP]}


# --------------------------------------------------------------------------------------------------
# The comparison as one run


def compare_models(float_card, float_path: Path, quant_card, quant_path: Path, image_files: Sequence[Path], *,
                   options, saved_model: Path | None = None, calibration=None, sidecar: dict | None = None,
                   threshold_db: float = FIRST_BAD_SNR_DB, quiet: bool = False) -> dict:
    """Per-head and per-layer error of `quant_path` against `float_path`; the body of a quant_compare record."""
    if not image_files:
        raise HarnessError("no images to compare on")
    fp, qp = (Pipeline.open(card, options=options, model_path=Path(path))
              for card, path in ((float_card, float_path), (quant_card, quant_path)))
    # The images as the eval feeds them (the float card's protocol: reading, resize, aspect), the same
    # batches to both.
    batches = [fp.prepare(fp.read(p)).batch for p in image_files]
    heads = head_errors(fp, qp, batches, summary.Progress(len(batches), "heads", enabled=not quiet))
    body: dict = {
        "float_model": {"name": float_card.name, "path": str(float_path), "sha256": fp.model_sha256()},
        "quant_model": {"name": quant_card.name, "path": str(quant_path), "sha256": qp.model_sha256(),
                        "mode": sidecar.get("mode") if sidecar else None,
                        "sidecar": sidecar.get("output", {}).get("path") if sidecar else None},
        "images": {"dir": str(Path(image_files[0]).parent), "count": len(image_files),
                   "files": [Path(p).name for p in image_files]},
        "heads": heads,
        "backends": [fp.describe(), qp.describe()],
    }
    if not (fp.backend.name == qp.backend.name == "tflite"):
        body.update(layers=[], ranking=[], growth_ranking=[], layerwise_ranking=[], first_bad_layer=None,
                    threshold={"metric": "snr_db", "below": threshold_db},
                    method={"accumulated": None, "layerwise": None,
                            "note": "per-layer error needs two .tflite files"})
        return body
    acc = accumulated_errors(float_path, quant_path, batches, options.runtime,
                             summary.Progress(len(batches), "layers", enabled=not quiet))
    mode = body["quant_model"]["mode"] or acc["mode"]
    body["quant_model"]["mode"] = mode
    body["quant_model"]["mode_detected"] = acc["mode"]
    layerwise_note = None
    check = None
    if saved_model is None:
        layerwise_note = "no float SavedModel given (--saved-model): layer-wise error not measured"
    elif acc["mode"] != "int8":
        layerwise_note = f"the QuantizationDebugger builds int8 debug models; this model is {acc['mode']}"
    elif calibration is None:
        layerwise_note = "no calibration set (sidecar record or --calib): layer-wise error not measured"
    else:
        lw = layerwise_errors(saved_model, calibration, lambda: iter(batches), quant_path)
        for layer in acc["layers"]:
            if layer.name in lw["stats"]:
                layer.layerwise = lw["stats"][layer.name]
                layer.layerwise_scale = lw["scales"][layer.name]
        check = lw["quantization_check"]
    body.update(summarize_layers(acc["layers"], acc["input"], threshold_db))
    body["method"] = {
        "accumulated": f"tensor-by-name matching of {Path(float_path).name} and {Path(quant_path).name}, every "
                       f"tensor preserved, default delegates off ({acc['runtime']}); snr_db, cosine, mse, "
                       "max_abs_err, accumulated_rmse_over_scale, rounding_snr_db and growth_db come from it",
        "layerwise": None if layerwise_note else
        "tf.lite.experimental.QuantizationDebugger NumericVerify debug model, read with preserved tensors; "
        "rmse_over_scale and layer_snr_db come from it",
        "note": layerwise_note,
        "injected_snr_db": "layer_snr_db where measured, else rounding_snr_db (signal power over step^2/12)",
        "share": "the op's injected noise-to-signal ratio over their sum (ranking_basis 'injected'), or its "
                 "growth_db over their sum (ranking_basis 'growth', when no activation is quantized)",
        "growth_db": f"accumulated SNR an op loses against the lowest of its worst activation input, its own "
                     f"rounding_snr_db and {CLEAN_SNR_DB:g} dB; 0 when it gains",
    }
    body["quantization_check"] = check
    body["unmatched_ops"] = acc["unmatched"]
    body["calibration"] = calibration.to_dict() if calibration is not None and not layerwise_note else None
    return body


def format_summary(body: dict) -> str:
    """The comparison as the terminal shows it (the CLI prints it): the heads, where the error starts, where
    it is injected and where it grows."""
    fm, qm = body["float_model"], body["quant_model"]
    out = [f"\n{qm['name']} ({qm.get('mode') or 'mode unknown'}) against {fm['name']} on "
           f"{body['images']['count']} images of {body['images']['dir']}",
           summary.table(["head", "cosine", "SNR dB", "MSE", "max |err|"],
                         [(h, s["cosine"], s["snr_db"], f"{s['mse']:.3g}", s["max_abs_err"])
                          for h, s in body["heads"].items()])]
    rows = {r["name"]: r for r in body.get("layers", [])}
    if not rows:
        out.append(body.get("method", {}).get("note") or "")
        return "\n".join(out)
    first = body["first_bad_layer"]
    thr = body["threshold"]["below"]
    if first:
        r = rows[first]
        out.append(f"\nerror starts: op {r['index']} {r['op']} {_short(first)} (accumulated SNR {r['snr_db']} dB, "
                   f"first below {thr} dB)")
    else:
        out.append(f"\nno layer's accumulated SNR falls below {thr} dB")
    out.append("share of the summed error by op type: " + ", ".join(
        f"{op} {v['share']:.0%} ({v['layers']})" for op, v in body["share_by_op"].items() if v["share"] >= 0.01))
    out.append(f"error injected most at (share of the summed {body['ranking_basis']} error):")
    out.append(summary.table(
        ["op", "type", "layer", "injected SNR dB", "share", "cum.", "rmse/scale", "acc. SNR dB"],
        [(rows[n]["index"], rows[n]["op"], _short(n), rows[n]["injected_snr_db"], f"{rows[n]['share']:.1%}",
          f"{rows[n]['cumulative_share']:.1%}", rows[n]["rmse_over_scale"], rows[n]["snr_db"])
         for n in body["ranking"]]))
    out.append("error grows most at (accumulated SNR lost beyond the op's inputs and own rounding):")
    out.append(summary.table(
        ["op", "type", "layer", "SNR ref->out dB", "lost dB", "injected SNR dB"],
        [(rows[n]["index"], rows[n]["op"], _short(n),
          f"{rows[n]['snr_db'] + rows[n]['growth_db']:.1f}->{rows[n]['snr_db']:.1f}", f"{rows[n]['growth_db']:.1f}",
          rows[n]["injected_snr_db"]) for n in body["growth_ranking"]]))
    check = body.get("quantization_check")
    if check and not check["same_model"]:
        out.append(f"note: the debugger's calibration matches {check['equal']} of {check['compared']} tensors of "
                   "the model: its layer-wise numbers describe a re-calibrated model")
    if body["method"].get("note"):
        out.append(f"note: {body['method']['note']}")
    return "\n".join(out)


def _short(name: str, width: int = 60) -> str:
    head = name.split(";")[0]
    return head if len(head) <= width else "..." + head[-(width - 3):]
