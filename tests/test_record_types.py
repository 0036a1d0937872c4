"""The run record's types say exactly what `validate` guarantees: a key a type marks required is one the
schema checks (REQUIRED, SHAPES, or the envelope's own checks), and every key the schema checks is required."""

from __future__ import annotations

import typing

from harness.records import tool_types, types
from harness.records.schema import REQUIRED, SHAPES

# What validate() itself checks of every record, whatever its kind.
ENVELOPE = {"schema", "schema_version", "kind", "host", "host.fingerprint"}
BY_KIND = {"eval": types.EvalRecord, "score": types.ScoreRecord, "bench": types.BenchRecord,
           "ab_bench": types.ABBenchRecord, "quant_compare": tool_types.QuantCompareRecord,
           "doctor": tool_types.DoctorRecord, "quant_search": tool_types.QuantSearchRecord,
           "path_compare": tool_types.PathCompareRecord, "op_profile": tool_types.OpProfileRecord,
           "npu_compile": tool_types.NpuCompileRecord, "submission": tool_types.SubmissionRecord}


def required_paths(td: type, prefix: str = "") -> set[str]:
    """Dotted paths of the required keys, walking into nested TypedDicts through required keys only."""
    hints = typing.get_type_hints(td)
    out = set()
    for key in td.__required_keys__:  # type: ignore[attr-defined]
        out.add(prefix + key)
        if typing.is_typeddict(hints[key]):
            out |= required_paths(hints[key], f"{prefix}{key}.")
    return out


def guaranteed(kind: str) -> set[str]:
    paths = set(ENVELOPE) | set(REQUIRED[kind])
    for path, _ in SHAPES.get(kind, ()):
        parts = path.split(".")
        paths |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
    return paths


def test_every_kind_the_schema_knows_has_a_type():
    assert set(BY_KIND) == set(REQUIRED)


def test_a_type_requires_exactly_what_validate_checks():
    for kind, td in BY_KIND.items():
        required = required_paths(td)
        assert required <= guaranteed(kind), f"{kind}: typed required but never checked: {required - guaranteed(kind)}"
        # Every checked path is required in the type, except values inside a mapping of free keys (stats.AP).
        missing = {p for p in guaranteed(kind) - required if ".".join(p.split(".")[:-1]) in required
                   and typing.is_typeddict(_type_at(td, p.split(".")[:-1]))}
        assert not missing, f"{kind}: checked by the schema but optional in the type: {missing}"


def _type_at(td: type, parts: list[str]) -> type:
    for key in parts:
        td = typing.get_type_hints(td)[key]
    return td
