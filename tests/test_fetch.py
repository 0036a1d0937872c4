"""Finding a model's files: TF Hub handles downloaded once into the cache, mirrors, sha256 checks.

Every download here is served by a loopback HTTP server the tests start (port 0 on 127.0.0.1);
nothing reaches the internet. Like tfhub.dev, the server serves a handle's compressed SavedModel
only when the query asks for `tf-hub-format=compressed`. Like a real file server it answers
`Range: bytes=N-` with 206, and it can be told to drop the connection half-way through a response.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import shutil
import socket
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from loopback import HubServer

from harness.common.summary import progress_enabled
from harness.errors import HarnessError
from harness.models import fetch
from harness.models.fetch import (
    CACHE_ENV,
    MIRROR_ENV,
    fetch_file,
    fetch_hub_handle,
    hub_download_url,
    mirror_root,
    resolve_model,
    resolve_source,
)
from harness.models.zoo import Source, get_card

HANDLE_PATH = "/tensorflow/centernet/resnet50v2_512x512/1"
MB3_F32 = "models/mb3-centernet/raw_f32.tflite"

# Files named like a SavedModel: fetch_hub_handle only needs saved_model.pb to exist.
FAKE_SAVEDMODEL = {
    "./saved_model.pb": b"a SavedModel graph would be here",
    "./variables/variables.index": b"index",
    "./variables/variables.data-00000-of-00001": b"weights",
}


def make_tar(members: dict[str, bytes], symlinks: dict[str, str] | None = None,
             hardlinks: dict[str, str] | None = None) -> bytes:
    """A .tar.gz holding `members` (name -> content) and optional sym- and hard links (name -> target)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for kind, links in ((tarfile.SYMTYPE, symlinks), (tarfile.LNKTYPE, hardlinks)):
            for name, target in (links or {}).items():
                info = tarfile.TarInfo(name)
                info.type, info.linkname = kind, target
                tar.addfile(info)
    return buf.getvalue()


