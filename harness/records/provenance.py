"""Which code revision and which CI run a record measured: read from git and the CI's environment, never guessed.

A history of latency and AP is only useful if each point says what it measured: the commit (and whether the
checkout had local changes), its branch, and the CI run that made it (a link a person can follow). The
revision is the git checkout of the working directory (the project a CI job checked out and runs the harness
in); where there is no checkout (a board given only the files, git not installed), the CI system's own
variable for the commit is used, and otherwise every field says "unknown". Each CI system is one entry of
CI_SYSTEMS: the variables it documents for the run id, the run's URL, the job, the runner, commit and branch.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from harness import __version__

UNKNOWN = "unknown"
GIT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class CiSystem:
    """One CI system: how it announces itself, and the environment variables that hold each field."""

    name: str
    detect: Callable[[Mapping[str, str]], bool]
    run_id: tuple[str, ...]
    job: tuple[str, ...]
    runner: tuple[str, ...]
    commit: tuple[str, ...]
    branch: tuple[str, ...]
    run_url: Callable[[Mapping[str, str]], str | None]


def _first(env: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    return next((env[n] for n in names if env.get(n)), None)


def _github_url(env: Mapping[str, str]) -> str | None:
    parts = [env.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")]
    if not all(parts):
        return None
    server, repo, run = parts
    return f"{server}/{repo}/actions/runs/{run}"


# Variables as each system documents them for its jobs' environment.
CI_SYSTEMS: tuple[CiSystem, ...] = (
    CiSystem("github-actions", lambda e: e.get("GITHUB_ACTIONS") == "true", ("GITHUB_RUN_ID",), ("GITHUB_JOB",),
             ("RUNNER_NAME",), ("GITHUB_SHA",), ("GITHUB_HEAD_REF", "GITHUB_REF_NAME"), _github_url),
    CiSystem("gitlab-ci", lambda e: e.get("GITLAB_CI") == "true", ("CI_PIPELINE_ID",), ("CI_JOB_NAME",),
             ("CI_RUNNER_DESCRIPTION", "CI_RUNNER_ID"), ("CI_COMMIT_SHA",), ("CI_COMMIT_REF_NAME",),
             lambda e: e.get("CI_PIPELINE_URL")),
    CiSystem("buildkite", lambda e: e.get("BUILDKITE") == "true", ("BUILDKITE_BUILD_NUMBER", "BUILDKITE_BUILD_ID"),
             ("BUILDKITE_LABEL", "BUILDKITE_STEP_KEY"), ("BUILDKITE_AGENT_NAME",), ("BUILDKITE_COMMIT",),
             ("BUILDKITE_BRANCH",), lambda e: e.get("BUILDKITE_BUILD_URL")),
    CiSystem("jenkins", lambda e: bool(e.get("JENKINS_URL")), ("BUILD_NUMBER", "BUILD_ID"), ("JOB_NAME",),
             ("NODE_NAME",), ("GIT_COMMIT",), ("BRANCH_NAME", "GIT_BRANCH"), lambda e: e.get("BUILD_URL")),
)


def ci_context(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The CI run this process is part of; system "none" outside CI, "unknown" for a field the CI did not set."""
    env = os.environ if env is None else env
    system = next((s for s in CI_SYSTEMS if s.detect(env)), None)
    if system is None:
        return {"system": "none", "run_id": UNKNOWN, "run_url": UNKNOWN, "job": UNKNOWN, "runner": UNKNOWN}
    return {"system": system.name, "run_id": _first(env, system.run_id) or UNKNOWN,
            "run_url": system.run_url(env) or UNKNOWN, "job": _first(env, system.job) or UNKNOWN,
            "runner": _first(env, system.runner) or UNKNOWN}


def _git(cwd: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, timeout=GIT_TIMEOUT_S,
                              check=True, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def code_revision(cwd: str | Path | None = None, env: Mapping[str, str] | None = None) -> dict[str, object]:
    """Commit, its commit time, dirty or not, and branch of the checkout at `cwd`; else the CI's commit variable.

    `source` says where the values came from ("git", the CI system's name, or "unknown"). A detached HEAD
    (how CI systems check out a pull request) takes its branch from the CI's variables, if any.
    """
    env = os.environ if env is None else env
    head = _git(Path(cwd or os.getcwd()), "log", "-1", "--format=%H %cI")
    system = next((s for s in CI_SYSTEMS if s.detect(env)), None)
    ci_branch = _first(env, system.branch) if system else None
    if head and len(head.split()) == 2:
        commit, when = head.split()
        status = _git(Path(cwd or os.getcwd()), "status", "--porcelain", "--untracked-files=no")
        branch = _git(Path(cwd or os.getcwd()), "rev-parse", "--abbrev-ref", "HEAD")
        if branch in (None, "", "HEAD"):
            branch = ci_branch
        return {"commit": commit, "commit_time": when, "dirty": UNKNOWN if status is None else bool(status),
                "branch": branch or UNKNOWN, "source": "git"}
    ci_commit = _first(env, system.commit) if system else None
    if system and ci_commit:
        return {"commit": ci_commit, "commit_time": UNKNOWN, "dirty": UNKNOWN, "branch": ci_branch or UNKNOWN,
                "source": system.name}
    return {"commit": UNKNOWN, "commit_time": UNKNOWN, "dirty": UNKNOWN, "branch": UNKNOWN, "source": UNKNOWN}


def describe(cwd: str | Path | None = None, env: Mapping[str, str] | None = None) -> dict[str, object]:
    """The record's `provenance` block: the code revision, the harness's own version, and the CI run."""
    return {"code": code_revision(cwd, env), "harness": __version__, "ci": ci_context(env)}


def of_record(record: Mapping[str, object]) -> dict[str, object]:
    """A record's provenance; a record written before provenance existed reads as all "unknown"."""
    block = record.get("provenance")
    if isinstance(block, dict) and isinstance(block.get("code"), dict) and isinstance(block.get("ci"), dict):
        return block
    return {"code": {"commit": UNKNOWN, "commit_time": UNKNOWN, "dirty": UNKNOWN, "branch": UNKNOWN,
                     "source": UNKNOWN},
            "harness": record.get("harness") or UNKNOWN,
            "ci": {"system": UNKNOWN, "run_id": UNKNOWN, "run_url": UNKNOWN, "job": UNKNOWN, "runner": UNKNOWN}}
