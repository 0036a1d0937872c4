"""Find a model's or a dataset's files: a local path, a mirror directory, or a verified download into the cache.

Downloads are real code even though these machines cannot reach the official hosts: the tests serve
files and archives from a loopback HTTP server. Every download goes to a `.part` file beside its place in
the cache; a dropped connection is resumed with an HTTP Range request (within the call, and by the next
call after a kill); the whole file is checked against its sha256 before one atomic rename puts it in
place, so the cache never holds a half or a wrong file; a model whose card publishes no sha256 is
trusted on first use instead (harness.models.pins). Archives (tar of any compression, or zip) are
unpacked only when no member could land outside the target (harness.models.unpack). A TF Hub handle is
fetched as the compressed SavedModel that tfhub.dev and Kaggle Models serve, without the tensorflow_hub
package (which drags in full TensorFlow).

$HARNESS_URL_BASE sends every download to an HTTP mirror of the official hosts laid out as
<base>/<host>/<path> (a proxy cache, or the tests' loopback server); the cache keys stay the official
addresses, so a file fetched through a mirror is the same cache entry as one fetched directly.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.common.fileio import sha256_file
from harness.common.summary import ByteProgress, progress_enabled
from harness.errors import HarnessError
from harness.models.unpack import safe_extract
from harness.models.zoo import ModelCard, Source

MIRROR_ENV = "HARNESS_MIRROR"
CACHE_ENV = "HARNESS_CACHE"
URL_BASE_ENV = "HARNESS_URL_BASE"
RETRIES = 4  # a connection that drops mid-transfer is resumed this many times within one call
BACKOFF_S = 0.5  # wait before the n-th resume: n times this
TIMEOUT_S = 60
_CHUNK = 1 << 20
_JOURNALS = threading.local()  # .open: this thread's `downloads_recorded` blocks; a finished download goes to each


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
    """The local path of the card's model: its own path, the mirror's copy, or a fresh download (checked and
    pinned on first use when the card publishes no sha256)."""
    src = card.source
    if src.url is None and src.mirror_path is None:  # a model given as a path
        path = Path(src.note)
        if not path.exists():
            raise HarnessError(f"model not found: {path}")
        return path
    in_mirror = mirror is not None and src.mirror_path and (mirror / src.mirror_path).exists()
    if src.sha256 or src.url is None or in_mirror or src.kind not in FETCHERS:
        return resolve_source(src, mirror, cache, card.name)
    from harness.models.pins import resolve_pinned

    return resolve_pinned(card, cache or cache_root(), FETCHERS[src.kind])


def resolve_source(src: Source, mirror: Path | None, cache: Path | None = None, what: str = "the file") -> Path:
    """A model's or a dataset's local copy: the mirror's (sha256-checked when it is one file), else a download.

    `src.kind` picks the fetcher: a plain file, an archive unpacked to a directory, an archive holding
    a SavedModel, or a TF Hub handle.
    """
    if mirror is not None and src.mirror_path:
        path = mirror / src.mirror_path
        if path.exists():
            if src.sha256 and path.is_file():
                verify_sha256(path, src.sha256)
            return path
        if src.url is None:
            raise HarnessError(f"{what} is not in the mirror (looked for {path}); {src.note}")
    if src.url is None:
        raise HarnessError(f"{what} has no download address: give --mirror DIR with "
                           f"{src.mirror_path} in it, or a local path; {src.note}")
    fetcher = FETCHERS.get(src.kind)
    if fetcher is None:
        raise HarnessError(f"{what}: unknown source kind {src.kind!r}; known: {', '.join(sorted(FETCHERS))}")
    return fetcher(src.url, cache or cache_root(), src.sha256)


def rebased(url: str) -> str:
    """The address a download really goes to: `url`, or its place under $HARNESS_URL_BASE (<base>/<host>/<path>)."""
    base = os.environ.get(URL_BASE_ENV)
    if not base:
        return url
    parts = urllib.parse.urlsplit(url)
    return f"{base.rstrip('/')}/{parts.netloc}{parts.path}" + (f"?{parts.query}" if parts.query else "")


@contextmanager
def downloads_recorded() -> Iterator[list[dict]]:
    """Collect what the block really downloaded (cache hits are not downloads): url, path, bytes, sha256."""
    journal: list[dict] = []
    if not hasattr(_JOURNALS, "open"):
        _JOURNALS.open = []
    _JOURNALS.open.append(journal)
    try:
        yield journal
    finally:
        _JOURNALS.open.remove(journal)


def verify_size(path: Path, expected: int, what: str | None = None) -> None:
    got = path.stat().st_size
    if got != expected:
        raise HarnessError(f"size mismatch for {what or path}: expected {expected} bytes, got {got}; "
                           "the file is corrupt or not the one the manifest describes")


def verify_sha256(path: Path, expected: str, origin: str = "the card") -> None:
    got = sha256_file(path)
    if got != expected:
        raise HarnessError(f"sha256 mismatch for {path}: expected {expected}, got {got}; "
                           f"the file is corrupt or not the one {origin} describes")


# --------------------------------------------------------------------------------------------------
# Fetchers by source kind: (url, cache, sha256) -> local path


def _key(url: str) -> str:
    return hashlib.sha1(url.encode()).hexdigest()[:16]


def fetch_cached_file(url: str, cache: Path, sha256: str | None = None, **verify: Any) -> Path:
    """A file downloaded once into cache/files/<key>/<name>; later calls only check its hash (`verify`: fetch_file's
    `check` and `origin`)."""
    name = Path(urllib.parse.urlsplit(url).path).name or "download"
    return fetch_file(url, sha256, cache / "files" / _key(url) / name, **verify)


def fetch_archive(url: str, cache: Path, sha256: str | None = None, *, area: str = "archives",
                  key: str | None = None, pick: Callable[[Path], Path] | None = None, size: int | None = None,
                  progress: bool | None = None, check: Callable[[Path], None] | None = None,
                  origin: str = "the card") -> Path:
    """An archive downloaded and unpacked once into cache/<area>/<key> (`pick` chooses the folder kept).

    The unpacked folder appears by one rename, so it is complete whenever it exists; `key` may hold a
    slash (cache/coco/val2017). The archive itself is deleted once unpacked. `check` judges the unpacked
    folder before that rename (raising keeps it out of the cache); `origin` names where `sha256` comes from.
    """
    key = key or _key(url)
    target = cache / area / key
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(target):
        if target.is_dir():  # another process unpacked it while this one waited
            return target
        _fetch_and_unpack(url, sha256, target, pick, size, progress, check, origin)
    return target


def _fetch_and_unpack(url: str, sha256: str | None, target: Path, pick: Callable[[Path], Path] | None,
                      size: int | None, progress: bool | None, check: Callable[[Path], None] | None,
                      origin: str) -> None:
    archive = fetch_file(url, sha256, target.parent / f".{target.name}.download", size=size, progress=progress,
                         origin=origin)
    try:
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}.") as tmp:
            unpacked = Path(tmp) / "unpacked"
            safe_extract(archive, unpacked, url)
            root = pick(unpacked) if pick else unpacked
            if check is not None:
                check(root)
            try:
                os.replace(root, target)
            except OSError:
                if not target.is_dir():  # not a concurrent winner: a real failure
                    raise
    finally:
        archive.unlink(missing_ok=True)


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


def fetch_hub_handle(handle: str, cache: Path, sha256: str | None = None, **verify: Any) -> Path:
    """Download and unpack a handle's SavedModel once; later calls are cache hits with no network."""
    return fetch_archive(hub_download_url(handle), cache, sha256, area="hub", key=_key(handle),
                         pick=lambda unpacked: _savedmodel_root(unpacked, handle), **verify)


