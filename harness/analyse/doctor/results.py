"""Why is this results file's mAP low? Named causes, each checked by fixing it and scoring again.

A results file with a convention wrong (image ids in another numbering, category ids shifted, boxes as
corners, normalised, in the model's input frame, x and y swapped, negative sizes, a score threshold,
scores that cannot rank, more than 100 detections an image, images missing, duplicates) scores badly
without any error. The doctor reads the file leniently, measures cheap evidence for every known cause
on a sample (harness.analyse.doctor.evidence), and scores again, with the faster engine, only the
corrections the evidence suggests. Each finding reports AP before and after its correction (fractions,
like the stats), one line of evidence and the fix; flags that no correction can score (a threshold, tied
scores, nothing to score) have no `ap_after`. With two or more corrections, all of them are applied
together and scored once more ("together"): faults that each hide the other's fix show their sum there.
Given an expected AP (a card's baseline, or the user's), an AP still far below it after every correction
is a finding of its own, not silence.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.analyse.doctor import checks
from harness.analyse.doctor import evidence as ev
from harness.analyse.doctor.conventions import BOX_FIXES, category_remaps
from harness.analyse.doctor.findings import MIN_CHANGE, Finding, shortfall_finding, sort_findings
from harness.analyse.doctor.reading import read_results_leniently, usable_entries
from harness.scoring.coco import CocoGroundTruth
from harness.scoring.evaluator import score_results

# Missing images are reported when more than this fraction of annotated images has no detection
# (a model may legitimately find nothing in an odd image).
MISSING_FRACTION = 0.02
# Boxes the input-frame evidence looks at (of the sample): 36 frames are tried.
FRAME_SAMPLE = 1000
# The order in which corrections are applied together: ids first, then fields, then list-level fixes.
TOGETHER_ORDER = ("image-ids", "category", "box", "box-impossible", "duplicates", "max-detections")
Transform = Callable[[list[dict]], list[dict]]


# --------------------------------------------------------------------------------------------------
# The diagnosis


@dataclass
class Diagnosis:
    """The findings, most AP first, and every correction applied together (None with fewer than two)."""

    findings: list[Finding]
    together: dict | None = None
    profile: dict | None = None  # harness.analyse.doctor.errors.profile: which error type costs most


def _boxes(fn: ev.BoxFix, size: dict[int, tuple[int, int]]) -> Transform:
    return lambda es: [{**r, "bbox": fn(r["bbox"], size.get(r["image_id"], (1, 1)))} for r in es]


class _Doctor:
    """One diagnosis: the file's entries, the images scored, and the corrections found so far by group."""

    def __init__(self, gt: CocoGroundTruth, entries: list[dict], ids: list[int], engine: str) -> None:
        self.gt, self.entries, self.ids, self.engine = gt, entries, ids, engine
        self.idset = set(ids)
        self.known_images = {i.id for i in gt.images}
        self.index = ev.GtIndex(gt, ids)
        self.findings: list[Finding] = []
        self.fixes: dict[str, tuple[float, str, Transform]] = {}  # group -> (AP after, finding id, transform)
        self.on: list[int] | None = None  # the images a missing-images correction scores on
        self.raw = entries  # as the file has them; `entries` become renumbered when the image ids were wrong
        self.before = self.raw_before = self.score(entries)
        self.sample = ev.sample(entries, self.idset)

    def renumber(self) -> None:
        """Go on with the image ids corrected: every later finding is about the renumbered file."""
        self.entries = self.fixes["image-ids"][2](self.raw)
        self.before = self.score(self.entries)
        self.sample = ev.sample(self.entries, self.idset)

    def score(self, res: list[dict], on: Sequence[int] | None = None) -> float:
        res = [r for r in res if r["image_id"] in self.known_images and r["category_id"] in self.gt.categories]
        return float(score_results(self.gt, res, self.ids if on is None else on, self.engine).stats["AP"])

    def add(self, finding: Finding, group: str | None = None, transform: Transform | None = None) -> None:
        """Record a finding; a scored one with a transform is a candidate for its group's correction."""
        self.findings.append(finding)
        if (group and transform and finding.ap_after is not None and finding.change >= MIN_CHANGE
                and (group not in self.fixes or finding.ap_after > self.fixes[group][0])):
            self.fixes[group] = (finding.ap_after, finding.id, transform)

    # Image ids --------------------------------------------------------------------------------------

    def image_ids(self) -> bool:
        """Image ids in another numbering (positions, file-name numbers); True when one was found."""
        unknown = sum(r["image_id"] not in self.known_images for r in self.entries)
        covered = {r["image_id"] for r in self.entries} & self.idset
        if unknown <= MISSING_FRACTION * len(self.entries) and len(covered) >= (1 - MISSING_FRACTION) * len(self.ids):
            return False
        base = ev.box_rate(self.sample, self.index)
        best = None
        for mapping, what in checks.image_id_maps(self.gt).values():
            mapped = checks.remap_images(self.entries, mapping)
            rate = ev.box_rate(ev.sample(mapped, self.idset), self.index)
            if ev.suggests(rate, base) and (best is None or rate > best[0]):
                best = (rate, mapping, mapped, what)
        if best is None:
            return False
        rate, mapping, mapped, what = best
        after = self.score(mapped)
        if after - self.before < MIN_CHANGE:
            return False

        def renumber(es: list[dict], m: dict[int, int] = mapping) -> list[dict]:
            return checks.remap_images(es, m)

        self.add(Finding("image-ids", self.before, after,
                         f"image ids are {what}: {unknown} of {len(self.entries)} detections name an image id the "
                         f"annotation file does not have; {base:.0%} of the sampled boxes overlap a ground-truth "
                         f"box (IoU >= 0.5) as given, {rate:.0%} after renumbering",
                         "write each image's `id` from the annotation file's `images`, not its position or "
                         "file name"), "image-ids", renumber)
        return True

    # Categories -------------------------------------------------------------------------------------

    def categories(self) -> None:
        gt, entries = self.gt, self.entries
        base = ev.category_rate(self.sample, self.index)
        unknown = sum(1 for r in entries if r["category_id"] not in gt.categories)
        remaps = category_remaps(sorted(gt.categories))
        rated = sorted(((ev.category_rate(self.sample, self.index, fn), name) for name, (_, fn, _, _) in
                        remaps.items()), reverse=True)
        scored = False
        for rate, name in rated[:2]:
            if not ev.suggests(rate, base):
                continue
            fid, fn, what, fix = remaps[name]

            def remap(es: list[dict], fn: Callable[[int], int | None] = fn) -> list[dict]:
                return [{**r, "category_id": c} for r in es if (c := fn(r["category_id"])) is not None]

            after = self.score(remap(entries))
            if after - self.before >= MIN_CHANGE:
                scored = True
                self.add(Finding(fid, self.before, after,
                                 f"{what}: {base:.0%} of the sampled detections name a class annotated in their "
                                 f"image as given, {rate:.0%} after the fix"
                                 + (f"; {unknown} detections use ids the annotation file does not define"
                                    if unknown else ""), fix), "category", remap)
        if unknown and not scored:
            examples = sorted({r["category_id"] for r in entries if r["category_id"] not in gt.categories})[:5]
            self.add(Finding("category-unknown", None, None,
                             f"{unknown} of {len(entries)} detections use category ids {examples} that "
                             f"{gt.path.name} does not define; COCO eval ignores them",
                             "write the annotation file's category ids (see its 'categories')"))

    # Boxes ------------------------------------------------------------------------------------------

    def box_conventions(self) -> None:
        """Every box convention, and the best input frame, whose overlap evidence beats the file's own."""
        base = ev.box_rate(self.sample, self.index)
        size = self.index.size
        candidates = [(fid, fn, what, fix, ev.box_rate(self.sample, self.index, fn))
                      for fid, (fn, what, fix) in BOX_FIXES.items()]
        frame = self._best_frame(base)
        if frame:
            candidates.append(frame)
        for fid, fn, what, fix, rate in candidates:
            if not ev.suggests(rate, base):
                continue
            after = self.score(_boxes(fn, size)(self.entries))
            if after - self.before >= MIN_CHANGE:
                self.add(Finding(fid, self.before, after,
                                 f"{what}: {base:.0%} of the sampled boxes overlap a ground-truth box (IoU >= 0.5) "
                                 f"as given, {rate:.0%} after the fix", fix), "box", _boxes(fn, size))

    def _best_frame(self, base: float) -> tuple | None:
        """The input frame (side, stretched or letterboxed) whose correction the overlap evidence favours most."""
        few = self.sample[:FRAME_SAMPLE]
        best = None
        for name, (fn, what) in checks.frame_fixes().items():
            if not checks.fits_frame(few, int(name.split("-")[0])):
                continue
            rate = ev.box_rate(few, self.index, fn)
            if best is None or rate > best[-1]:
                best = ("box-frame", fn, f"boxes are in {what}, not the original image's pixels",
                        "map the boxes back to the original image: undo the resize (and the letterbox's padding) "
                        "the model's input went through", rate)
        return best if best and ev.suggests(best[-1], ev.box_rate(few, self.index)) else None

    def impossible_boxes(self) -> None:
        """Negative or zero sizes, boxes outside their image: after the box correction, if one was found."""
        size = self.index.size
        box_fix = self.fixes.get("box")
        boxed = box_fix[2](self.entries) if box_fix else self.entries
        faults = checks.box_faults(boxed, size)
        n = len(boxed)
        share = checks.OUTSIDE_SHARE * n  # a degenerate box now and then is a model's; a negative size never is
        if not (faults["negative"] or faults["zero"] > share or faults["outside"] > share):
            return
        parts, fixes, steps = [], [], []
        if faults["negative"]:
            sampled = ev.sample(boxed, self.idset)
            _, name = max((ev.box_rate(sampled, self.index, fn), name) for name, (fn, _) in checks.SIGN_FIXES.items())
            fn, text = checks.SIGN_FIXES[name]
            parts.append(f"{faults['negative']} of {n} boxes have a negative width or height")
            fixes.append(text)
            steps.append(_boxes(fn, size))
        if faults["zero"]:
            parts.append(f"{faults['zero']} have a zero width or height (they can match nothing)")
            fixes.append("drop boxes of zero size")
        if faults["outside"]:
            parts.append(f"{faults['outside']} pass their image's edge by more than {checks.OUTSIDE_PX:g} px and "
                         f"{checks.OUTSIDE_FRACTION_OF_SIDE:.0%} of its side (judged with the annotation file's "
                         "image sizes)")
            fixes.append("clip boxes to the image; if many are far outside, the boxes are in another frame")
            steps.append(_boxes(checks.clip_box, size))

        def repair(es: list[dict], steps: list[Transform] = steps) -> list[dict]:
            for step in steps:
                es = step(es)
            return es

        before = self.score(boxed) if box_fix else self.before
        after = self.score(repair(boxed)) if steps else before
        scored = after - before >= MIN_CHANGE
        note = f" (after the {box_fix[1]} correction)" if box_fix else ""
        self.add(Finding("box-impossible", before, after if scored else None, "; ".join(parts) + note,
                         "; ".join(fixes)), "box-impossible", repair if scored else None)

    # Lists: duplicates, too many, missing, cut, tied -----------------------------------------------

    def lists(self) -> None:
        entries, ids = self.entries, self.ids
        unique = checks.dedupe(entries)
        if len(unique) < len(entries):
            dup = len(entries) - len(unique)
            self.add(Finding("duplicates", self.before, self.score(unique),
                             f"{dup} of {len(entries)} detections repeat another exactly (image, category, box, "
                             "score); each copy is a false positive",
                             "write each detection once (merged shards or a resumed run appended twice?)"),
                     "duplicates", checks.dedupe)
        per_image = Counter(r["image_id"] for r in entries)
        over = {i: n for i, n in per_image.items() if n > checks.MAX_DETS}
        if over:
            most = checks.MAX_DETS
            self.add(Finding("max-detections", self.before, self.score(checks.cap(entries)),
                             f"{len(over)} images have more than {most} detections (up to {max(over.values())}); "
                             f"COCO eval keeps {most} per image *per category*, so the extra ones count, unlike "
                             f"the {most}-per-image rule of published AP",
                             f"keep the {most} best-scored detections of each image"), "max-detections", checks.cap)
        covered = {r["image_id"] for r in entries}
        missing = [i for i in ids if i not in covered]
        strangers = covered - self.known_images
        ties = checks.score_ties(entries)
        if ties:
            _, text = ties
            self.add(Finding("scores-tied", None, None,
                             f"{text}: the ranking is lost (COCO AP orders detections by score; ties fall back to "
                             "the file's order), so precision at each recall is not the model's",
                             "write each detection's own confidence (not a constant, a class flag or a rounded value)"))
        # A score threshold: nothing below a clearly positive score, few detections per image, and scores that
        # do rank (a constant score is no cut). Images left empty by the cut are its symptom, reported here.
        thresholded = False
        low = min(r["score"] for r in entries)
        full = sum(1 for n in per_image.values() if n >= checks.MAX_DETS)
        if low >= 0.05 and full < 0.5 * max(len(per_image), 1) and not ties:
            thresholded = True
            med = sorted(per_image.values())[len(per_image) // 2]
            empty = f"; {len(missing)} of {len(ids)} annotated images have none left" if missing else ""
            self.add(Finding("score-threshold", None, None,
                             f"no detection scores below {low:.3f}; median {med:g} detections per image{empty}: "
                             "the file was cut at a threshold, which lowers AP (recall is lost)",
                             "write every detection down to score 0 (the decoder's top 100), no threshold"))
        if len(missing) > MISSING_FRACTION * len(ids) and covered & self.idset and not thresholded:
            on = [i for i in ids if i in covered]
            after = self.score(entries, on)
            self.on = on if after - self.before >= MIN_CHANGE else None
            self.add(Finding("missing-images", self.before, after,
                             f"{len(missing)} of {len(ids)} annotated images have no detection (e.g. {missing[:3]}); "
                             f"their objects all count as missed. AP after: scored on the {len(on)} images present"
                             + (f"; {len(strangers)} result images are not in the annotations" if strangers else ""),
                             "run every image of the annotation file, or score only the images you ran"))
        elif strangers:
            self.add(Finding("missing-images", None, None,
                             f"{len(strangers)} result images are not in {self.gt.path.name} (e.g. "
                             f"{sorted(strangers)[:3]}); COCO eval ignores them",
                             "check the image ids: results must use the annotation file's image ids"))

    def together(self) -> dict | None:
        """Every group's best correction applied in TOGETHER_ORDER (and the missing-images subset), scored once."""
        if len(self.fixes) + (self.on is not None) < 2:
            return None
        fixed = self.raw
        used = []
        for group in TOGETHER_ORDER:
            if group in self.fixes:
                fixed = self.fixes[group][2](fixed)
                used.append(self.fixes[group][1])
        if self.on is not None:
            used.append("missing-images")
        return {"findings": used, "ap_before": self.raw_before, "ap_after": self.score(fixed, self.on)}


def _empty(gt: CocoGroundTruth, total: int, entries: list[dict], ids: list[int]) -> Finding:
    if not entries:
        what = "the file holds no detections" if not total else f"none of its {total} entries is a bbox detection"
    else:
        theirs = sorted({r["image_id"] for r in entries})[:3]
        what = (f"none of its {len(entries)} detections is for one of the {len(ids)} images scored (result image "
                f"ids e.g. {theirs}; {gt.path.name} has e.g. {ids[:3]})")
    return Finding("empty-results", None, None, f"nothing to score: {what}",
                   "check that the run wrote its detections, and that they use the annotation file's image ids")


def diagnose(gt: CocoGroundTruth, results: Sequence[object], image_ids: Sequence[int] | None = None,
             engine: str = "faster", notes: Sequence[str] = (), expected: float | None = None,
             expected_from: str = "the expected AP") -> Diagnosis:
    """Name what is wrong with a results list, most AP first, and score every correction together.

    `results` is the parsed JSON list (read leniently: entries that are not detections are left out and
    reported). `image_ids` default: every image of the annotation file (as `harness eval --results`). `expected`
    (a fraction, from `expected_from`) adds a finding when even the corrected AP stays far below it.
    """
    entries, dropped = usable_entries(list(results))
    malformed = [Finding("malformed", None, None, note, "write entries as {image_id, category_id, "
                         "bbox: [x, y, w, h], score}") for note in [*notes, *dropped]]
    ids = [i.id for i in gt.images] if image_ids is None else list(image_ids)
    if not entries:
        return Diagnosis(sort_findings([_empty(gt, len(results), entries, ids), *malformed]))
    doc = _Doctor(gt, entries, ids, engine)
    renumbered = doc.image_ids()
    if not renumbered and not {r["image_id"] for r in entries} & doc.idset:
        return Diagnosis(sort_findings([_empty(gt, len(results), entries, ids), *malformed]))
    if renumbered:  # the images are all there under other numbers; the other checks need them right
        doc.renumber()
    doc.categories()
    doc.box_conventions()
    doc.impossible_boxes()
    doc.lists()
    doc.findings.extend(malformed)
    together = doc.together()
    if expected is not None:
        best = max([doc.raw_before, *(f.ap_after for f in doc.findings if f.ap_after is not None),
                    *([together["ap_after"]] if together else [])])
        short = shortfall_finding(doc.raw_before, best, expected, expected_from)
        if short:
            doc.findings.append(short)
    from harness.analyse.doctor.errors import profile_of

    known = [r for r in doc.entries if r["image_id"] in doc.known_images and r["category_id"] in gt.categories]
    return Diagnosis(sort_findings(doc.findings), together, profile_of(gt, known, ids))


def diagnose_results(gt: CocoGroundTruth, results: Sequence[object], image_ids: Sequence[int] | None = None,
                     engine: str = "faster", notes: Sequence[str] = ()) -> list[Finding]:
    """The findings of `diagnose`, most AP first."""
    return diagnose(gt, results, image_ids, engine, notes).findings


def doctor_record_body(findings: Sequence[Finding], gt: CocoGroundTruth, results_path: str | Path | None,
                       detection_count: int, image_ids: Sequence[int] | None = None, engine: str = "faster",
                       wall_s: float | None = None, together: dict | None = None,
                       expected: dict | None = None) -> dict:
    """The body of a kind-"doctor" record: the dataset, the file examined, the findings by impact, and every
    correction applied together (`together`, None with fewer than two); `expected`: {ap, from} when given."""
    ids = [i.id for i in gt.images] if image_ids is None else list(image_ids)
    return {
        "dataset": gt.describe(ids),
        "results_file": str(results_path) if results_path is not None else None,
        "detection_count": detection_count,
        "engine": engine,
        "evidence": {"sample_per_image": ev.SAMPLE_PER_IMAGE, "sample_images": ev.SAMPLE_IMAGES,
                     "min_change": MIN_CHANGE},
        "wall_s": wall_s,
        "expected": expected,
        "findings": [f.to_dict() for f in sort_findings(list(findings))],
        "together": together,
    }


def doctor_file(gt: CocoGroundTruth, results_path: str | Path, image_ids: Sequence[int] | None = None,
                engine: str = "faster", expected: float | None = None) -> tuple[list[Finding], dict]:
    """Read a results file leniently, diagnose it, and return the findings with their record body.

    `expected`: the AP (a fraction) the user expects of the file (`harness doctor --expect`).
    """
    t0 = time.perf_counter()
    results, notes = read_results_leniently(results_path)
    where = "the expected AP (--expect)"
    d = diagnose(gt, results, image_ids, engine, notes, expected, where)
    body = doctor_record_body(d.findings, gt, results_path, len(results), image_ids, engine,
                              time.perf_counter() - t0, d.together,
                              None if expected is None else {"ap": expected, "from": where})
    body["error_profile"] = d.profile
    return d.findings, body
