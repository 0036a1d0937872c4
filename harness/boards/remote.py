"""Running one job on one board: probe, copy what it lacks, run with progress here, fetch the outputs.

Four steps over one SSH connection (harness.boards.ssh):
1. probe: the board's Python, machine, TFLite runtimes, free disk, and which of the files the job needs
   (bundle, job spec, model, images) its content-addressed store already has (harness.measure.cas);
2. copy: only the missing files, as one tar stream, each checked against its sha256 on arrival;
3. run: the bundle runs the job in runs/<kind>-<job sha>/ (the same command finds the same folder, so an
   eval resumes from its checkpoint after a dropped connection); its progress events are shown here and its
   outputs come back as a tar on stdout;
4. clean up: the run folder goes once its outputs are here.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import io
import json
import tarfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from harness.boards.bundle import build_bundle
from harness.boards.ssh import SshConnection, explain
from harness.boards.targets import SshAddress, Target
from harness.common.fileio import sha256_file
from harness.errors import HarnessError, first_line
from harness.measure import cas
from harness.measure.job import FORMAT, VERSION

MIN_PYTHON = (3, 10)
BOARD_NEEDS = "numpy, Pillow and a TFLite runtime (pip install ai-edge-litert, or tflite-runtime)"


@dataclass
class BoardJob:
    """What to run: the spec (kind, card, settings; no paths of this machine) and the files it needs, by the
    name they get under the run's inputs/ folder."""

    kind: str
    spec: dict
    files: dict[str, Path]


@dataclass
class BoardRun:
    """One job done on one board: where its outputs lie here, and what it took to get them."""

    target: Target
    address: SshAddress
    probe: dict
    copied: dict
    outputs: Path
    run_id: str
    bundle_sha256: str
    wall_s: float = 0.0
    events: list[dict] = field(default_factory=list)

    def block(self) -> dict:
        """The record's `board` block: which board, which Python, what was copied (files, bytes)."""
        return {"target": self.target.spec, "address": self.address.label, "python": self.probe["executable"],
                "python_version": self.probe["python"], "machine": self.probe["machine"],
                "runtimes": self.probe["runtimes"], "bundle_sha256": self.bundle_sha256, "run_id": self.run_id,
                "copied": self.copied, "wall_s": self.wall_s}


@functools.cache
def _sha256(path: str, mtime_ns: int, size: int) -> str:
    return sha256_file(path)


def file_sha256(path: Path) -> str:
    st = path.stat()
    return _sha256(str(path), st.st_mtime_ns, st.st_size)


def job_document(job: BoardJob) -> tuple[bytes, dict[str, str]]:
    """The job spec as the board reads it (canonical JSON, so the same job has the same sha256) and its
    files' hashes."""
    clash = {"format", "version", "kind", "files"} & set(job.spec)
    if clash:
        raise ValueError(f"a job spec may not set {sorted(clash)}: the document's own keys")
    hashes = {name: file_sha256(path) for name, path in sorted(job.files.items())}
    doc = {"format": FORMAT, "version": VERSION, "kind": job.kind, **job.spec, "files": hashes}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode(), hashes


def run_job(target: Target, job: BoardJob, workdir: Path, *, accept_host_key: bool = False, restart: bool = False,
            echo: Callable[[str], None] | None = None) -> BoardRun:
    """Run JOB on TARGET; its outputs land in WORKDIR/out. Every failure is one HarnessError line."""
    t0 = time.perf_counter()
    with target.reach() as address, SshConnection(address, accept_host_key) as conn:
        bundle = build_bundle()
        job_bytes, hashes = job_document(job)
        job_sha = hashlib.sha256(job_bytes).hexdigest()
        sources: dict[str, Path | bytes] = {bundle.sha256: bundle.data, job_sha: job_bytes}
        for name, sha in hashes.items():
            sources.setdefault(sha, job.files[name])
        info = probe(conn, list(sources))
        copied = send(conn, {sha: src for sha, src in sources.items() if sha not in set(info["present"])}, info)
        run_id = f"{job.kind}-{job_sha[:32]}"
        store = PurePosixPath(info["cache"]) / "cas"
        remote = [address.python, str(store / bundle.sha256), str(store / job_sha), run_id, "--tether"]
        out = workdir / "out"
        events = execute(conn, remote + (["--restart"] if restart else []), out, echo)
        conn.run([address.python, "-c", _cas_source(), "forget", run_id])
    return BoardRun(target, address, info, copied, out, run_id, bundle.sha256, time.perf_counter() - t0, events)


@functools.cache
def _cas_source() -> str:
    return inspect.getsource(cas)


def _no_python(address: SshAddress, stderr: str) -> str:
    return (f"{address.label}: no Python at {address.python!r} on the board ({_tail(stderr)}); install python3 "
            "there, or name it: --on ssh://...?python=/path/to/python3")


def probe(conn: SshConnection, wanted: list[str]) -> dict:
    """What the board has (harness.measure.cas.probe), checked: a recent Python with numpy, Pillow and a runtime."""
    address = conn.address
    proc = conn.run([address.python, "-c", _cas_source(), "probe"], stdin=json.dumps(wanted).encode())
    stderr = proc.stderr.decode(errors="replace")
    if proc.returncode == 255:
        raise HarnessError(explain(address.label, stderr))
    if proc.returncode == 127 or "No such file" in stderr or "not found" in stderr:
        raise HarnessError(_no_python(address, stderr))
    if proc.returncode != 0:
        raise HarnessError(_board_error(address, stderr) or f"{address.label}: probing the board failed "
                           f"(exit {proc.returncode}): {_tail(stderr)}")
    info = json.loads(proc.stdout)
    version = tuple(int(p) for p in info["python"].split(".")[:2])
    if version < MIN_PYTHON:
        raise HarnessError(f"{address.label}: {info['executable']} is Python {info['python']}; the harness needs "
                           f"{'.'.join(map(str, MIN_PYTHON))} or newer (name another with ?python=PATH)")
    if info.get("missing"):
        raise HarnessError(f"{address.label}: {info['executable']} has no {', '.join(info['missing'])}; the board "
                           f"needs {BOARD_NEEDS}")
    if not info["runtimes"]:
        raise HarnessError(f"{address.label}: no TFLite runtime for {info['executable']} on the board; install "
                           "one there (pip install ai-edge-litert, or tflite-runtime), or name a Python that has "
                           "one with ?python=PATH")
    return info


