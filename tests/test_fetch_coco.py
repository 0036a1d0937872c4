"""`harness fetch coco-val2017 / coco-annotations-2017` and `harness eval --coco auto`, against a loopback server.

The official archives (815 MB and 253 MB) cannot be downloaded here, so the server serves substitutes
made on the fly: a few real val2017 images of the mirror and their own annotations, zipped the way
COCO's archives are (val2017/..., annotations/...), described by manifests of the tests' own. The
official addresses are kept; $HARNESS_URL_BASE sends them to the server as /<host>/<path>.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from loopback import (
    ANN_URL,
    VAL_URL,
    HubServer,
    coco_archives,
    official_path,
    serve_coco,
    write_manifest,
    zip_folder,
)

from harness.cli import main
from harness.errors import HarnessError
from harness.models import fetch
from harness.models.datasets import COCO_VAL, MANIFESTS_ENV, DatasetArchive, available, fetch_dataset
from harness.models.fetch import CACHE_ENV, URL_BASE_ENV, rebased

IMAGES = 3
REPO_DATASETS = Path(__file__).resolve().parents[1] / "datasets"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("no_proxy", "*")  # a proxy from the environment must not intercept loopback requests
    monkeypatch.setenv("NO_PROXY", "*")
    monkeypatch.setattr(fetch, "BACKOFF_S", 0.0)
    s = HubServer()
    yield s
    s.close()


@pytest.fixture
def subset(mirror: Path, tmp_path: Path) -> Path:
    """A COCO root with the mirror's first IMAGES val2017 images (by id) and exactly their annotations."""
    gt = json.loads((mirror / "coco" / "annotations" / "instances_val2017.json").read_text())
    images = sorted(gt["images"], key=lambda i: i["id"])[:IMAGES]
    ids = {i["id"] for i in images}
    root = tmp_path / "subset"
    (root / "val2017").mkdir(parents=True)
    (root / "annotations").mkdir()
    for image in images:
        shutil.copyfile(mirror / "coco" / "val2017" / image["file_name"], root / "val2017" / image["file_name"])
    own = {**gt, "images": images, "annotations": [a for a in gt["annotations"] if a["image_id"] in ids]}
    (root / "annotations" / "instances_val2017.json").write_text(json.dumps(own))
    return root


