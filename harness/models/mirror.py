"""The local mirror's layout, spelled out once (see ../shared/mirror/README.md).

Air-gapped boards and CI read models and COCO from a mirror instead of the official sites. Every
command that needs "the mirror's val2017" or "the mirror's calibration list" asks a `Mirror`, so the
layout lives in this one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.models.fetch import MIRROR_ENV, mirror_root

COCO_DIR = "coco"
MODELS_DIR = "models"
VAL_SPLIT = "val2017"
TRAIN_SPLIT = "train2017"
UNLABELED_DIR = "val2017_unlabeled"  # real val2017 images without ground truth: latency, calibration
NXP_CALIBRATION_LIST = "calibration_nxp_recipe_100.json"  # raw_int8.tflite's calibration images, in order


@dataclass(frozen=True)
class CocoRoot:
    """A COCO directory in the official layout: <split>/ images beside annotations/instances_<split>.json."""

    root: Path

    def annotations(self, split: str = VAL_SPLIT) -> Path:
        return self.root / "annotations" / f"instances_{split}.json"

    def images(self, split: str = VAL_SPLIT) -> Path:
        return self.root / split

    def check(self) -> CocoRoot:
        """Fail in one line when the root is not there (the annotation file is checked by its reader)."""
        if not self.root.is_dir():
            raise HarnessError(f"COCO root not found: {self.root}")
        return self


@dataclass(frozen=True)
class Mirror:
    """A mirror root: coco/ (val2017, val2017_unlabeled, train2017, annotations) and models/."""

    root: Path

    @classmethod
    def find(cls, option: str | Path | None) -> Mirror | None:
        """The mirror from --mirror, else $HARNESS_MIRROR, else None; a named one must be a directory."""
        root = mirror_root(option)
        return cls(root) if root is not None else None

    @classmethod
    def require(cls, option: str | Path | None, message: str | None = None) -> Mirror:
        """Like find, for commands that cannot run without one; `message` is the error when there is none."""
        mirror = cls.find(option)
        if mirror is None:
            raise HarnessError(message or f"this needs the mirror: --mirror DIR or ${MIRROR_ENV}")
        return mirror

    @property
    def coco(self) -> CocoRoot:
        return CocoRoot(self.root / COCO_DIR)

    @property
    def val_images(self) -> Path:
        """The labelled val2017 subset: what mAP is measured on."""
        return self.coco.images(VAL_SPLIT)

    @property
    def val_annotations(self) -> Path:
        return self.coco.annotations(VAL_SPLIT)

    @property
    def unlabeled_images(self) -> Path:
        """Other val2017 images, never scored: latency runs and calibration."""
        return self.coco.root / UNLABELED_DIR

    @property
    def train_images(self) -> Path:
        return self.coco.images(TRAIN_SPLIT)

    @property
    def nxp_calibration_list(self) -> Path:
        """The 100 files of unlabeled_images that calibrated models/mb3-centernet/raw_int8.tflite, in order."""
        return self.coco.root / NXP_CALIBRATION_LIST

    @property
    def models(self) -> Path:
        return self.root / MODELS_DIR


def root_of(mirror: Mirror | None) -> Path | None:
    """The root path, for the model resolver (harness.models.fetch), which takes a plain path."""
    return mirror.root if mirror is not None else None
