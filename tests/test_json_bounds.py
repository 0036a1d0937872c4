"""The bounded JSON reader every input goes through: nesting and integer bounds read from the text, so a
hostile file is refused before it is parsed, and data a little inside the bounds still reads."""

from __future__ import annotations

import gc
import json

import pytest

from harness.common.bulk import gc_paused
from harness.common.fileio import JSON_MAX_DEPTH, JSON_MAX_INT_DIGITS, parse_json_bounded
from harness.errors import HarnessError


def brackets(n: int, inner: str = "") -> str:
    return "[" * n + inner + "]" * n


# Depth counts a value inside a container one level below it (so `[]` is 1 deep and `[1]` is 2).
@pytest.mark.parametrize(("text", "depth"), [
    (brackets(JSON_MAX_DEPTH), JSON_MAX_DEPTH),  # 64 empty lists nested: 64
    (brackets(JSON_MAX_DEPTH - 1, "1"), JSON_MAX_DEPTH),  # 63 lists around a number: 64
    (brackets(JSON_MAX_DEPTH - 1, '{"a": "b"}'), JSON_MAX_DEPTH + 1),
    (brackets(JSON_MAX_DEPTH, "1"), JSON_MAX_DEPTH + 1),
    (brackets(JSON_MAX_DEPTH + 1), JSON_MAX_DEPTH + 1),
    (brackets(100_000), 100_000),
])
def test_nesting_at_the_bound_reads_and_one_level_more_is_refused(text: str, depth: int) -> None:
    if depth <= JSON_MAX_DEPTH:
        assert parse_json_bounded(text, "x") == json.loads(text)
    else:
        with pytest.raises(HarnessError, match=f"x is nested more than {JSON_MAX_DEPTH} levels deep"):
            parse_json_bounded(text, "x")


def test_brackets_and_escaped_quotes_inside_strings_are_not_nesting() -> None:
    text = json.dumps({"file_name": "[" * 200 + "{" * 200, "note": 'say \\"[[[[" ' * 50, "ok": [[1]]})
    assert parse_json_bounded(text, "x") == json.loads(text)
    escaped = json.dumps(["\\" + '"' + "[" * 100])  # a backslash: depth from the parsed data, not the text
    assert parse_json_bounded(escaped, "x") == json.loads(escaped)
    with pytest.raises(HarnessError, match="nested more than"):
        parse_json_bounded('["\\\\", ' + brackets(JSON_MAX_DEPTH + 1) + "]", "x")


def test_integers_longer_than_the_bound_are_refused_wherever_they_are() -> None:
    edge = "9" * JSON_MAX_INT_DIGITS
    assert parse_json_bounded(f'[{edge}, "{"1" * 500}", 0.{"1" * 40}]', "x")[0] == int(edge)
    with pytest.raises(HarnessError, match=f"an integer of {JSON_MAX_INT_DIGITS + 1} digits"):
        parse_json_bounded(f'{{"id": {edge}9}}', "x")
    with pytest.raises(HarnessError, match="non-standard literal NaN"):
        parse_json_bounded("[NaN]", "x")


def test_the_collector_is_paused_only_inside_and_comes_back_as_it_was() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # a caller that had it off keeps it off
    finally:
        gc.enable()
    with pytest.raises(HarnessError), gc_paused():
        parse_json_bounded("[1,", "x")
    assert gc.isenabled()
