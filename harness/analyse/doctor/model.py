"""Why does my model's mAP not match? Run it under its card's protocol and under variants of the path.

The commonest reasons a detector scores below its published number are in the input path and the
decode, not in the network: BGR fed to an RGB model, pixels in [0,1] instead of 0..255, another resize
filter, a letterbox model stretched, EXIF orientation ignored, an int8 input quantized with the wrong
zero point, max-pool peaks where the protocol used NMS, a label map read with an offset. The doctor
runs the same loaded model over a subset of images once per variant (only the input path or the decode
changes, never the weights), scores each with the same evaluator, and reports the variants that score
better, ranked by AP gain; it also runs the results-file checks on what the card's protocol produced,
and says what makes the run unlike its published baseline.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from harness.analyse.doctor.findings import ALARM, MIN_CHANGE, Finding, shortfall_finding, sort_findings
from harness.errors import HarnessError
from harness.measure.runner import as_read
from harness.models.pipeline import Pipeline
from harness.scoring.coco import CocoGroundTruth, ImageInfo
from harness.scoring.evaluator import CocoEvaluator

DEFAULT_IMAGES = 48
# Input scalings people feed by mistake (mean, std per channel, applied as (x - mean) / std to 0..255 pixels).
PIXEL_RANGES: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "[0,255]": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
    "[0,1]": ((0.0, 0.0, 0.0), (255.0, 255.0, 255.0)),
    "[-1,1]": ((127.5, 127.5, 127.5), (127.5, 127.5, 127.5)),
    "ImageNet mean/std": ((123.675, 116.28, 103.53), (58.395, 57.12, 57.375)),
}
RESIZES = ("pillow-bilinear", "cv2-linear", "tf-bilinear", "nearest")
# A variant is a finding only when the paired bootstrap over images says it is worth half a point: the lower
# bound of a two-sided 80% interval (one-sided 90%) of its AP gain is at least ALARM. On 48 images a harmless
# change (such as letterbox instead of stretch for mb3-centernet-f32) can move AP by a point or so, so neither
# a bare gain nor a gain merely above 0 is evidence.
SIGNIFICANCE_LEVEL = 0.8
RESAMPLES = 1000


@dataclass(frozen=True)
class Variant:
    """One change to the card's protocol: the finding it would support, and the fix it stands for."""

    id: str  # the finding id: channel-order, pixel-range, resize, exif, int8-input, decode
    label: str  # what was tried, e.g. "BGR input"
    fix: str
    preprocess: dict | None = None  # Preprocess fields to replace
    decoder_params: dict | None = None  # decoder settings to replace


def variants(pipeline: Pipeline) -> list[Variant]:
    """The variants that make sense for this model: only settings that differ from what the card does."""
    pp = pipeline.preprocess
    out: list[Variant] = []
    other = "bgr" if pp.channels == "rgb" else "rgb"
    out.append(Variant("channel-order", f"{other.upper()} input",
                       f"the model expects {other.upper()}: set the card's input channels='{other}' "
                       f"(in your own code: image[..., ::-1])", {"channels": other}))
    if pp.dtype == "float32":
        current = (tuple(pp.mean), tuple(pp.std))
        for name, (mean, std) in PIXEL_RANGES.items():
            if (mean, std) != current:
                out.append(Variant("pixel-range", f"pixels scaled to {name}",
                                   f"scale the input to {name}: the card's input mean={list(mean)}, std={list(std)}",
                                   {"mean": mean, "std": std}))
    if pp.height is not None:
        for method in RESIZES:
            if method != pp.resize and not (pp.resize == "bilinear" and method == "pillow-bilinear"):
                out.append(Variant("resize", f"resize {method}", f"resize with {method}: the card's input "
                                   f"resize='{method}'", {"resize": method}))
        aspect = "letterbox" if pp.aspect == "stretch" else "stretch"
        out.append(Variant("resize", f"{aspect} instead of {pp.aspect}",
                           f"{aspect} the image to the input size: the card's input aspect='{aspect}' "
                           "(a TF OD API model exported with keep_aspect_ratio_resizer wants letterbox)",
                           {"aspect": aspect}))
    out.append(Variant("exif", "EXIF orientation " + ("ignored" if pp.exif else "applied"),
                       ("ignore" if pp.exif else "apply") + " the EXIF orientation when reading (the card's input "
                       f"exif={not pp.exif}; cv2.imread applies it, Pillow's Image.open does not)",
                       {"exif": not pp.exif}))
    out.extend(_int8_variants(pipeline))
    params = pipeline.decoder_params
    out.extend(_label_map_variants(params.get("class_ids")))
    if "peaks" in params:
        peaks = "nms" if params["peaks"] == "maxpool" else "maxpool"
        extra = {"nms_iou": params.get("nms_iou", 0.5)} if peaks == "nms" else {}
        fix = f"decode with peaks='{peaks}' (a protocol whose decoder settings say so, e.g. --protocol nxp for NMS)"
        out.append(Variant("decode", f"{peaks} peaks", fix, decoder_params={"peaks": peaks, **extra}))
    return out


