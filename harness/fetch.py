"""Find a model's files: a local path, a mirror directory, or a download into the cache.

Downloads are real code even though these machines cannot reach the official hosts: the tests serve
archives from a loopback HTTP server. A TF Hub handle is fetched as the compressed SavedModel that
tfhub.dev and Kaggle Models serve, without the tensorflow_hub package (which drags in full TensorFlow).
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from harness.errors import HarnessError
from harness.fileio import sha256_file
from harness.zoo import ModelCard, Source

MIRROR_ENV = "HARNESS_MIRROR"
CACHE_ENV = "HARNESS_CACHE"


def mirror_root(option: str | Path | None) -> Path | None:
    """The mirror from --mirror, else $HARNESS_MIRROR, else none; it must be a directory."""
    value = option if option is not None else os.environ.get(MIRROR_ENV) or None
    if value is None:
        return None
    root = Path(value).expanduser()
    if not root.is_dir():
        where = "--mirror" if option is not None else f"${MIRROR_ENV}"
        raise HarnessError(f"mirror directory not found: {root} (from {where})")
    return root


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "centernet-harness").expanduser()


def resolve_model(card: ModelCard, mirror: Path | None, cache: Path | None = None) -> Path:
    """The local path of the card's model: its own path, the mirror's copy, or a fresh download."""
    src = card.source
    if src.url is None and src.mirror_path is None:  # a model given as a path
        path = Path(src.note)
        if not path.exists():
            raise HarnessError(f"model not found: {path}")
        return path
    if mirror is not None and src.mirror_path:
        path = mirror / src.mirror_path
        if path.exists():
            if src.sha256 and path.is_file():
                verify_sha256(path, src.sha256)
            return path
        if src.url is None:
            raise HarnessError(f"{card.name} is not in the mirror (looked for {path}); {src.note}")
    if src.url is None:
        raise HarnessError(f"{card.name} has no download address: give --mirror DIR with "
                           f"{src.mirror_path} in it, or the model's path; {src.note}")
    cache = cache or cache_root()
    if src.kind == "hub":
        return fetch_hub_handle(src.url, cache, src.sha256)
    return fetch_file(src, cache)


def verify_sha256(path: Path, expected: str) -> None:
    got = sha256_file(path)
    if got != expected:
        raise HarnessError(f"sha256 mismatch for {path}: expected {expected}, got {got}; "
                           "the file is corrupt or not the one the card describes")


def hub_download_url(handle: str) -> str:
    """The address that serves a handle's compressed SavedModel (a .tar.gz)."""
    parts = urllib.parse.urlsplit(handle)
    if parts.scheme not in ("http", "https"):
        raise HarnessError(f"not a TF Hub handle (needs http or https): {handle}")
    path = parts.path.rstrip("/")
    if path.endswith((".tar.gz", ".tgz")):
        return handle
    if parts.netloc.endswith("kaggle.com") and path.startswith("/models/"):
        return urllib.parse.urlunsplit((parts.scheme, parts.netloc, f"/api/v1{path}/download", "", ""))
    query = f"{parts.query}&tf-hub-format=compressed" if parts.query else "tf-hub-format=compressed"
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, query, ""))


def fetch_hub_handle(handle: str, cache: Path, sha256: str | None = None) -> Path:
    """Download and unpack a handle's SavedModel once; later calls are cache hits with no network."""
    key = hashlib.sha1(handle.encode()).hexdigest()[:16]
    target = cache / "hub" / key
    if (target / "saved_model.pb").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{key}.") as tmp:
        archive = Path(tmp) / "model.tar.gz"
        _download(hub_download_url(handle), archive, sha256)
        unpacked = Path(tmp) / "unpacked"
        _safe_extract(archive, unpacked)
        root = _savedmodel_root(unpacked, handle)
        try:
            os.replace(root, target)
        except OSError:
            if not (target / "saved_model.pb").exists():  # not a concurrent winner: a real failure
                raise
    return target


def fetch_file(src: Source, cache: Path) -> Path:
    assert src.url is not None
    name = Path(urllib.parse.urlsplit(src.url).path).name or "download"
    target = cache / "files" / hashlib.sha1(src.url.encode()).hexdigest()[:16] / name
    if target.exists():
        if src.sha256:
            verify_sha256(target, src.sha256)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{name}.part")
    _download(src.url, tmp, src.sha256)
    os.replace(tmp, target)
    return target


def _download(url: str, dest: Path, sha256: str | None) -> None:
    """Stream `url` to `dest`, hashing as it goes; refuse (and delete) a file whose sha256 is wrong."""
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, open(dest, "wb") as out:
            while block := resp.read(1 << 20):
                h.update(block)
                out.write(block)
    except urllib.error.HTTPError as exc:
        dest.unlink(missing_ok=True)
        raise HarnessError(f"download failed: {url} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        dest.unlink(missing_ok=True)
        reason = getattr(exc, "reason", exc)
        raise HarnessError(f"download failed: {url} ({reason}); offline? use --mirror DIR") from None
    if sha256 and h.hexdigest() != sha256:
        dest.unlink(missing_ok=True)
        raise HarnessError(f"sha256 mismatch for {url}: expected {sha256}, got {h.hexdigest()}; refused")


def _safe_extract(archive: Path, dest: Path) -> None:
    try:
        with tarfile.open(archive, "r:*") as tar:
            for m in tar.getmembers():
                p = Path(m.name)
                if p.is_absolute() or ".." in p.parts or m.issym() or m.islnk() or m.isdev():
                    raise HarnessError(f"refusing archive member {m.name!r} in {archive.name}")
            tar.extractall(dest)
    except tarfile.TarError as exc:
        raise HarnessError(f"downloaded file is not a tar archive ({exc})") from None


def _savedmodel_root(unpacked: Path, handle: str) -> Path:
    found = sorted(unpacked.rglob("saved_model.pb"), key=lambda p: len(p.parts))
    if not found:
        raise HarnessError(f"the archive served for {handle} holds no saved_model.pb")
    return found[0].parent


