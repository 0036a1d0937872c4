"""COCO test-dev2017: detections for the evaluation server, which alone holds the ground truth.

test-dev2017 is listed by `annotations/image_info_test-dev2017.json` (images and categories, no annotations;
its 20,288 images lie in test2017/). No AP can be computed here, so a run ends in the file the server takes:
the results JSON named `detections_test-dev2017_[alg]_results.json`, inside a zip of the same stem, and
checked first as the server checks an upload (every listed image has detections, category ids are the
file's, at most 100 detections an image, entries in the results format). The AP comes from the server.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from harness.common.fileio import write_bytes_atomic
from harness.errors import HarnessError
from harness.scoring.coco import CocoGroundTruth, ImageInfo, check_results

SPLIT = "test-dev2017"
IMAGES_DIR = "test2017"  # test-dev2017 is a subset of the test2017 images
MAX_PER_IMAGE = 100
SERVER = "the COCO detection evaluation server (test-dev2017 ground truth is not public)"
_ALG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+-]*$")  # no "_": the server splits the file name on it


def image_info_path(root: Path) -> Path:
    return root / "annotations" / f"image_info_{SPLIT}.json"


def load_image_info(root: Path) -> CocoGroundTruth:
    """The images and categories of test-dev2017 under a COCO root, with the images folder beside them."""
    path = image_info_path(root)
    if not path.is_file():
        raise HarnessError(f"{path} not found: test-dev2017 needs annotations/image_info_{SPLIT}.json and "
                           f"{IMAGES_DIR}/ under --coco (harness fetch coco-image-info-test2017 coco-test2017)")
    return CocoGroundTruth(path, root / IMAGES_DIR, image_info=True)


def submission_stem(alg: str) -> str:
    """`detections_test-dev2017_[alg]_results`, the name the server expects (alg without underscores)."""
    alg = alg.replace("_", "-")
    if not _ALG.match(alg):
        raise HarnessError(f"algorithm name {alg!r} cannot go into a COCO results file name; use letters, digits, "
                           "'.', '+' and '-'")
    return f"detections_{SPLIT}_{alg}_results"


def check_submission(results: list[dict], info: CocoGroundTruth, images: Sequence[ImageInfo] | None = None) -> dict:
    """The server's checks, in one line each when one fails; returns what was checked (for the record).

    `images`: the images the results cover (default: all of the split; fewer for a try-out run).
    """
    images = info.images if images is None else images
    check_results(results, info, "test-dev results")
    per_image = Counter(r["image_id"] for r in results)
    missing = [i.id for i in images if i.id not in per_image]
    if missing:
        raise HarnessError(f"test-dev results: {len(missing)} of the {len(images)} images have no detection "
                           f"(e.g. image {missing[0]}); the server needs every image of {SPLIT}")
    worst, most = max(per_image.items(), key=lambda kv: kv[1]) if per_image else (None, 0)
    if most > MAX_PER_IMAGE:
        raise HarnessError(f"test-dev results: image {worst} has {most} detections; the server takes at most "
                           f"{MAX_PER_IMAGE} an image")
    return {"images": len(images), "detections": len(results), "most_per_image": most,
            "every_image_present": True, "categories_valid": True, "max_per_image": MAX_PER_IMAGE}


def write_submission(results: list[dict], out: Path, alg: str) -> Path:
    """The zip the server takes, `<stem>.zip` holding `<stem>.json`, written atomically; returns its path."""
    import json

    stem = submission_stem(alg)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(f"{stem}.json", json.dumps(results, separators=(",", ":")))
    return write_bytes_atomic(out / f"{stem}.zip", buffer.getvalue())