def fetch_savedmodel_archive(url: str, cache: Path, sha256: str | None = None, **verify: Any) -> Path:
    """An archive holding a SavedModel directory (e.g. a TF2 zoo .tar.gz), unpacked once."""
    return fetch_archive(url, cache, sha256, area="savedmodel", pick=lambda unpacked: _savedmodel_root(unpacked, url),
                         **verify)


# (url, cache, sha256, *, check=None, origin="the card") -> the local path
FETCHERS: dict[str, Callable[..., Path]] = {
    "file": fetch_cached_file,
    "archive": fetch_archive,
    "savedmodel": fetch_savedmodel_archive,
    "hub": fetch_hub_handle,
}


def _savedmodel_root(unpacked: Path, handle: str) -> Path:
    found = sorted(unpacked.rglob("saved_model.pb"), key=lambda p: len(p.parts))
    if not found:
        raise HarnessError(f"the archive served for {handle} holds no saved_model.pb")
    return found[0].parent


# --------------------------------------------------------------------------------------------------
# The verified, resumable download


class _Dropped(Exception):
    """The transfer stopped part-way; what arrived is in the .part file and the next try resumes it."""


def fetch_file(url: str, sha256: str | None, dest: str | Path, *, retries: int | None = None,
               progress: bool | None = None, size: int | None = None, check: Callable[[Path], None] | None = None,
               origin: str = "the card") -> Path:
    """Download `url` to `dest` (verified by `size` and `sha256` when given) and return `dest`.

    An existing `dest` is a cache hit (its size and hash are checked). Otherwise bytes go to a `.part`
    file beside it: a dropped connection is resumed from its end with `Range: bytes=N-` up to `retries`
    times; a `.part` left by an earlier call (killed, or out of retries) is resumed too. A server that
    announces another size than `size` is refused before the transfer; a complete file of the wrong
    size or sha256 is deleted and refused. `progress` (default: stderr is a terminal and $CI is unset)
    draws a progress bar on stderr. `check` judges a new download (under its own name) before it takes its
    place; `origin` names where `sha256` comes from, for the refusal.
    """
    dest = Path(dest)
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        with exclusive(dest):
            if not dest.exists():  # else another process finished it while this one waited
                _download(url, sha256, dest, retries, progress, size, check, origin)
                return dest
    if size is not None:
        verify_size(dest, size)
    if sha256:
        verify_sha256(dest, sha256, origin)
    return dest


