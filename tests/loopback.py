"""A loopback HTTP server for the download tests: files, TF Hub-style handles, Range requests, dropped connections.

It listens on 127.0.0.1 (port 0), so nothing reaches the internet. Like tfhub.dev it serves a handle's
compressed SavedModel only when the query asks for `tf-hub-format=compressed`; like a real file server it
answers `Range: bytes=N-` with 206, and it can be told to drop the connection half-way through a response.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import socket
import threading
import time
import urllib.parse
import zipfile
from pathlib import Path


class HubServer:
    """A loopback stand-in for tfhub.dev: hub routes answer only with ?tf-hub-format=compressed."""

    def __init__(self) -> None:
        self.hub: dict[str, bytes] = {}  # handle path -> compressed SavedModel
        self.files: dict[str, bytes] = {}  # plain file path -> content
        self.requests: list[str] = []  # every request line's target, answered or not
        self.ranges: list[str | None] = []  # each request's Range header (None: no header)
        self.drops: dict[str, int] = {}  # path -> how many more responses to cut off half-way
        self.honour_range = True  # False: answer every request with the whole file, as some servers do
        self.send_length = True  # False: no Content-Length; the body ends when the connection closes
        self.delay_s = 0.0  # wait this long before each answer (a slow server, so that clients overlap)
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                time.sleep(server.delay_s)
                server.ranges.append(self.headers.get("Range"))
                parts = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(parts.query)
                body = None
                if parts.path in server.hub and query.get("tf-hub-format") == ["compressed"]:
                    body = server.hub[parts.path]
                elif parts.path in server.files and not parts.query:
                    body = server.files[parts.path]
                if body is None:
                    self.send_error(404)
                    return
                start = self._range_start()
                if start is not None and start >= len(body):
                    self.send_error(416)
                    return
                self.send_response(200 if start is None else 206)
                if start is not None:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                payload = body[start or 0:]
                self.send_header("Content-Type", "application/octet-stream")
                if server.send_length:
                    self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if server.drops.get(parts.path, 0) > 0:  # promise the whole payload, send half, hang up
                    server.drops[parts.path] -= 1
                    self.wfile.write(payload[: len(payload) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(payload)

            def _range_start(self) -> int | None:
                value = self.headers.get("Range")
                if not server.honour_range or not value or not value.startswith("bytes=") or not value.endswith("-"):
                    return None
                return int(value[len("bytes="):-1])

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return self.base + path

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


# --------------------------------------------------------------------------------------------------
# Substitute COCO archives and manifests of their own

VAL_URL = "http://images.cocodataset.org/zips/val2017.zip"
ANN_URL = "http://images.cocodataset.org/annotations/annotations_trainval2017.zip"


def zip_folder(folder: Path, top: str) -> bytes:
    """A zip of `folder`'s files under `top/` (as COCO's archives hold val2017/ and annotations/)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            zf.write(path, f"{top}/{path.relative_to(folder).as_posix()}")
    return buf.getvalue()


def coco_archives(coco_root: Path) -> tuple[bytes, bytes]:
    """(val2017.zip, annotations_trainval2017.zip) made on the fly from a COCO root's val2017/ and annotations/."""
    return zip_folder(coco_root / "val2017", "val2017"), zip_folder(coco_root / "annotations", "annotations")


def write_manifest(directory: Path, name: str, url: str, blob: bytes, member: str, *, size: int | None = None,
                   sha256: str | None = None, files: int | None = None) -> Path:
    """A dataset manifest like datasets/*.json for a substitute archive (`size`/`sha256` override the true ones)."""
    directory.mkdir(parents=True, exist_ok=True)
    unpack: dict = {"member": member, "into": "coco"}
    if files is not None:
        unpack["files"] = files
    if member == "annotations":
        unpack["required"] = ["instances_val2017.json"]
    body = {"name": name, "description": f"substitute {name} for the tests",
            "archive": {"url": url, "size": len(blob) if size is None else size,
                        "sha256": sha256 or hashlib.sha256(blob).hexdigest(), "confirmed": True},
            "unpack": unpack}
    path = directory / f"{name}.json"
    path.write_text(json.dumps(body))
    return path


def serve_coco(server: HubServer, manifests: Path, val_zip: bytes, ann_zip: bytes, files: int | None = None) -> None:
    """Serve the two archives where $HARNESS_URL_BASE=server.base puts the official addresses, with manifests."""
    for url, blob in ((VAL_URL, val_zip), (ANN_URL, ann_zip)):
        server.files[official_path(url)] = blob
    write_manifest(manifests, "coco-val2017", VAL_URL, val_zip, "val2017", files=files)
    write_manifest(manifests, "coco-annotations-2017", ANN_URL, ann_zip, "annotations")


def official_path(url: str) -> str:
    """The path an official address has on the loopback server under $HARNESS_URL_BASE (/<host>/<path>)."""
    parts = urllib.parse.urlsplit(url)
    return f"/{parts.netloc}{parts.path}"