def send(conn: SshConnection, files: dict[str, Path | bytes], info: dict) -> dict:
    """Copy FILES (sha256 -> local file or bytes) into the board's store as one tar; returns what was copied."""
    sizes = {sha: len(src) if isinstance(src, bytes) else src.stat().st_size for sha, src in files.items()}
    total = sum(sizes.values())
    copied = {"files": len(files), "bytes": total, "already_there": len(info["present"])}
    if not files:
        return copied
    address = conn.address
    if total > info["free_bytes"]:
        raise HarnessError(cas.DISK_FULL.format(where=info["cache"]) + f" ({total} bytes to copy, "
                           f"{info['free_bytes']} free)")
    proc = conn.popen([address.python, "-c", _cas_source(), "receive"])
    assert proc.stdin is not None
    try:
        with tarfile.open(fileobj=proc.stdin, mode="w|") as tar:
            for sha, src in sorted(files.items()):
                member = tarfile.TarInfo(sha)
                member.size, member.mode = sizes[sha], 0o444
                if isinstance(src, bytes):
                    tar.addfile(member, io.BytesIO(src))
                else:
                    with open(src, "rb") as f:
                        tar.addfile(member, f)
    except BrokenPipeError:
        pass  # the board stopped reading: its error is on stderr
    with contextlib.suppress(BrokenPipeError):
        proc.stdin.close()
    assert proc.stdout is not None and proc.stderr is not None
    stdout, stderr = proc.stdout.read(), proc.stderr.read()
    proc.wait()
    text = stderr.decode(errors="replace")
    if proc.returncode != 0:
        raise HarnessError(_board_error(address, text) or explain(address.label, text) if proc.returncode == 255
                           else _board_error(address, text) or f"{address.label}: copying failed: {_tail(text)}")
    got = json.loads(stdout)
    if got["files"] != len(files):
        raise HarnessError(f"{address.label}: sent {len(files)} files, the board took {got['files']}")
    return copied


def execute(conn: SshConnection, remote: list[str], out: Path, echo: Callable[[str], None] | None) -> list[dict]:
    """Run the bundle; show its events, unpack the tar it writes into OUT; returns the events."""
    address = conn.address
    proc = conn.popen(remote)
    events: list[dict] = []
    other: list[str] = []

    def read_stderr() -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.decode(errors="replace").rstrip("\n")
            if line.startswith(cas.MARK):
                event = json.loads(line[len(cas.MARK):])
                events.append(event)
                if echo and "error" not in event:
                    echo(f"{address.label}: {event.get('what', '')}"
                         + (f" {event['done']}/{event['total']}" if "done" in event else ""))
            else:
                other.append(line)
                if echo:
                    echo(f"{address.label}: {line}")

    reader = threading.Thread(target=read_stderr, name="harness-board-stderr", daemon=True)
    reader.start()
    with contextlib.suppress(tarfile.TarError, OSError):  # a failed board or a dropped connection: said below
        unpack(proc.stdout, out)
    assert proc.stdout is not None
    proc.stdout.read()
    rc = proc.wait()
    reader.join()
    assert proc.stdin is not None
    proc.stdin.close()
    error = next((e["error"] for e in events if "error" in e), None)
    if rc == 0:
        return events
    if error:
        raise HarnessError(f"{address.label}: {error}")
    if rc in (255, 3) or rc < 0:
        done = [e for e in events if "done" in e]
        kept = f"; the board keeps its checkpoint ({done[-1]['done']} images)" if done else ""
        raise HarnessError(f"{address.label}: the connection dropped during the run{kept}; run the same command "
                           "again to resume")
    raise HarnessError(f"{address.label}: the board side failed (exit {rc}): {_tail(chr(10).join(other))}")


def unpack(stream, out: Path) -> None:
    """The board's outputs tar into OUT: plain files only, nothing outside OUT."""
    out.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            rel = PurePosixPath(member.name)
            if not member.isfile() or rel.is_absolute() or ".." in rel.parts:
                raise HarnessError(f"the board sent an unexpected file {member.name!r}")
            dest = out.joinpath(*rel.parts)
            dest.parent.mkdir(parents=True, exist_ok=True)
            src = tar.extractfile(member)
            assert src is not None
            with open(dest, "wb") as f:
                while chunk := src.read(1 << 20):
                    f.write(chunk)


def _board_error(address: SshAddress, stderr: str) -> str | None:
    """The board side's own one-line error (an event line), if it sent one."""
    for line in reversed(stderr.splitlines()):
        if line.startswith(cas.MARK):
            try:
                return f"{address.label}: {json.loads(line[len(cas.MARK):])['error']}"
            except (ValueError, KeyError):
                return None
    return None


def _tail(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return first_line(Exception(lines[-1])) if lines else "no message"


def copied_line(run: BoardRun) -> str:
    c = run.copied
    return (f"{run.address.label}: copied {c['files']} files ({c['bytes'] / 1e6:.1f} MB), "
            f"{c['already_there']} already on the board")