@pytest.fixture
def env(server: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """The cache, the manifests folder and the URL base of one test."""
    paths = {"cache": tmp_path / "cache", "manifests": tmp_path / "manifests"}
    monkeypatch.setenv(CACHE_ENV, str(paths["cache"]))
    monkeypatch.setenv(MANIFESTS_ENV, str(paths["manifests"]))
    monkeypatch.setenv(URL_BASE_ENV, server.base)
    return paths


@pytest.fixture
def served(server: HubServer, env: dict[str, Path], subset: Path) -> tuple[bytes, bytes]:
    val_zip, ann_zip = coco_archives(subset)
    serve_coco(server, env["manifests"], val_zip, ann_zip, files=IMAGES)
    return val_zip, ann_zip


def cache_files(cache: Path) -> list[Path]:
    return sorted(p for p in cache.rglob("*") if p.is_file()) if cache.exists() else []


# --------------------------------------------------------------------------------------------------
# The real manifests


def test_real_manifests_hold_the_published_values() -> None:
    """The official addresses with their publicly recorded sizes and sha256, not yet confirmed."""
    val = DatasetArchive.load("coco-val2017", REPO_DATASETS)
    ann = DatasetArchive.load("coco-annotations-2017", REPO_DATASETS)
    assert (val.url, val.size, val.sha256) == (
        "http://images.cocodataset.org/zips/val2017.zip", 815585330,
        "4f7e2ccb2866ec5041993c9cf2a952bbed69647b115d0f74da7ce8f4bef82f05")
    assert (ann.url, ann.size, ann.sha256) == (
        "http://images.cocodataset.org/annotations/annotations_trainval2017.zip", 252907541,
        "113a836d90195ee1f884e704da6304dfaaecff1f023f49b6ca93c4aaae470268")
    assert (val.member, val.into, val.files) == ("val2017", "coco", 5000)
    assert ann.required == ("instances_val2017.json",)
    assert not val.confirmed and not ann.confirmed
    for path in ("coco-val2017.json", "coco-annotations-2017.json"):
        text = (REPO_DATASETS / path).read_text()
        assert "first real download confirms" in text and "provenance" in text
    assert set(COCO_VAL) <= set(available(REPO_DATASETS))


def test_url_base_keeps_host_and_query(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(URL_BASE_ENV, "http://127.0.0.1:8000/mirror/")
    assert rebased(VAL_URL) == "http://127.0.0.1:8000/mirror/images.cocodataset.org/zips/val2017.zip"
    assert rebased("https://tfhub.dev/a/b/1?tf-hub-format=compressed") == (
        "http://127.0.0.1:8000/mirror/tfhub.dev/a/b/1?tf-hub-format=compressed")
    monkeypatch.delenv(URL_BASE_ENV)
    assert rebased(VAL_URL) == VAL_URL


# --------------------------------------------------------------------------------------------------
# harness fetch


def test_fetch_downloads_verifies_and_unpacks_once(served, server: HubServer, env, subset: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Both archives land as <cache>/coco/{val2017,annotations}: the served files, byte for byte; again: no request."""
    rc = main(["fetch", "coco-val2017", "coco-annotations-2017", "--quiet", "--json", str(tmp_path / "fetch.json")])
    assert rc == 0
    out = capsys.readouterr().out
    assert f"coco-val2017: downloaded {len(served[0])} bytes from {server.base}/images.cocodataset.org/zips/" \
           "val2017.zip, size and sha256 match the manifest" in out
    coco = env["cache"] / "coco"
    for name in ("val2017", "annotations"):
        mine = sorted(p.name for p in (coco / name).iterdir())
        assert mine == sorted(p.name for p in (subset / name).iterdir())
        for p in (subset / name).iterdir():
            assert (coco / name / p.name).read_bytes() == p.read_bytes()
    assert [p.parent.name for p in cache_files(env["cache"])].count("val2017") == IMAGES
    assert not [p for p in cache_files(env["cache"]) if p.name.endswith((".part", ".download"))]
    record = json.loads((tmp_path / "fetch.json").read_text())
    assert record["kind"] == "fetch" and [i["name"] for i in record["items"]] == ["coco-val2017",
                                                                                  "coco-annotations-2017"]
    assert all(i["downloaded"] for i in record["items"])
    before = len(server.requests)
    assert main(["fetch", "coco-val2017", "coco-annotations-2017", "--quiet"]) == 0
    assert "coco-val2017: already here" in capsys.readouterr().out
    assert len(server.requests) == before


def test_wrong_size_is_refused_before_the_transfer(server: HubServer, env, subset: Path) -> None:
    val_zip, _ = coco_archives(subset)
    server.files[official_path(VAL_URL)] = val_zip
    write_manifest(env["manifests"], "coco-val2017", VAL_URL, val_zip, "val2017", size=len(val_zip) + 1)
    with pytest.raises(HarnessError, match=r"size mismatch .* the manifest says"):
        fetch_dataset("coco-val2017", progress=False)
    assert cache_files(env["cache"]) == []


@pytest.mark.parametrize(("delta", "match"), [(-1, "more than the"), (10, r"expected \d+ bytes, got")])
def test_wrong_size_without_a_length_header_is_deleted(delta: int, match: str, server: HubServer, env,
                                                       subset: Path) -> None:
    """A server that announces no length: the body is measured as it comes, refused and deleted."""
    val_zip, _ = coco_archives(subset)
    server.files[official_path(VAL_URL)] = val_zip
    server.send_length = False
    write_manifest(env["manifests"], "coco-val2017", VAL_URL, val_zip, "val2017", size=len(val_zip) + delta)
    with pytest.raises(HarnessError, match=match):
        fetch_dataset("coco-val2017", progress=False)
    assert cache_files(env["cache"]) == []


def test_wrong_sha256_is_refused_and_deleted(server: HubServer, env, subset: Path) -> None:
    val_zip, _ = coco_archives(subset)
    server.files[official_path(VAL_URL)] = val_zip
    write_manifest(env["manifests"], "coco-val2017", VAL_URL, val_zip, "val2017", sha256="0" * 64)
    with pytest.raises(HarnessError, match=r"sha256 mismatch .* refused, nothing kept"):
        fetch_dataset("coco-val2017", progress=False)
    assert cache_files(env["cache"]) == []


def test_dropped_connection_is_resumed(served, server: HubServer, env) -> None:
    path = official_path(VAL_URL)
    server.drops[path] = 2
    item = fetch_dataset("coco-val2017", progress=False)
    assert item["downloaded"]
    assert sum(1 for r in server.requests if r == path) == 3
    half = len(served[0]) // 2  # the server sends half of what each response promises, then hangs up
    assert [r for r in server.ranges if r][:2] == [f"bytes={half}-", f"bytes={half + (len(served[0]) - half) // 2}-"]
    assert len(list(Path(item["path"]).iterdir())) == IMAGES


def test_download_killed_earlier_resumes_from_its_part(served, server: HubServer, env, subset: Path) -> None:
    """A .part left by a killed fetch is continued with a Range request; the result is the whole archive."""
    val_zip = served[0]
    part = env["cache"] / "coco" / "..val2017.download.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(val_zip[:1000])
    fetch_dataset("coco-val2017", progress=False)
    assert server.ranges == ["bytes=1000-"]
    for p in (subset / "val2017").iterdir():
        assert (env["cache"] / "coco" / "val2017" / p.name).read_bytes() == p.read_bytes()


def test_fetches_starting_together_download_once(served, server: HubServer, env, subset: Path) -> None:
    """Four fetchers of one dataset started behind a barrier against a slow server (shards, or pods sharing
    a cache volume): one downloads, the others wait for its lock and find the folder made."""
    import threading

    server.delay_s = 0.3
    barrier, results, errors = threading.Barrier(4), [], []

    def fetch_one() -> None:
        barrier.wait()
        try:
            results.append(fetch_dataset("coco-val2017", progress=False))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=fetch_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(r["downloaded"] for r in results) == [False, False, False, True]
    assert server.requests.count(official_path(VAL_URL)) == 1
    for p in (subset / "val2017").iterdir():
        assert (env["cache"] / "coco" / "val2017" / p.name).read_bytes() == p.read_bytes()
    assert [p.name for p in cache_files(env["cache"]) if p.parent.name != "val2017"] == []  # no lock, part, archive


def _unsafe_zip(kind: str, subset: Path) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in sorted((subset / "val2017").iterdir()):
            zf.write(p, f"val2017/{p.name}")
        if kind == "parent":
            zf.writestr("val2017/../../escaped.txt", b"x")
        elif kind == "absolute":
            zf.writestr("/tmp/escaped-absolute.txt", b"x")
        else:
            info = zipfile.ZipInfo("val2017/link.jpg")
            info.external_attr = 0o120777 << 16
            zf.writestr(info, "/etc/passwd")
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["parent", "absolute", "symlink"])
def test_unsafe_members_are_refused(kind: str, server: HubServer, env, subset: Path, tmp_path: Path) -> None:
    blob = _unsafe_zip(kind, subset)
    server.files[official_path(VAL_URL)] = blob
    write_manifest(env["manifests"], "coco-val2017", VAL_URL, blob, "val2017")
    with pytest.raises(HarnessError, match="refusing archive member"):
        fetch_dataset("coco-val2017", progress=False)
    assert cache_files(env["cache"]) == []
    assert not (tmp_path / "escaped.txt").exists() and not (env["cache"] / "escaped.txt").exists()


def test_archive_short_of_what_the_manifest_promises(server: HubServer, env, subset: Path) -> None:
    """A verified archive that holds fewer images than the manifest says is not unpacked into the cache."""
    val_zip = zip_folder(subset / "val2017", "val2017")
    server.files[official_path(VAL_URL)] = val_zip
    write_manifest(env["manifests"], "coco-val2017", VAL_URL, val_zip, "val2017", files=IMAGES + 1)
    with pytest.raises(HarnessError, match=f"holds {IMAGES} files, the manifest says {IMAGES + 1}"):
        fetch_dataset("coco-val2017", progress=False)
    assert cache_files(env["cache"]) == []


def test_unknown_name_and_missing_manifests(env, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fetch", "coco-test2017"]) == 2
    assert "nothing to fetch called 'coco-test2017'" in capsys.readouterr().err
    with pytest.raises(HarnessError, match="no dataset manifest"):
        fetch_dataset("coco-val2017")


# --------------------------------------------------------------------------------------------------
# harness eval --coco auto


def test_eval_coco_auto_fetches_once_and_scores_like_a_local_root(
        served, server: HubServer, env, subset: Path, mirror: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """--coco auto says what it fetched, then scores exactly as --coco on the same files on disk does."""
    def run(coco: str, name: str) -> dict:
        assert main(["eval", "mb3-centernet-f32", "--mirror", str(mirror), "--coco", coco, "--quiet",
                     "--ci-resamples", "0", "--out", str(tmp_path / name), "--json",
                     str(tmp_path / f"{name}.json")]) == 0
        return json.loads((tmp_path / f"{name}.json").read_text())

    auto = run("auto", "auto")
    out = capsys.readouterr().out
    assert "mb3-centernet-f32: already here" in out  # the model is the mirror's
    assert "coco-val2017: downloaded" in out and "coco-annotations-2017: downloaded" in out
    local = run(str(subset), "local")
    assert auto["results"]["stats"] == local["results"]["stats"]
    assert auto["dataset"]["image_count"] == IMAGES
    assert auto["dataset"]["annotation_sha256"] == local["dataset"]["annotation_sha256"]
    before = len(server.requests)
    again = run("auto", "again")
    assert "coco-val2017: already here" in capsys.readouterr().out
    assert len(server.requests) == before
    assert again["results"]["stats"] == auto["results"]["stats"]


def test_eval_coco_auto_offline_is_one_line(env, mirror: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    write_manifest(env["manifests"], "coco-val2017", VAL_URL, b"x", "val2017")
    write_manifest(env["manifests"], "coco-annotations-2017", ANN_URL, b"y", "annotations")
    monkeypatch.setenv(URL_BASE_ENV, "http://127.0.0.1:9")  # nothing listens on the discard port
    assert main(["eval", "mb3-centernet-f32", "--mirror", str(mirror), "--coco", "auto", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness: error: download failed") and err.count("\n") == 1