def _download(url: str, sha256: str | None, dest: Path, retries: int | None, progress: bool | None,
              size: int | None, check: Callable[[Path], None] | None = None, origin: str = "the card") -> None:
    part = dest.with_name(f".{dest.name}.part")
    retries = RETRIES if retries is None else retries
    show = progress_enabled() if progress is None else progress
    for attempt in range(retries + 1):
        try:
            _transfer(rebased(url), part, ByteProgress(dest.name, show), size)
            break
        except _Dropped as exc:
            kept = part.stat().st_size if part.exists() else 0
            if attempt == retries:
                raise HarnessError(f"download failed: {url} ({exc}) after {retries + 1} tries; {kept} bytes are "
                                   f"kept in {part} and the next fetch resumes from there") from None
            time.sleep(BACKOFF_S * (attempt + 1))
    kept = part.stat().st_size
    if size is not None and kept != size:
        part.unlink(missing_ok=True)
        raise HarnessError(f"size mismatch for {url}: expected {size} bytes, got {kept}; refused, nothing kept")
    got = sha256_file(part)
    if sha256 and got != sha256:
        part.unlink(missing_ok=True)
        raise HarnessError(f"sha256 mismatch for {url}: expected {sha256} ({origin}), got {got}; refused, "
                           "nothing kept")
    if check is not None:
        _checked(part, dest, check)
    os.replace(part, dest)
    for journal in getattr(_JOURNALS, "open", ()):
        journal.append({"url": url, "from": rebased(url), "path": str(dest), "bytes": kept, "sha256": got})


def _checked(part: Path, dest: Path, check: Callable[[Path], None]) -> None:
    """Run `check` on the download under its own name (a backend may open by suffix); failing, it is deleted."""
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{dest.name}.") as tmp:
        staged = Path(tmp) / dest.name
        os.replace(part, staged)
        try:
            check(staged)
        except BaseException:
            staged.unlink()
            raise
        os.replace(staged, part)


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold a lock file beside `path` so that one process at a time fetches it (shards starting together,
    pods sharing a cache volume); the others wait, then find it done. No locking where fcntl is missing."""
    try:
        import fcntl
    except ImportError:  # Windows: a race there ends in a refused hash, never in a wrong file
        yield
        return
    lock = path.with_name(f".{path.name}.lock")
    while True:
        fh = open(lock, "a")  # noqa: SIM115 - held across the yield
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            if os.path.exists(lock) and os.stat(lock).st_ino == os.fstat(fh.fileno()).st_ino:
                break  # still the lock file: ours
        except OSError:
            pass
        fh.close()  # the holder removed it while this one waited: lock the new one
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)
        fh.close()


def _transfer(url: str, part: Path, bar: ByteProgress, size: int | None = None) -> None:
    """One request: continue `part` from its end (or start it); raise _Dropped if the body stops short.

    With `size`, a response announcing another total (or a body running past it) is refused and the
    part deleted: a wrong file is not worth 800 MB of bandwidth.
    """
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        resp = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # the part is no prefix of what is served now: start again
            part.unlink()
            raise _Dropped("the server refused to resume; starting over") from None
        if not offset:
            part.unlink(missing_ok=True)
        raise HarnessError(f"download failed: {url} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        if offset:  # it was answering a moment ago: a dropped connection, worth resuming
            raise _Dropped(f"connection failed: {getattr(exc, 'reason', exc)}") from None
        raise HarnessError(f"download failed: {url} ({getattr(exc, 'reason', exc)}); offline? "
                           "use --mirror DIR") from None
    with resp:
        resumed = offset and resp.status == 206 and (resp.headers.get("Content-Range") or "").startswith(
            f"bytes {offset}-")
        if not resumed:  # the server sent the whole file (it ignores Range, or the range was odd)
            offset = 0
        length = resp.headers.get("Content-Length")
        expected = offset + int(length) if length and length.isdigit() else None
        if size is not None and expected is not None and expected != size:
            part.unlink(missing_ok=True)
            raise HarnessError(f"size mismatch for {url}: the server offers {expected} bytes, the manifest says "
                               f"{size}; refused, nothing kept")
        bar.start(offset, expected)
        got = offset
        try:
            with open(part, "ab" if resumed else "wb") as out:
                while block := resp.read(_CHUNK):
                    out.write(block)
                    got += len(block)
                    bar.update(got)
                    if size is not None and got > size:
                        break
        except (OSError, http.client.HTTPException) as exc:
            raise _Dropped(f"connection dropped after {got} bytes: {exc.__class__.__name__}") from None
        finally:
            bar.close()
    if size is not None and got > size:
        part.unlink(missing_ok=True)
        raise HarnessError(f"size mismatch for {url}: more than the {size} bytes the manifest says; refused, "
                           "nothing kept")
    if expected is not None and got < expected:
        raise _Dropped(f"connection dropped after {got} of {expected} bytes")
