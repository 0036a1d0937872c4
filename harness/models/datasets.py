"""Dataset manifests (datasets/*.json) and the verified download of the archives they name into the cache.

A manifest that names an archive says where it is served, its size and sha256, where those values come
from, and which member folder is unpacked where: `coco-val2017` puts val2017/ and `coco-annotations-2017`
puts annotations/ under <cache>/coco/, which is then a COCO root in the official layout. Downloading,
resuming, verifying and unpacking are harness.models.fetch's; this module only reads manifests and says
what each fetch did, so a command can print it.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.models.fetch import cache_root, downloads_recorded, fetch_archive
from harness.models.mirror import COCO_DIR, CocoRoot

MANIFESTS_ENV = "HARNESS_DATASETS"
COCO_VAL = ("coco-annotations-2017", "coco-val2017")  # what `--coco auto` fetches


def manifests_dir() -> Path:
    """$HARNESS_DATASETS, else the datasets/ folder of this source checkout, else the copy a wheel installs
    under <prefix>/share/centernet-harness/datasets (pyproject's data-files)."""
    value = os.environ.get(MANIFESTS_ENV)
    if value:
        return Path(value).expanduser()
    checkout = Path(__file__).resolve().parents[2] / "datasets"
    installed = Path(sys.prefix) / "share" / "centernet-harness" / "datasets"
    return checkout if checkout.is_dir() or not installed.is_dir() else installed


@dataclass(frozen=True)
class DatasetArchive:
    """One downloadable dataset archive, as its manifest describes it."""

    name: str
    description: str
    url: str
    size: int | None  # None with sha256 None: nothing published, both pinned on first download
    sha256: str | None
    member: str  # the archive's top folder that is kept (val2017, annotations)
    into: str  # where under the cache it goes: <cache>/<into>/<member>
    files: int | None  # how many files the member folder must hold (None: not checked)
    required: tuple[str, ...]  # files the member folder must hold
    provenance: str
    confirmed: bool  # False: the published values, not yet checked against a real download

    @classmethod
    def load(cls, name: str, directory: Path | None = None) -> DatasetArchive:
        directory = directory or manifests_dir()
        path = directory / f"{name}.json"
        if not path.is_file():
            known = ", ".join(available(directory)) or "none"
            raise HarnessError(f"no dataset manifest {path} (downloadable datasets: {known}; "
                               f"${MANIFESTS_ENV} names another folder of manifests)")
        try:
            data = json.loads(path.read_text())
            archive, unpack = data["archive"], data["unpack"]
            size, sha = archive["size"], archive["sha256"]
            if (size is None) != (sha is None):
                raise ValueError("size and sha256 are both given or both null (pinned on first download)")
            return cls(data["name"], data.get("description", ""), archive["url"],
                       None if size is None else int(size), None if sha is None else str(sha).lower(),
                       unpack["member"], unpack.get("into", COCO_DIR),
                       unpack.get("files"), tuple(unpack.get("required", ())), archive.get("provenance", ""),
                       bool(archive.get("confirmed", False)))
        except (ValueError, KeyError, TypeError) as exc:
            raise HarnessError(f"{path} is not a dataset archive manifest ({exc.__class__.__name__}: {exc}); "
                               "it needs name, archive {url, size, sha256} and unpack {member}") from None

    def target(self, cache: Path) -> Path:
        return cache / self.into / self.member

    def check_unpacked(self, unpacked: Path) -> Path:
        """The member folder, if the archive held what the manifest promises (else nothing is kept)."""
        root = unpacked / self.member
        if not root.is_dir():
            raise HarnessError(f"{self.name}: the archive has no {self.member}/ folder")
        missing = [f for f in self.required if not (root / f).is_file()]
        if missing:
            raise HarnessError(f"{self.name}: the archive lacks {self.member}/{missing[0]}")
        if self.files is not None:
            count = sum(1 for p in root.rglob("*") if p.is_file())
            if count != self.files:
                raise HarnessError(f"{self.name}: {self.member}/ holds {count} files, the manifest says {self.files}")
        return root


def available(directory: Path | None = None) -> list[str]:
    """The names of the archive manifests in `directory` (manifests without an archive are skipped)."""
    directory = directory or manifests_dir()
    names = []
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            if "archive" in json.loads(path.read_text()):
                names.append(path.stem)
        except ValueError:
            continue
    return names


def fetch_dataset(name: str, cache: Path | None = None, *, progress: bool | None = None) -> dict:
    """Download, verify (size, sha256) and unpack one dataset archive once; say what happened.

    Returns {name, kind, path, downloaded, bytes, sha256, url, from, confirmed}: `downloaded` False is a
    cache hit (the unpacked folder exists, so it was verified when it was made).
    """
    from harness.models.pins import pin_archive, read_pins

    manifest = DatasetArchive.load(name)
    cache = cache or cache_root()
    sha256, size, origin = manifest.sha256, manifest.size, "the manifest"
    pin = read_pins(cache).get(manifest.url) if sha256 is None else None
    if pin is not None:  # published nowhere, pinned by the first download: a later one must be the same file
        sha256, size, origin = pin["sha256"], pin["bytes"], f"the pin of its first download ({pins_note(cache)})"
    with downloads_recorded() as got:
        path = fetch_archive(manifest.url, cache, sha256, area=manifest.into, key=manifest.member,
                             pick=manifest.check_unpacked, size=size, progress=progress, origin=origin)
    pinned = "verified" if pin is not None else False
    if got and sha256 is None:
        pin = pin_archive(cache, manifest.url, got[-1]["sha256"], got[-1]["bytes"])
        sha256, size, pinned = pin["sha256"], pin["bytes"], "new"
    item = {"name": name, "kind": "dataset", "path": str(path), "downloaded": bool(got), "bytes": size,
            "sha256": sha256, "url": manifest.url, "confirmed": manifest.confirmed,
            "pinned": pinned}
    if got:
        item["from"] = got[-1]["from"]
    return item


def pins_note(cache: Path) -> str:
    from harness.models.pins import pins_path

    return str(pins_path(cache))


def coco_auto(cache: Path | None = None, *, progress: bool | None = None) -> tuple[CocoRoot, list[dict]]:
    """The full val2017 and its annotations in the cache, fetched if missing: the COCO root and what was done."""
    cache = cache or cache_root()
    items = [fetch_dataset(name, cache, progress=progress) for name in COCO_VAL]
    roots = {Path(item["path"]).parent for item in items}
    if len(roots) != 1:
        raise HarnessError(f"the manifests of {' and '.join(COCO_VAL)} unpack into different folders "
                           f"({', '.join(map(str, sorted(roots)))}); give both the same unpack.into")
    return CocoRoot(roots.pop()), items