def _label_map_variants(class_ids: Sequence[int] | None) -> list[Variant]:
    """The class-index -> category-id map read with an offset of one slot, or an 80-class head read through
    a 90-slot label map (index + 1): decode-time variants, so a correction scores exactly what the fix gives."""
    if not class_ids:
        return []
    ids = tuple(class_ids)
    maps = [("class index i read as the next slot's id", ids[1:] + ids[:1], "shift the card's class_ids by one"),
            ("class index i read as the previous slot's id", ids[-1:] + ids[:-1], "shift the card's class_ids by one")]
    if len(ids) == 80:
        maps.append(("80 classes read through a 90-slot label map", tuple(range(1, 81)),
                     "map class index i to category id i + 1 (a 90-slot label map)"))
    return [Variant("label-map", label, f"{fix} (the decoder setting class_ids)", decoder_params={"class_ids": m})
            for label, m, fix in maps if m != ids]


def _int8_variants(pipeline: Pipeline) -> list[Variant]:
    """An integer input quantized as a published pipeline does, whatever scale and zero point the tensor says.

    The backend quantizes a float batch with the tensor's own (scale, zero point): q = round(x / s) + zp.
    Feeding x' = (x - m) * s with m = target offset + zp makes that q = x - target offset, i.e. NXP's
    formula (int8: q = pixel - 128) or raw pixels (uint8: q = pixel), expressed as a mean/std variant.
    """
    desc = pipeline.backend.describe().get("input") or {}
    dtype, quant = desc.get("dtype"), desc.get("quantization") or [0.0, 0]
    scale, zero_point = float(quant[0]), int(quant[1])
    if dtype not in ("int8", "uint8") or not scale or pipeline.preprocess.dtype != "float32":
        return []
    offset, formula = (128, "q = pixel - 128 (NXP's formula)") if dtype == "int8" else (0, "q = pixel")
    mean, std = float(offset + zero_point), 1.0 / scale
    if abs(mean) < 1e-9 and abs(std - 1.0) < 1e-9:
        return []  # the tensor's own quantization is already that formula
    return [Variant("int8-input", f"input quantized as {formula}",
                    f"quantize the {dtype} input as {formula}, not with the tensor's declared scale {scale:g} and "
                    f"zero point {zero_point} (the model was calibrated on that input)",
                    {"mean": (mean,) * 3, "std": (std,) * 3})]


@dataclass
class _Run:
    label: str
    ap: float
    results: list[dict]
    seconds: float


def _run(pipeline: Pipeline, gt: CocoGroundTruth, images: Sequence[ImageInfo], engine: str,
         read: Callable[[ImageInfo], np.ndarray], label: str) -> _Run:
    """Detect on every image and score: the protocol's box convention and threshold, the given engine."""
    proto = pipeline.card.protocol(pipeline.protocol)
    evaluator = CocoEvaluator(gt, engine, proto.box_convention, proto.score_threshold)
    t0 = time.perf_counter()
    for info in images:
        prepared = pipeline.prepare(read(info))
        evaluator.process(as_read(info, prepared), pipeline.decode(pipeline.predict(prepared), prepared))
    result = evaluator.evaluate()
    return _Run(label, result.stats["AP"], evaluator.results, time.perf_counter() - t0)


def doctor_model(card, mirror, coco: str | None, options, protocol: str | None, *, max_images: int = DEFAULT_IMAGES,
                 engine: str = "faster", progress: Callable[[str], None] | None = None) -> dict:
    """`harness doctor MODEL`: open the model under `protocol` (the card's by default) and diagnose it on the
    COCO root `coco` (or the mirror's); returns the doctor record's body."""
    from harness.measure.evaluate import ground_truth
    from harness.models.mirror import root_of

    gt = ground_truth(coco, mirror)
    pipeline = Pipeline.open(card, root_of(mirror), options, protocol)
    if progress:
        progress(f"doctor: {card.name} under protocol '{pipeline.protocol}' and its variants, "
                 f"{min(max_images, len(gt.images))} images")
    return diagnose_model(pipeline, gt, max_images=max_images, engine=engine,
                          progress=(lambda label: progress(f"  trying {label}")) if progress else None)


