"""The emulated board's cache (tests/emulated_board.py): complete roots only, keyed by the source. Fast, no root."""

from __future__ import annotations

import emulated_board
import pytest


def test_a_build_that_fails_leaves_nothing_and_a_finished_one_is_renamed_into_place(tmp_path):
    final = tmp_path / "litert-abc"

    def broken(tmp):
        (tmp / "half").write_text("x")
        raise KeyboardInterrupt  # an interrupted build

    with pytest.raises(KeyboardInterrupt):
        emulated_board._build(final, broken)
    assert [p.name for p in tmp_path.iterdir()] == [".lock-litert-abc"]  # the lock file only

    assert emulated_board._build(final, lambda tmp: (tmp / "done").write_text("y")) == final
    assert (final / "done").read_text() == "y" and not list(tmp_path.glob(".building-*"))
    calls = []
    assert emulated_board._build(final, calls.append) == final and calls == []  # reused, not rebuilt


def test_source_hash_follows_the_code_not_the_readme_or_caches(tmp_path):
    for name, text in {"pyproject.toml": "[project]\n", "README.md": "hi\n", "harness/a.py": "x = 1\n",
                       "datasets/d.json": "{}\n"}.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    first = emulated_board.source_hash(tmp_path)
    (tmp_path / "README.md").write_text("changed prose\n")
    (tmp_path / "harness" / "__pycache__").mkdir()
    (tmp_path / "harness" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    assert emulated_board.source_hash(tmp_path) == first
    (tmp_path / "harness" / "a.py").write_text("x = 2\n")
    assert emulated_board.source_hash(tmp_path) != first


def test_unknown_variant_is_refused():
    with pytest.raises(ValueError, match="litert, bsp"):
        emulated_board.arm64_root("yocto")
