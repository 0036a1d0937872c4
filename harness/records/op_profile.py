"""Per-op time measured on a board: TFLite's `benchmark_model --enable_op_profiling=true` output as a record.

The Python interpreters (ai-edge-litert, tflite-runtime, tf.lite) offer no op profiler, so per-op time
comes from the benchmark tool run on the board; its log is read here into an `op_profile` record.

What is read (the tool's profile summary, as TensorFlow Lite and LiteRT builds have printed it):
- "Profiling Info for Benchmark Initialization" and "Operator-wise Profiling Info for Regular Benchmark
  Runs" set the phase (init / run) of the tables after them (a log without them is one run-phase profile);
  "Primary graph", "Subgraph ..." and "Delegate internal" headings set their scope;
- "Run Order" tables (every node once, in execution order) and "Summary by node type" tables. Columns are
  found by the header row, never by position: TFLite up to about 2.10 printed a `[start]` column before
  `[first]`, later builds and LiteRT do not (`LAYOUTS` lists the layouts known). A header with another
  column set is refused, naming the header found, rather than read into the wrong fields. "Top by ..."
  tables repeat Run Order rows: their header is checked, their rows are skipped;
- rows split on tabs (a log prefix before the first tab is ignored) or, where a log was pasted with its tabs
  turned into spaces, on the run of numbers between the node type and the name;
- "Timings (microseconds): count=.. avg=.." after a profile; the delegate's "Replacing N out of M node(s)
  with delegate (NAME) node, yielding K partitions" line (the board's own delegate coverage); the memory
  footprint lines: "Memory footprint delta from the start of the tool (MB): init=.. overall=.." (its older
  label "Peak memory footprint (MB): init=.. overall=.."), "Overall peak memory footprint (MB) via periodic
  monitoring: ..", and LiteRT's "Init footprint: .. MB", "Overall footprint: .. MB", "Peak memory: .. MB".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from harness.common.fileio import sha256_file
from harness.errors import HarnessError
from harness.records.tool_types import OpProfileRecord

_TABLE = re.compile(r"=+ (.+?) =+")
_PROFILE_TABLE = re.compile(r"=+ (Run Order|Top by .+?|Summary by node type) =+")
_REPLACING = re.compile(r"Replacing (\d+) out of (\d+) node\(s\) with delegate \(([^)]+)\) node, "
                        r"yielding (\d+) partitions")
_TIMINGS = re.compile(r"Timings \(microseconds\): (.*)")
_NUMBER = r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?%?"
_PHASES = (("Benchmark Initialization", "init"), ("Regular Benchmark Runs", "run"))
_SCOPES = (("Delegate internal", "delegate"), ("Primary graph", "primary"), ("Subgraph", "subgraph"))
RUN_ORDER, TOP, BY_TYPE = "Run Order", "Top by", "Summary by node type"
MARKERS = (RUN_ORDER, BY_TYPE)

# Each header label as printed -> the record field it fills.
_FIELDS = {"[node type]": "node_type", "[Node type]": "node_type", "[start]": "start_ms", "[first]": "first_ms",
           "[avg ms]": "avg_ms", "[%]": "percent", "[avg %]": "percent", "[cdf%]": "cdf_percent",
           "[cdf %]": "cdf_percent", "[mem KB]": "mem_kb", "[times called]": "times_called", "[count]": "count",
           "[Name]": "name"}
_TEXT, _INTEGER = ("node_type", "name"), ("count", "times_called")
# The header rows benchmark_model has printed (tensorflow/core/util/stats_calculator.cc), per table kind.
LAYOUTS: dict[str, tuple[str, ...]] = {
    "run order with [start] (TFLite to ~2.10)": ("[node type]", "[start]", "[first]", "[avg ms]", "[%]", "[cdf%]",
                                                 "[mem KB]", "[times called]", "[Name]"),
    "run order (later TFLite, LiteRT)": ("[node type]", "[first]", "[avg ms]", "[%]", "[cdf%]", "[mem KB]",
                                         "[times called]", "[Name]"),
    "summary by node type": ("[Node type]", "[count]", "[avg ms]", "[avg %]", "[cdf %]", "[mem KB]",
                             "[times called]"),
}
_TABLE_LAYOUTS = {RUN_ORDER: ("run order with [start] (TFLite to ~2.10)", "run order (later TFLite, LiteRT)"),
                  TOP: ("run order with [start] (TFLite to ~2.10)", "run order (later TFLite, LiteRT)"),
                  BY_TYPE: ("summary by node type",)}
# Memory lines: pattern -> the fields its numbers fill (MB).
_MEMORY = (
    (re.compile(r"(Memory footprint delta from the start of the tool \(MB\)): init=(\S+) overall=(\S+)"),
     ("init_mb", "overall_mb")),
    (re.compile(r"(Peak memory footprint \(MB\)): init=(\S+) overall=(\S+)"), ("init_mb", "overall_mb")),
    (re.compile(r"(Overall peak memory footprint \(MB\) via periodic monitoring): (\S+)"), ("peak_mb",)),
    (re.compile(r"(Init footprint):\s+(\S+) MB"), ("init_mb",)),
    (re.compile(r"(Overall footprint):\s+(\S+) MB"), ("overall_mb",)),
    (re.compile(r"(Peak memory):\s+(\S+) MB"), ("peak_mb",)),
)


@dataclass(frozen=True)
class _Header:
    """One table's header row: which record field each column fills, and how a space-separated row looks."""

    columns: tuple[str, ...]
    fields: tuple[str, ...]
    prefix: str
    spaced: re.Pattern

    @classmethod
    def parse(cls, line: str, table: str) -> _Header:
        at = line.lower().index("[node type]")
        columns = tuple(re.findall(r"\[[^\]]*\]", line[at:]))
        known = [LAYOUTS[name] for name in _TABLE_LAYOUTS[table]]
        if columns not in known:
            raise HarnessError(f"unknown benchmark_model table layout in {table!r}: {' '.join(columns)}; "
                               f"known layouts: {' | '.join(' '.join(k) for k in known)}")
        fields = tuple(_FIELDS[c] for c in columns)
        numbers = sum(f not in _TEXT for f in fields)
        tail = r"\s+(\S.*?)\s*$" if fields[-1] == "name" else r"\s*$"
        spaced = re.compile(r"^\s*(\S.*?)" + "".join(rf"\s+({_NUMBER})" for _ in range(numbers)) + tail)
        return cls(columns, fields, line[:at].strip(), spaced)

    def row(self, line: str) -> dict | None:
        """A data row as a dict of its fields; None for a line that is not one (blank, note, wrapped)."""
        if "\t" in line:
            cells = [c.strip() for c in line.split("\t")]
            while cells and not cells[-1]:
                cells.pop()
            if len(cells) < len(self.fields):
                return None
            cells = cells[-len(self.fields):]
        else:
            text = line.strip()
            if self.prefix and text.startswith(self.prefix):
                text = text[len(self.prefix):]
            m = self.spaced.match(text)
            if m is None:
                return None
            cells = list(m.groups())
        row: dict = {}
        for field, cell in zip(self.fields, cells, strict=True):
            if field in _TEXT:
                row[field] = cell
                continue
            try:
                number = float(cell.rstrip("%"))
            except ValueError:
                return None
            row[field] = int(number) if field in _INTEGER else number
        return row