def make_zip(members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    """A .zip holding `members` and optional symlinks (stored the Unix way: mode bits + target as data)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o120777 << 16
            zf.writestr(info, target)
    return buf.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch):
    # A proxy from the environment must not intercept loopback requests.
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")
    s = HubServer()
    yield s
    s.close()


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Resume at once after a drop: the waiting is for real networks, not for loopback."""
    monkeypatch.setattr(fetch, "BACKOFF_S", 0.0)


def cache_entries(cache: Path) -> list[Path]:
    """The files in the cache (fetch may leave the empty folders it creates up front)."""
    return [p for p in cache.rglob("*") if not p.is_dir()]


# --------------------------------------------------------------------------------------------------
# Handle -> download address


@pytest.mark.parametrize(("handle", "url"), [
    ("https://tfhub.dev/tensorflow/centernet/resnet50v2_512x512/1",
     "https://tfhub.dev/tensorflow/centernet/resnet50v2_512x512/1?tf-hub-format=compressed"),
    ("https://tfhub.dev/tensorflow/centernet/resnet50v2_512x512/1/",
     "https://tfhub.dev/tensorflow/centernet/resnet50v2_512x512/1?tf-hub-format=compressed"),
    ("http://127.0.0.1:8000/a/b/1?x=y", "http://127.0.0.1:8000/a/b/1?x=y&tf-hub-format=compressed"),
    ("https://www.kaggle.com/models/tensorflow/centernet-resnet/tensorFlow2/resnet50v2-512x512/1",
     "https://www.kaggle.com/api/v1/models/tensorflow/centernet-resnet/tensorFlow2/resnet50v2-512x512/1/download"),
    ("https://example.org/models/centernet.tar.gz", "https://example.org/models/centernet.tar.gz"),
])
def test_hub_download_url(handle: str, url: str) -> None:
    """tfhub.dev handles get ?tf-hub-format=compressed, Kaggle handles the API download, archives pass."""
    assert hub_download_url(handle) == url


def test_hub_download_url_needs_http() -> None:
    """A handle that is not an http(s) address is a user error, not a urllib traceback."""
    with pytest.raises(HarnessError, match="http"):
        hub_download_url("tensorflow/centernet/resnet50v2_512x512/1")


# --------------------------------------------------------------------------------------------------
# fetch_hub_handle


def test_fetch_downloads_once_then_hits_cache(server: HubServer, cache: Path) -> None:
    """The first call downloads and unpacks the SavedModel; the second makes no request at all."""
    archive = make_tar(FAKE_SAVEDMODEL)
    server.hub[HANDLE_PATH] = archive
    handle = server.url(HANDLE_PATH)

    path = fetch_hub_handle(handle, cache, sha256(archive))
    assert server.requests == [f"{HANDLE_PATH}?tf-hub-format=compressed"]
    assert path.is_relative_to(cache)
    assert (path / "saved_model.pb").read_bytes() == FAKE_SAVEDMODEL["./saved_model.pb"]
    assert (path / "variables" / "variables.index").read_bytes() == b"index"
    assert not list(path.rglob("*.tar.gz")), "the archive is not kept once unpacked"

    del server.hub[HANDLE_PATH]  # even a server that no longer has it does not matter now
    assert fetch_hub_handle(handle, cache, sha256(archive)) == path
    assert len(server.requests) == 1


def test_fetch_without_sha256_still_downloads(server: HubServer, cache: Path) -> None:
    """A card without a hash downloads unchecked (the hash is optional, not required)."""
    server.hub[HANDLE_PATH] = make_tar(FAKE_SAVEDMODEL)
    assert (fetch_hub_handle(server.url(HANDLE_PATH), cache) / "saved_model.pb").is_file()


def test_wrong_sha256_is_refused_and_nothing_is_cached(server: HubServer, cache: Path) -> None:
    """A download whose sha256 differs from the card's is refused and leaves nothing behind."""
    archive = make_tar(FAKE_SAVEDMODEL)
    server.hub[HANDLE_PATH] = archive
    handle = server.url(HANDLE_PATH)
    with pytest.raises(HarnessError, match="sha256"):
        fetch_hub_handle(handle, cache, "0" * 64)
    assert cache_entries(cache) == []

    path = fetch_hub_handle(handle, cache, sha256(archive))  # the right hash: a fresh download
    assert (path / "saved_model.pb").is_file()
    assert len(server.requests) == 2


def test_http_404_is_a_harness_error(server: HubServer, cache: Path) -> None:
    """A handle the server does not know fails with one message naming the HTTP status."""
    with pytest.raises(HarnessError, match="404"):
        fetch_hub_handle(server.url("/tensorflow/no-such-model/1"), cache)
    assert cache_entries(cache) == []


def test_unreachable_host_is_a_harness_error(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing listening (e.g. offline) fails with a hint to use a mirror."""
    monkeypatch.setenv("no_proxy", "*")
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(HarnessError, match="--mirror"):
        fetch_hub_handle(f"http://127.0.0.1:{port}{HANDLE_PATH}", cache)
    assert cache_entries(cache) == []


@pytest.mark.parametrize(("members", "symlinks", "hardlinks"), [
    ({**FAKE_SAVEDMODEL, "../escaped.txt": b"outside"}, None, None),
    ({**FAKE_SAVEDMODEL, "variables/../../escaped.txt": b"outside"}, None, None),
    ({**FAKE_SAVEDMODEL, "/tmp/escaped-absolute.txt": b"outside"}, None, None),
    (FAKE_SAVEDMODEL, {"variables/link": "/etc/passwd"}, None),
    (FAKE_SAVEDMODEL, {"variables/link": "../../escaped.txt"}, None),
    (FAKE_SAVEDMODEL, {"link": ".."}, None),
    (FAKE_SAVEDMODEL, None, {"variables/hard": "../escaped.txt"}),
], ids=["parent", "nested-parent", "absolute", "symlink-absolute", "symlink-escaping", "symlink-to-parent",
        "hardlink-escaping"])
def test_unsafe_archive_is_refused(server: HubServer, cache: Path, members: dict, symlinks: dict | None,
                                   hardlinks: dict | None) -> None:
    """A member that would land outside the cache (../, absolute, a link out) refuses the whole archive."""
    server.hub[HANDLE_PATH] = make_tar(members, symlinks, hardlinks)
    with pytest.raises(HarnessError, match="refusing archive member"):
        fetch_hub_handle(server.url(HANDLE_PATH), cache)
    assert cache_entries(cache) == []
    assert not (cache.parent / "escaped.txt").exists()
    assert not (cache / "escaped.txt").exists()


def test_not_a_tar_archive(server: HubServer, cache: Path) -> None:
    """An HTML page (or anything else) served instead of the archive is a clear error."""
    server.hub[HANDLE_PATH] = b"<html>please log in</html>"
    with pytest.raises(HarnessError, match="not a readable tar or zip archive"):
        fetch_hub_handle(server.url(HANDLE_PATH), cache)
    assert cache_entries(cache) == []


def test_archive_without_saved_model(server: HubServer, cache: Path) -> None:
    """An archive that holds no saved_model.pb is refused, naming the handle."""
    server.hub[HANDLE_PATH] = make_tar({"./README.md": b"nothing here"})
    with pytest.raises(HarnessError, match=r"no saved_model\.pb"):
        fetch_hub_handle(server.url(HANDLE_PATH), cache)
    assert cache_entries(cache) == []


def test_archive_with_a_top_folder(server: HubServer, cache: Path) -> None:
    """A SavedModel wrapped in a folder inside the archive is found and becomes the cache entry."""
    wrapped = {f"centernet/{name.removeprefix('./')}": data for name, data in FAKE_SAVEDMODEL.items()}
    server.hub[HANDLE_PATH] = make_tar(wrapped)
    path = fetch_hub_handle(server.url(HANDLE_PATH), cache)
    assert (path / "saved_model.pb").is_file()
    assert (path / "variables" / "variables.index").is_file()


def test_different_handles_get_different_entries(server: HubServer, cache: Path) -> None:
    """The cache is keyed by handle: two versions of a model never share an entry."""
    server.hub[HANDLE_PATH] = make_tar(FAKE_SAVEDMODEL)
    other = HANDLE_PATH.replace("/1", "/2")
    server.hub[other] = make_tar({**FAKE_SAVEDMODEL, "./saved_model.pb": b"version 2"})
    a = fetch_hub_handle(server.url(HANDLE_PATH), cache)
    b = fetch_hub_handle(server.url(other), cache)
    assert a != b
    assert (b / "saved_model.pb").read_bytes() == b"version 2"


def test_symlink_inside_the_archive_is_kept(server: HubServer, cache: Path) -> None:
    """A link that stays inside the unpacked folder is not a threat: it is unpacked as a link."""
    server.hub[HANDLE_PATH] = make_tar(FAKE_SAVEDMODEL, {"variables/alias": "variables.index"})
    path = fetch_hub_handle(server.url(HANDLE_PATH), cache)
    alias = path / "variables" / "alias"
    assert alias.is_symlink() and alias.read_bytes() == b"index"


# --------------------------------------------------------------------------------------------------
# fetch_file: resumable, verified, atomic

BLOB = np.random.default_rng(7).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
BLOB_PATH = "/data/blob.bin"


def test_dropped_connection_is_resumed_with_range(server: HubServer, tmp_path: Path) -> None:
    """The server hangs up half-way: the same call asks for the rest with Range and verifies the whole."""
    server.files[BLOB_PATH] = BLOB
    server.drops[BLOB_PATH] = 1
    dest = tmp_path / "cache" / "blob.bin"
    assert fetch_file(server.url(BLOB_PATH), sha256(BLOB), dest) == dest
    assert dest.read_bytes() == BLOB
    assert server.ranges == [None, f"bytes={len(BLOB) // 2}-"]
    assert files_in(dest.parent) == [dest], "no .part left behind"


def test_dropped_twice_in_a_row_is_resumed_twice(server: HubServer, tmp_path: Path) -> None:
    """Each resume continues from the end of what arrived so far (here 1/2, then 3/4 of the file)."""
    server.files[BLOB_PATH] = BLOB
    server.drops[BLOB_PATH] = 2
    dest = fetch_file(server.url(BLOB_PATH), sha256(BLOB), tmp_path / "blob.bin")
    assert dest.read_bytes() == BLOB
    half = len(BLOB) // 2
    assert server.ranges == [None, f"bytes={half}-", f"bytes={half + (len(BLOB) - half) // 2}-"]


def test_out_of_retries_keeps_the_part_and_the_next_call_resumes(server: HubServer, tmp_path: Path) -> None:
    """A download that keeps dropping fails with one message; what arrived is kept, and the next call
    (after a kill, a reboot, a flaky network) continues from it instead of starting over."""
    server.files[BLOB_PATH] = BLOB
    server.drops[BLOB_PATH] = 2
    dest = tmp_path / "blob.bin"
    with pytest.raises(HarnessError, match=r"download failed.*after 2 tries.*resumes"):
        fetch_file(server.url(BLOB_PATH), sha256(BLOB), dest, retries=1)
    assert not dest.exists()
    part = tmp_path / ".blob.bin.part"
    kept = part.stat().st_size
    assert 0 < kept < len(BLOB)

    assert fetch_file(server.url(BLOB_PATH), sha256(BLOB), dest).read_bytes() == BLOB
    assert server.ranges[-1] == f"bytes={kept}-"
    assert not part.exists()


def test_server_that_ignores_range_gets_a_fresh_start(server: HubServer, tmp_path: Path) -> None:
    """A 200 with the whole file in answer to a Range request replaces the part instead of appending."""
    server.files[BLOB_PATH] = BLOB
    server.drops[BLOB_PATH] = 1
    server.honour_range = False
    dest = fetch_file(server.url(BLOB_PATH), sha256(BLOB), tmp_path / "blob.bin")
    assert dest.read_bytes() == BLOB
    assert server.ranges[1] is not None, "it did ask to resume"


def test_part_longer_than_the_file_starts_over(server: HubServer, tmp_path: Path) -> None:
    """A stale part the server cannot continue (416) is dropped and the download starts over."""
    server.files[BLOB_PATH] = BLOB
    (tmp_path / ".blob.bin.part").write_bytes(b"x" * (len(BLOB) + 10))
    dest = fetch_file(server.url(BLOB_PATH), sha256(BLOB), tmp_path / "blob.bin")
    assert dest.read_bytes() == BLOB
    assert server.ranges == [f"bytes={len(BLOB) + 10}-", None]


def test_resumed_download_with_the_wrong_sha256_leaves_nothing(server: HubServer, tmp_path: Path) -> None:
    """Resuming never weakens the check: a wrong hash after a resume refuses the file and deletes the part."""
    server.files[BLOB_PATH] = BLOB
    server.drops[BLOB_PATH] = 1
    cache = tmp_path / "cache"
    with pytest.raises(HarnessError, match=r"sha256 mismatch.*nothing kept"):
        fetch_file(server.url(BLOB_PATH), "0" * 64, cache / "blob.bin")
    assert len(server.requests) == 2
    assert cache_entries(cache) == []


def test_a_part_of_some_other_file_is_caught_by_the_hash(server: HubServer, tmp_path: Path) -> None:
    """A part left by another version of the file resumes into a wrong whole: refused, then fetched clean."""
    server.files[BLOB_PATH] = BLOB
    part = tmp_path / ".blob.bin.part"
    part.write_bytes(b"an older version of the file")
    with pytest.raises(HarnessError, match="sha256 mismatch"):
        fetch_file(server.url(BLOB_PATH), sha256(BLOB), tmp_path / "blob.bin")
    assert not part.exists()
    assert fetch_file(server.url(BLOB_PATH), sha256(BLOB), tmp_path / "blob.bin").read_bytes() == BLOB


def test_cached_file_is_checked_not_fetched(server: HubServer, tmp_path: Path) -> None:
    """A file already in place is a cache hit (no request) whose hash is still checked."""
    dest = tmp_path / "blob.bin"
    dest.write_bytes(BLOB)
    assert fetch_file(server.url(BLOB_PATH), sha256(BLOB), dest) == dest
    with pytest.raises(HarnessError, match="sha256 mismatch"):
        fetch_file(server.url(BLOB_PATH), "f" * 64, dest)
    assert server.requests == []


def test_hub_handle_download_resumes_after_a_drop(server: HubServer, cache: Path) -> None:
    """The archive behind a handle is fetched with the same resumable download."""
    archive = make_tar({**FAKE_SAVEDMODEL, "./variables/variables.data-00000-of-00001": BLOB})
    server.hub[HANDLE_PATH] = archive
    server.drops[HANDLE_PATH] = 1
    path = fetch_hub_handle(server.url(HANDLE_PATH), cache, sha256(archive))
    assert (path / "variables" / "variables.data-00000-of-00001").read_bytes() == BLOB
    assert server.ranges == [None, f"bytes={len(archive) // 2}-"]
    assert not [p for p in cache_entries(cache) if not p.is_relative_to(path)], "only the SavedModel stays"


def test_progress_bar_only_for_a_person() -> None:
    """A bar on a terminal; none in a log file or a CI job (where it would be noise)."""
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert progress_enabled(Tty(), {})
    assert not progress_enabled(Tty(), {"CI": "true"})
    assert not progress_enabled(io.StringIO(), {})


def test_progress_bar_draws_on_stderr(server: HubServer, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    server.files[BLOB_PATH] = BLOB
    fetch_file(server.url(BLOB_PATH), sha256(BLOB), tmp_path / "blob.bin", progress=True)
    out, err = capsys.readouterr()
    assert out == ""
    size = f"{len(BLOB) / 1024:.0f}k/{len(BLOB) / 1024:.0f}k"  # tqdm's byte units (1024-based), e.g. 293k/293k
    assert err.startswith("\rblob.bin:") and "100%" in err and size in err and err.endswith("\n")
    fetch_file(server.url(BLOB_PATH), sha256(BLOB), tmp_path / "again.bin", progress=False)
    assert capsys.readouterr().err == ""


# --------------------------------------------------------------------------------------------------
# Datasets: an archive from a URL or a folder in a mirror

ANNOTATIONS = {"annotations/instances_val2017.json": b'{"images": [], "annotations": [], "categories": []}'}


def annotations_source(url: str | None, sha: str | None) -> Source:
    return Source(url, "coco/annotations", sha, kind="archive", note="COCO 2017 annotations")


def test_dataset_archive_is_fetched_and_unpacked(server: HubServer, tmp_path: Path) -> None:
    """A zip (like COCO's annotations_trainval2017.zip) is fetched once, verified and unpacked."""
    blob = make_zip(ANNOTATIONS)
    server.files["/annotations/annotations_trainval2017.zip"] = blob
    src = annotations_source(server.url("/annotations/annotations_trainval2017.zip"), sha256(blob))
    root = resolve_source(src, None, tmp_path / "cache", "COCO annotations")
    assert (root / "annotations" / "instances_val2017.json").read_bytes() == ANNOTATIONS[
        "annotations/instances_val2017.json"]
    assert resolve_source(src, None, tmp_path / "cache") == root
    assert len(server.requests) == 1
    assert not list((tmp_path / "cache").rglob("*.download")), "the archive is not kept once unpacked"


def test_dataset_in_a_mirror_needs_no_network(server: HubServer, mirror: Path, tmp_path: Path) -> None:
    """The mirror's folder is used as it is, whatever the URL."""
    src = annotations_source(server.url("/annotations/annotations_trainval2017.zip"), None)
    assert resolve_source(src, mirror, tmp_path / "cache") == mirror / "coco" / "annotations"
    assert server.requests == []


@pytest.mark.parametrize(("members", "symlinks"), [
    ({"../escaped.txt": b"x"}, None),
    ({"/tmp/escaped-absolute.txt": b"x"}, None),
    ({"annotations/../../escaped.txt": b"x"}, None),
    (ANNOTATIONS, {"annotations/link": "/etc/passwd"}),
], ids=["parent", "absolute", "nested-parent", "symlink"])
def test_unsafe_zip_is_refused(server: HubServer, tmp_path: Path, members: dict, symlinks: dict | None) -> None:
    blob = make_zip(members, symlinks)
    server.files["/bad.zip"] = blob
    with pytest.raises(HarnessError, match="refusing archive member"):
        resolve_source(annotations_source(server.url("/bad.zip"), sha256(blob)), None, tmp_path / "cache")
    assert cache_entries(tmp_path / "cache") == []
    assert not (tmp_path / "escaped.txt").exists()


def test_unknown_source_kind(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="unknown source kind 'torrent'"):
        resolve_source(Source("http://127.0.0.1:9/x", None, kind="torrent"), None, tmp_path)


def files_in(folder: Path) -> list[Path]:
    """Every file in `folder`, hidden ones included."""
    return sorted(p for p in folder.iterdir() if p.is_file())


# --------------------------------------------------------------------------------------------------
# resolve_model: card -> local path


def hub_card(url: str, sha: str | None):
    """The zoo's TF Hub CenterNet card with its source pointed at the local server."""
    card = get_card("centernet-resnet50v2-512")
    return dataclasses.replace(card, source=dataclasses.replace(card.source, url=url, sha256=sha))


def test_resolve_hub_card_downloads_into_harness_cache(server: HubServer, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A hub card with no mirror downloads into $HARNESS_CACHE, once."""
    archive = make_tar(FAKE_SAVEDMODEL)
    server.hub[HANDLE_PATH] = archive
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "env-cache"))
    card = hub_card(server.url(HANDLE_PATH), sha256(archive))

    path = resolve_model(card, None)
    assert path.is_relative_to(tmp_path / "env-cache")
    assert (path / "saved_model.pb").is_file()
    assert resolve_model(card, None) == path
    assert len(server.requests) == 1


def test_resolve_hub_card_falls_back_to_download_when_mirror_lacks_it(
        server: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mirror: Path) -> None:
    """A mirror without the card's mirror_path does not stop a download from the card's address."""
    archive = make_tar(FAKE_SAVEDMODEL)
    server.hub[HANDLE_PATH] = archive
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "env-cache"))
    card = hub_card(server.url(HANDLE_PATH), sha256(archive))
    assert not (mirror / card.source.mirror_path).exists()
    assert resolve_model(card, mirror).is_relative_to(tmp_path / "env-cache")


def test_resolve_hub_card_prefers_the_mirror(server: HubServer, tmp_path: Path) -> None:
    """A mirror that holds the SavedModel is used as is: no request, no cache."""
    card = hub_card(server.url(HANDLE_PATH), None)
    local = tmp_path / "mirror" / card.source.mirror_path
    local.mkdir(parents=True)
    (local / "saved_model.pb").write_bytes(b"graph")
    assert resolve_model(card, tmp_path / "mirror", cache=tmp_path / "cache") == local
    assert server.requests == []


def test_resolve_file_source_downloads_and_checks(server: HubServer, tmp_path: Path) -> None:
    """A file source with a URL downloads to the cache once and refuses a wrong hash."""
    blob = b"TFL3 pretend model bytes"
    server.files["/models/m.tflite"] = blob
    card = get_card("mb3-centernet-f32")
    src = dataclasses.replace(card.source, url=server.url("/models/m.tflite"), mirror_path=None, sha256=sha256(blob))
    good = dataclasses.replace(card, source=src)
    path = resolve_model(good, None, cache=tmp_path / "cache")
    assert path.name == "m.tflite" and path.read_bytes() == blob
    assert resolve_model(good, None, cache=tmp_path / "cache") == path
    assert len(server.requests) == 1

    bad = dataclasses.replace(card, source=dataclasses.replace(src, sha256="f" * 64))
    with pytest.raises(HarnessError, match="sha256"):
        resolve_model(bad, None, cache=tmp_path / "cache3")
    assert cache_entries(tmp_path / "cache3") == []


def test_resolve_uses_the_mirror_copy(mirror: Path) -> None:
    """A file card resolves to the mirror's copy, whose sha256 matches the card."""
    card = get_card("mb3-centernet-f32")
    assert card.source.mirror_path == MB3_F32
    assert resolve_model(card, mirror) == mirror / MB3_F32


def fake_mirror(mirror: Path, root: Path, flip_byte: bool) -> Path:
    """A mirror layout in `root` holding a copy of the real f32 model, optionally with one byte changed."""
    dest = root / MB3_F32
    dest.parent.mkdir(parents=True)
    shutil.copyfile(mirror / MB3_F32, dest)
    if flip_byte:
        with open(dest, "r+b") as f:
            f.seek(4096)
            b = f.read(1)
            f.seek(4096)
            f.write(bytes([b[0] ^ 0x01]))
    return root


def test_resolve_accepts_an_intact_copy_in_another_mirror(mirror: Path, tmp_path: Path) -> None:
    """Any directory with the mirror's layout works as a mirror."""
    root = fake_mirror(mirror, tmp_path / "m", flip_byte=False)
    assert resolve_model(get_card("mb3-centernet-f32"), root) == root / MB3_F32


def test_resolve_refuses_a_corrupt_mirror_copy(mirror: Path, tmp_path: Path) -> None:
    """One changed byte in a mirrored model is a sha256 mismatch, not a silently different model."""
    root = fake_mirror(mirror, tmp_path / "m", flip_byte=True)
    with pytest.raises(HarnessError, match="sha256 mismatch"):
        resolve_model(get_card("mb3-centernet-f32"), root)


def test_resolve_file_card_not_in_mirror(tmp_path: Path) -> None:
    """A card with no URL needs the mirror to hold it, and says so."""
    card = get_card("mb3-centernet-f32")
    with pytest.raises(HarnessError, match="not in the mirror"):
        resolve_model(card, tmp_path)
    with pytest.raises(HarnessError, match="no download address"):
        resolve_model(card, None)


def test_mirror_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--mirror wins over $HARNESS_MIRROR; either must name an existing directory."""
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    assert mirror_root(None) is None
    assert mirror_root(tmp_path) == tmp_path
    with pytest.raises(HarnessError, match="--mirror"):
        mirror_root(tmp_path / "missing")
    monkeypatch.setenv(MIRROR_ENV, str(tmp_path / "missing-too"))
    with pytest.raises(HarnessError, match=r"\$HARNESS_MIRROR"):
        mirror_root(None)
    monkeypatch.setenv(MIRROR_ENV, str(tmp_path))
    assert mirror_root(None) == tmp_path


@pytest.mark.slow
def test_hub_handle_end_to_end_with_a_real_savedmodel(server: HubServer, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A handle serving a real (tiny) TF Hub-style SavedModel: fetched, loaded by the savedmodel backend, decoded."""
    tf = pytest.importorskip("tensorflow")
    from harness.models.backends import create_backend
    from harness.models.decoders import decode_postprocessed

    class Detector(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.uint8)])
        def __call__(self, images):
            brightness = tf.reduce_mean(tf.cast(images, tf.float32)) / 255.0
            return {"detection_boxes": tf.tile(tf.constant([[[0.1, 0.2, 0.5, 0.6]]]), [1, 100, 1]),
                    "detection_scores": tf.fill([1, 100], brightness),
                    "detection_classes": tf.fill([1, 100], 18.0),
                    "num_detections": tf.constant([3.0])}

    module = Detector()
    tf.saved_model.save(module, str(tmp_path / "export"), signatures={"serving_default": module.__call__})
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(tmp_path / "export", arcname=".")
    server.hub[HANDLE_PATH] = buf.getvalue()
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    card = hub_card(server.url(HANDLE_PATH), sha256(buf.getvalue()))

    backend = create_backend(card.backend, resolve_model(card, None), card.outputs)
    backend.load()
    dets = decode_postprocessed(backend.predict(np.full((1, 8, 8, 3), 51, np.uint8)), **card.decoder_params)
    assert len(dets) == 3
    assert dets.category_ids.tolist() == [18, 18, 18]
    np.testing.assert_allclose(dets.scores, 0.2, rtol=1e-6)
    np.testing.assert_allclose(dets.boxes, [[0.1, 0.2, 0.5, 0.6]] * 3)


# --------------------------------------------------------------------------------------------------
# Trust on first use: a card with no published sha256


HUB = "centernet-resnet50v2-512"  # the zoo's TF Hub card: no sha256 is published for it


@pytest.fixture
def hub_env(server: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """$HARNESS_URL_BASE sends the card's official address to the loopback server; the cache is the test's."""
    monkeypatch.setenv(fetch.URL_BASE_ENV, server.base)
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    return tmp_path / "cache"


def harness_fetch(*names: str) -> int:
    from harness.cli import main

    return main(["fetch", *names, "--quiet"])


def test_a_junk_archive_from_a_card_without_hash_is_not_cached_and_no_check_is_claimed(
        server: HubServer, hub_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The issue's hostile server: a small archive holding a 'saved_model.pb' of junk. It cannot be loaded, so
    its outputs cannot meet the card's contract: one line, exit 2, nothing cached, no pin, no claim of a check."""
    from loopback import official_path

    junk = make_tar(FAKE_SAVEDMODEL)
    server.hub[official_path(get_card(HUB).source.url)] = junk
    assert harness_fetch(HUB) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("harness: error: ") and err.count("\n") == 1
    assert "does not meet the card's contract" in err and "not cached" in err
    assert cache_entries(hub_env) == []  # neither the model nor a pin
    assert harness_fetch(HUB) == 2, "a second try is not 'already here'"
    assert "already here" not in capsys.readouterr().out


def test_a_tflite_file_without_hash_is_checked_then_pinned_and_a_tampered_copy_is_refused(
        server: HubServer, mirror: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file card with no published hash (the mirror's float mb3 model served over loopback): the first fetch
    runs it on one image and pins it; a later one verifies the pin; a changed cache copy is refused."""
    from harness.common.identity import model_sha256
    from harness.measure.acquire import fetch_model
    from harness.models.pins import pins_path, read_pins

    blob = (mirror / MB3_F32).read_bytes()
    server.files["/models/raw_f32.tflite"] = blob
    card = get_card("mb3-centernet-f32")
    src = dataclasses.replace(card.source, url=server.url("/models/raw_f32.tflite"), mirror_path=None, sha256=None)
    card = dataclasses.replace(card, source=src)
    cache = tmp_path / "cache"

    first = fetch_model(card, None, cache)
    assert first["downloaded"] and first["pin"] == "new"
    pin = read_pins(cache)[src.url]
    assert pin["sha256"] == sha256(blob) == pin["content_sha256"] == model_sha256(first["path"])
    assert pins_path(cache) == cache / "pins.json"

    again = fetch_model(card, None, cache)
    assert not again["downloaded"] and again["pin"] == "verified" and len(server.requests) == 1

    with open(first["path"], "r+b") as f:  # one byte changed in the cache
        f.seek(4096)
        b = f.read(1)
        f.seek(4096)
        f.write(bytes([b[0] ^ 1]))
    with pytest.raises(HarnessError, match="pinned on first use") as exc:
        resolve_model(card, None, cache)
    assert "\n" not in str(exc.value)


def test_a_file_that_is_no_model_is_not_cached(server: HubServer, tmp_path: Path) -> None:
    server.files["/models/m.tflite"] = b"TFL3 pretend model bytes"
    card = get_card("mb3-centernet-f32")
    src = dataclasses.replace(card.source, url=server.url("/models/m.tflite"), mirror_path=None, sha256=None)
    with pytest.raises(HarnessError, match=r"does not meet the card's contract.*not cached"):
        resolve_model(dataclasses.replace(card, source=src), None, tmp_path / "cache")
    assert cache_entries(tmp_path / "cache") == []


@pytest.fixture(scope="module")
def hub_models(tmp_path_factory) -> tuple[bytes, bytes, bytes]:
    """Three archives as tfhub.dev serves them: a SavedModel with the TF Hub card's contract, the same with
    another box (a changed model), and a SavedModel whose outputs are not the card's."""
    pytest.importorskip("tensorflow")
    from synthetic import import_tf, make_hub_savedmodel

    d = tmp_path_factory.mktemp("hubmodels")

    def tar_dir(folder: Path) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            tar.add(folder, arcname=".")
        return buf.getvalue()

    tf = import_tf()

    class Other(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.uint8)])
        def __call__(self, images):
            return {"logits": tf.reduce_mean(tf.cast(images, tf.float32), axis=[1, 2])}

    other = Other()
    tf.saved_model.save(other, str(d / "other"), signatures={"serving_default": other.__call__})
    return (tar_dir(make_hub_savedmodel(d / "good", (0.2, 0.25, 0.7, 0.8), 18)),
            tar_dir(make_hub_savedmodel(d / "changed", (0.1, 0.1, 0.5, 0.5), 1)),
            tar_dir(d / "other"))


def test_a_hub_model_without_hash_is_pinned_on_first_use_and_held_to_the_pin(
        server: HubServer, hub_env: Path, hub_models, capsys: pytest.CaptureFixture[str]) -> None:
    """`harness fetch` of the TF Hub card: a model meeting the contract is checked and pinned (and says so);
    the next fetch verifies it; a server that later serves another file does not replace it, and once the
    cache is emptied that file is refused as not the pinned one; a changed cache copy is refused."""
    import json
    import shutil

    from loopback import official_path

    from harness.common.identity import model_sha256

    good, changed, _ = hub_models
    path = official_path(get_card(HUB).source.url)
    server.hub[path] = good
    assert harness_fetch(HUB) == 0
    out = capsys.readouterr().out
    pins = json.loads((hub_env / "pins.json").read_text())
    (pin,) = pins.values()
    cached = next((hub_env / "hub").iterdir())
    assert pin["sha256"] == sha256(good) and pin["content_sha256"] == model_sha256(cached)
    assert f"no published sha256; got {sha256(good)} (recorded), outputs checked against the card's contract, " \
           f"pinned on first use: sha256 {pin['content_sha256']}" in out

    server.hub[path] = changed  # the server changes what it serves
    assert harness_fetch(HUB) == 0
    out = capsys.readouterr().out
    assert "already here" in out and "matches the sha256 pinned on first use" in out
    assert len(server.requests) == 1, "a cache hit asks the server nothing"
    assert model_sha256(cached) == pin["content_sha256"]

    shutil.rmtree(cached)  # the cache emptied, the pin kept: the changed file is refused
    assert harness_fetch(HUB) == 2
    err = capsys.readouterr().err
    assert "sha256 mismatch" in err and "pinned on first use" in err and err.count("\n") == 1
    assert not (hub_env / "hub").exists() or not list((hub_env / "hub").iterdir())

    server.hub[path] = good  # the pinned file again: fetched, verified, cached
    assert harness_fetch(HUB) == 0
    assert "matches the sha256 pinned on first use" in capsys.readouterr().out
    (cached / "saved_model.pb").write_bytes((cached / "saved_model.pb").read_bytes() + b"\0")
    assert harness_fetch(HUB) == 2
    err = capsys.readouterr().err
    assert "is not the one pinned on first use" in err and err.count("\n") == 1


def test_a_hub_model_whose_outputs_are_not_the_cards_is_not_cached(
        server: HubServer, hub_env: Path, hub_models, capsys: pytest.CaptureFixture[str]) -> None:
    from loopback import official_path

    server.hub[official_path(get_card(HUB).source.url)] = hub_models[2]
    assert harness_fetch(HUB) == 2
    err = capsys.readouterr().err
    assert "does not meet the card's contract" in err and err.count("\n") == 1
    assert cache_entries(hub_env) == []