def diagnose_model(pipeline: Pipeline, gt: CocoGroundTruth, *, max_images: int = DEFAULT_IMAGES,
                   engine: str = "faster", progress: Callable[[str], None] | None = None) -> dict:
    """Run the card's protocol and every variant on the first `max_images` images; return the record body."""
    from harness.analyse.doctor.results import diagnose
    from harness.scoring.baseline import compare

    if max_images < 1:
        raise HarnessError("--max-images must be at least 1")
    images = gt.images[:max_images]
    if not images:
        raise HarnessError(f"{gt.path} lists no images")
    ids = [i.id for i in images]
    t0 = time.perf_counter()
    cache: dict[bool, dict[int, np.ndarray]] = {}

    def reader(p: Pipeline) -> Callable[[ImageInfo], np.ndarray]:
        seen = cache.setdefault(p.preprocess.exif, {})

        def read(info: ImageInfo) -> np.ndarray:
            if info.id not in seen:
                seen[info.id] = p.read(gt.image_path(info), (info.width, info.height))
            return seen[info.id]
        return read

    clean = _run(pipeline, gt, images, engine, reader(pipeline), "card protocol")
    runs: list[tuple[Variant, _Run]] = []
    for v in variants(pipeline):
        if progress:
            progress(v.label)
        pp = dataclasses.replace(pipeline.preprocess, **v.preprocess) if v.preprocess else None
        p = pipeline.variant(preprocess=pp, decoder_params=v.decoder_params)
        runs.append((v, _run(p, gt, images, engine, reader(p), v.label)))
    findings, gains, chosen = _findings(gt, ids, clean, runs)
    found = diagnose(gt, clean.results, ids, engine)
    findings.extend(found.findings)
    together = found.together
    if len(chosen) >= 2:  # several variants worth reporting: all of them at once, one more run
        if progress:
            progress("all variant fixes together")
        combined = _combined(pipeline, chosen)
        run = _run(combined, gt, images, engine, reader(combined), "together")
        together = {"findings": [v.id for v in chosen], "ap_before": clean.ap, "ap_after": run.ap}
    card = pipeline.card
    if card.baseline is not None:
        best = max([clean.ap, *(f.ap_after for f in findings if f.ap_after is not None),
                    *([together["ap_after"]] if together else [])])
        short = shortfall_finding(clean.ap, best, card.baseline.ap / 100,
                                  f"the card's published baseline ({card.baseline.split}, protocol "
                                  f"'{card.baseline.protocol}', on {len(ids)} of its images here)")
        if short:
            findings.append(short)
    dataset = gt.describe(ids)
    return {
        "model": pipeline.card.to_dict(),
        "protocol": {"name": pipeline.protocol, "preprocess": pipeline.preprocess.to_dict(),
                     "decoder": dict(pipeline.decoder_params)},
        "backend": pipeline.describe(),
        "dataset": dataset,
        "engine": engine,
        "ap": clean.ap,
        "variants": [{"id": v.id, "label": v.label, "ap": r.ap, "ap_gain": r.ap - clean.ap,
                      "gain_interval": gains.get(v.label), "seconds": r.seconds} for v, r in runs],
        "comparison": compare(pipeline.card, pipeline.protocol, dataset, clean.ap),
        "findings": [f.to_dict() for f in sort_findings(findings)],
        "together": together,
        "error_profile": found.profile,
        "wall_s": time.perf_counter() - t0,
    }


def _combined(pipeline: Pipeline, chosen: Sequence[Variant]) -> Pipeline:
    """The pipeline with every chosen variant's preprocessing and decoder changes applied at once."""
    pp: dict = {}
    decoder: dict = {}
    for v in chosen:
        pp.update(v.preprocess or {})
        decoder.update(v.decoder_params or {})
    return pipeline.variant(preprocess=dataclasses.replace(pipeline.preprocess, **pp) if pp else None,
                            decoder_params=decoder or None)


def _findings(gt: CocoGroundTruth, ids: list[int], clean: _Run, runs: list[tuple[Variant, _Run]]) -> tuple[
        list[Finding], dict[str, dict], list[Variant]]:
    """Per finding id, the variant that scores best, when the paired bootstrap's lower bound of its AP gain over
    the card's protocol is at least ALARM; returns the findings, each variant's gain with its interval, and the
    variants found."""
    from harness.scoring.bootstrap import paired_delta
    from harness.scoring.matching import match_once

    base = match_once(gt, clean.results, ids)
    gains: dict[str, dict] = {}
    best: dict[str, tuple[Variant, _Run, dict]] = {}
    for v, r in runs:
        if r.ap - clean.ap < MIN_CHANGE:
            continue
        d = paired_delta(base, match_once(gt, r.results, ids), resamples=RESAMPLES, level=SIGNIFICANCE_LEVEL)["AP"]
        gains[v.label] = {"point": d["point"], "lo": d["lo"], "hi": d["hi"], "level": SIGNIFICANCE_LEVEL}
        if d["lo"] >= ALARM and (v.id not in best or r.ap > best[v.id][1].ap):
            best[v.id] = (v, r, d)
    out = []
    for v, r, d in best.values():
        out.append(Finding(v.id, clean.ap, r.ap, f"{v.label}: AP {100 * clean.ap:.2f} -> {100 * r.ap:.2f} on "
                           f"{len(ids)} images (gain {100 * d['point']:+.2f}, {SIGNIFICANCE_LEVEL:.0%} interval "
                           f"[{100 * d['lo']:+.2f}, {100 * d['hi']:+.2f}])", v.fix))
    return out, gains, [v for v, _, _ in best.values()]
