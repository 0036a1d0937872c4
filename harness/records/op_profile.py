"""Per-op time measured on a board: TFLite's `benchmark_model --enable_op_profiling=true` output as a record.

The Python interpreters (ai-edge-litert, tflite-runtime, tf.lite) offer no op profiler, so per-op time
comes from the benchmark tool run on the board; its log is read here into an `op_profile` record.

What is read (the tool's profile summary, the same in TensorFlow Lite and LiteRT builds):
- "Profiling Info for Benchmark Initialization" and "Operator-wise Profiling Info for Regular Benchmark
  Runs" set the phase (init / run) of the tables after them; "Primary graph", "Subgraph ..." and
  "Delegate internal" headings set their scope (a delegate's own ops, e.g. XNNPACK's kernels);
- "Run Order" tables (every node once, in execution order): node type, first and average ms, % and
  cumulative %, memory KB, times called, name; "Summary by node type" tables: per node type, count,
  average ms, %. "Top by ..." tables repeat Run Order rows and are skipped;
- "Timings (microseconds): count=.. first=.. avg=.. std=.." after a profile, and the delegate's
  "Replacing N out of M node(s) with delegate (NAME) node, yielding K partitions" line: the board's
  own delegate coverage.
Rows are tab-separated with the fields right-aligned; a log prefix before the first tab is ignored.
"""

from __future__ import annotations

import re
from pathlib import Path

from harness.common.fileio import sha256_file
from harness.errors import HarnessError

_TABLE = re.compile(r"=+ (.+?) =+")
_REPLACING = re.compile(r"Replacing (\d+) out of (\d+) node\(s\) with delegate \(([^)]+)\) node, "
                        r"yielding (\d+) partitions")
_TIMINGS = re.compile(r"Timings \(microseconds\): (.*)")
_PHASES = (("Benchmark Initialization", "init"), ("Regular Benchmark Runs", "run"))
_SCOPES = (("Delegate internal", "delegate"), ("Primary graph", "primary"), ("Subgraph", "subgraph"))
_RUN_ORDER = ("node_type", "first_ms", "avg_ms", "percent", "cdf_percent", "mem_kb", "times_called", "name")
_BY_TYPE = ("node_type", "count", "avg_ms", "percent", "cdf_percent", "mem_kb", "times_called")
MARKERS = ("Run Order", "Summary by node type")


def looks_like_op_profile(path: str | Path) -> bool:
    """A text file with the tool's op-profile tables (not JSON: record files are read elsewhere)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            head = f.read(1 << 20)
    except OSError:
        return False
    return not head.lstrip().startswith(("{", "[")) and all(m in head for m in MARKERS)


def parse_op_profile(text: str) -> dict:
    """The tables, timings and delegate lines of one benchmark_model log, as plain data."""
    profiles: list[dict] = []
    delegation = []
    phase, scope = "run", "primary"
    table: str | None = None
    current: dict | None = None
    for raw in text.splitlines():
        line = raw.rstrip()
        for key, name in _PHASES:
            if key in line:
                phase, scope, current = name, "primary", None
        for key, name in _SCOPES:
            if key in line and "=" not in line and "\t" not in line:
                scope, current = name, None
        if m := _REPLACING.search(line):
            delegation.append({"delegate": m.group(3), "replaced": int(m.group(1)), "of": int(m.group(2)),
                               "partitions": int(m.group(4))})
            continue
        if m := _TABLE.search(line):
            table = m.group(1).strip()
            if table in MARKERS:
                if current is None or table in current["seen"]:
                    current = {"phase": phase, "scope": scope, "ops": [], "by_type": [], "timings_us": None,
                               "seen": set()}
                    profiles.append(current)
                current["seen"].add(table)
            continue
        if m := _TIMINGS.search(line):
            if current is not None:
                current["timings_us"] = {k: float(v) for k, v in re.findall(r"(\w+)=([-\d.e+]+)", m.group(1))}
            table = None
            continue
        if current is None or "\t" not in line:
            continue
        fields = [f.strip() for f in line.split("\t")]
        if table == "Run Order":
            _add_row(current["ops"], fields, _RUN_ORDER)
        elif table == "Summary by node type":
            _add_row(current["by_type"], fields, _BY_TYPE)
    for p in profiles:
        p.pop("seen")
    profiles = [p for p in profiles if p["ops"] or p["by_type"]]
    if not profiles:
        raise HarnessError("no op-profiling table found: run benchmark_model with --enable_op_profiling=true "
                           "and import its whole output")
    return {"profiles": profiles, "delegation": delegation}


def _add_row(rows: list[dict], fields: list[str], names: tuple[str, ...]) -> None:
    """One data row: the last len(names) tab fields (a log prefix may come first); headers are skipped."""
    while fields and not fields[-1]:
        fields.pop()
    if len(fields) < len(names) or fields[-len(names)].startswith("["):
        return
    values = fields[-len(names):]
    row: dict = {}
    for name, value in zip(names, values, strict=True):
        if name in ("node_type", "name"):
            row[name] = value
            continue
        try:
            number = float(value.rstrip("%"))
        except ValueError:
            return  # not a data row
        row[name] = int(number) if name in ("count", "times_called") else number
    rows.append(row)


def op_profile_record(path: str | Path, host_name: str | None = None) -> dict:
    """The op_profile record of one benchmark_model log; its host is the board it names, not this machine."""
    from harness.records import host
    from harness.records.schema import new_record

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise HarnessError(f"cannot read {path}: {exc.strerror}") from None
    try:
        body = parse_op_profile(text)
    except HarnessError as exc:
        raise HarnessError(f"{path}: {exc}") from None
    graph = re.search(r"Graph: \[([^\]]+)\]", text)
    record = new_record("op_profile", model={"name": Path(graph.group(1)).name if graph else None,
                                              "path": graph.group(1) if graph else None},
                        source={"file": str(path), "sha256": sha256_file(path), "tool": "benchmark_model",
                                "format": "op-profiling summary (--enable_op_profiling=true)"}, **body)
    importer = host.describe()
    name = host_name or "unknown-board"
    record["host"] = {"fingerprint": f"imported:{name}", "name": name,
                      "note": f"measured by benchmark_model on {name}; imported on {importer['fingerprint']}"}
    return record


__all__ = ["MARKERS", "looks_like_op_profile", "op_profile_record", "parse_op_profile"]
