"""Sessions: tests (the suite CI runs), tests-fast (its fast tier), board-arm64 (an emulated aarch64 board),
demo (the README's main job), bench, reliability, lint, docs, receipts.

`python3 -m pip install nox uv` is the only thing to install by hand; every session builds its own
virtual environment (with uv when it is there, which takes seconds instead of a minute).
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True

REPO = Path(__file__).resolve().parent
MIRROR = os.environ.get("HARNESS_MIRROR") or str(REPO.parent / "shared" / "mirror")


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite, with the mirror beside the repository."""
    session.install("-e", ".[test]")
    session.run("ruff", "check", "harness", "tests", "benchmarks", "noxfile.py")
    session.run("pytest", "-m", "not arm64", *session.posargs, env={"HARNESS_MIRROR": MIRROR})


@nox.session(name="tests-fast")
def tests_fast(session: nox.Session) -> None:
    """The fast tier: the suite without the tests marked slow (real models over the mirror's images) and
    without the emulated board. For the edit-test loop; CI runs everything (`tests`, `board-arm64`)."""
    session.install("-e", ".[test]")
    session.run("pytest", "-m", "not slow and not arm64", *session.posargs, env={"HARNESS_MIRROR": MIRROR})


@nox.session(name="board-arm64")
def board_arm64(session: nox.Session) -> None:
    """eval, bench and detect on an emulated Debian arm64 board against x86 (tests/arm64; root and qemu-user).

    The boards are built once into $HARNESS_BOARD_CACHE (default ~/.cache/centernet-harness/boards) and rebuilt
    when the harness's source changes; the session ends with its own wall time.
    """
    import time

    start = time.monotonic()
    session.install("-e", ".[board,coco,farm]", "pytest")  # the x86 side of the comparison; labgrid for the farm test
    session.run("pytest", "tests/arm64", "-m", "arm64", "-p", "no:cacheprovider", "-ra", "--durations", "0",
                *session.posargs, env={"HARNESS_MIRROR": MIRROR})
    session.log(f"board-arm64: {(time.monotonic() - start) / 60:.1f} min in all")


@nox.session
def demo(session: nox.Session) -> None:
    """Evaluate the mirror's four mb3-centernet artifacts and print one comparison table.

    The evals run one worker process per core (`harness eval --workers auto`); the session ends with its
    own wall time, install included, so a fresh clone's demo time is one command: `python3 -m nox -s demo`.
    """
    import time

    start = time.monotonic()
    session.install("-e", ".[all]")
    installed = time.monotonic()
    session.run("harness", "demo", "--mirror", MIRROR, *session.posargs)
    end = time.monotonic()
    session.log(f"demo: {end - start:.0f} s in all ({installed - start:.0f} s installing, "
                f"{end - installed:.0f} s harness demo)")


@nox.session
def bench(session: nox.Session) -> None:
    """pytest-benchmark suites; the JSON under .benchmarks/ is what a CI dashboard reads."""
    session.install("-e", ".[test]")
    session.run("pytest", "benchmarks", "-p", "no:cacheprovider", "--benchmark-json", "reports/benchmarks.json",
                "-s", *session.posargs, env={"HARNESS_MIRROR": MIRROR})


@nox.session
def reliability(session: nox.Session) -> None:
    """SIGKILL `harness eval` at 20 random points over the mirror's 159 images, resume each time, and
    require the uninterrupted run's detections and stats exactly (HARNESS_RELIABILITY_SEED replays a run)."""
    session.install("-e", ".[board,coco]", "pytest")  # no TensorFlow needed: mb3-centernet-f32 on ai-edge-litert
    env = {"HARNESS_MIRROR": MIRROR, "HARNESS_RELIABILITY_KILLS": "20", "HARNESS_RELIABILITY_IMAGES": "159"}
    session.run("pytest", "tests/test_resume.py", "-k", "sigkill", "-p", "no:cacheprovider", "-s", *session.posargs,
                env=env)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff, then mypy over the package (configured in pyproject.toml; the run record's types are checked in full)."""
    session.install("ruff", "mypy>=1.10", "numpy>=1.23", "Pillow>=9.1", "matplotlib>=3.7",
                    "msgspec>=0.18")  # the typed imports
    session.run("ruff", "check", ".")
    session.run("mypy")


@nox.session(name="gate-noise")
def gate_noise(session: nox.Session) -> None:
    """False-alarm rates of `harness check --max-slowdown`: 20 A/A, 20 A/B and 20 plain bench runs (minutes)."""
    session.install("-e", ".[board]")
    session.run("python", "benchmarks/gate_noise.py", "--mirror", MIRROR, *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site, built strict (a broken link or a missing page fails) into site/."""
    session.install("-e", ".[docs]")
    session.run("mkdocs", "build", "--strict", "--site-dir", "site", *session.posargs)


@nox.session
def receipts(session: nox.Session) -> None:
    """Re-render the measured tables of README.md and docs/ from their artifacts in benchmarks/results/."""
    session.install("-e", ".")
    session.run("python", "benchmarks/receipts.py", "--write", *session.posargs)