def looks_like_op_profile(path: str | Path) -> bool:
    """A text file with a heading of the tool's op-profile tables (not JSON: record files are read elsewhere)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            head = f.read(1 << 20)
    except OSError:
        return False
    return not head.lstrip().startswith(("{", "[")) and _PROFILE_TABLE.search(head) is not None


def _table_kind(title: str) -> str | None:
    if title.startswith(TOP):
        return TOP
    return title if title in MARKERS else None


def parse_op_profile(text: str) -> dict:
    """The tables, timings, delegate and memory lines of one benchmark_model log, as plain data."""
    profiles: list[dict] = []
    delegation = []
    memory: dict = {}
    phase, scope = "run", "primary"
    table: str | None = None
    header: _Header | None = None
    current: dict | None = None
    for raw in text.splitlines():
        line = raw.rstrip()
        if m := _TABLE.search(line):
            table, header = _table_kind(m.group(1).strip()), None
            if table in MARKERS:
                if current is None or table in current["seen"]:
                    current = {"phase": phase, "scope": scope, "columns": None, "ops": [], "by_type": [],
                               "timings_us": None, "seen": set()}
                    profiles.append(current)
                current["seen"].add(table)
            continue
        if table is not None and "[node type]" in line.lower():
            header = _Header.parse(line, table)
            if table == RUN_ORDER and current is not None:
                current["columns"] = list(header.columns)
            continue
        if header is not None and current is not None and (row := header.row(line)) is not None:
            if table == RUN_ORDER:
                current["ops"].append(row)
            elif table == BY_TYPE:
                current["by_type"].append(row)
            continue
        if m := _TIMINGS.search(line):
            if current is not None:
                current["timings_us"] = {k: float(v) for k, v in re.findall(r"(\w+)=([-\d.e+]+)", m.group(1))}
            table = header = None
            continue
        if m := _REPLACING.search(line):
            delegation.append({"delegate": m.group(3), "replaced": int(m.group(1)), "of": int(m.group(2)),
                               "partitions": int(m.group(4))})
            continue
        if _read_memory(line, memory):
            continue
        for key, name in _PHASES:
            if key in line:
                phase, scope, current, table, header = name, "primary", None, None, None
        for key, name in _SCOPES:
            if key in line and "=" not in line and "\t" not in line:
                scope, current, table, header = name, None, None, None
    for p in profiles:
        p.pop("seen")
    profiles = [p for p in profiles if p["ops"] or p["by_type"]]
    if not profiles:
        raise HarnessError("no op-profiling table found: run benchmark_model with --enable_op_profiling=true "
                           "and import its whole output")
    return {"profiles": profiles, "delegation": delegation, "memory": memory or None}


def _read_memory(line: str, memory: dict) -> bool:
    """Fill `memory` (MB, and the label as printed) from one memory-footprint line; False if it is not one."""
    for pattern, fields in _MEMORY:
        if m := pattern.search(line):
            try:
                values = [float(v) for v in m.groups()[1:]]
            except ValueError:
                return False
            memory.update(zip(fields, values, strict=True))
            memory.setdefault("printed_as", []).append(m.group(1))
            return True
    return False


def op_profile_record(path: str | Path, host_name: str | None = None) -> OpProfileRecord:
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
    return cast(OpProfileRecord, record)  # new_record's envelope with the op_profile body: what the type says


__all__ = ["LAYOUTS", "MARKERS", "looks_like_op_profile", "op_profile_record", "parse_op_profile"]
