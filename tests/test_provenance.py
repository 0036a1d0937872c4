"""Provenance in every record: the commit, branch and dirty state come from git itself, the CI run from
the variables each CI system documents; outside git and CI each field says "unknown", never a guess."""

from __future__ import annotations

import json
import subprocess

import pytest

from harness.records import provenance
from harness.records.schema import new_record, validate
from harness.records.store import RecordStore

CI_VARS = sorted({v for s in provenance.CI_SYSTEMS for v in (*s.run_id, *s.job, *s.runner, *s.commit, *s.branch)}
                 | {"GITHUB_ACTIONS", "GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITLAB_CI", "CI_PIPELINE_URL",
                    "BUILDKITE", "BUILDKITE_BUILD_URL", "JENKINS_URL", "BUILD_URL"})


@pytest.fixture
def no_ci(monkeypatch, tmp_path):
    for var in CI_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # git must not find a checkout above tmp_path
    return monkeypatch


def git(repo, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def checkout(tmp_path, no_ci):
    repo = tmp_path / "project"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "feature-x")
    (repo / "model.txt").write_text("v1\n")
    git(repo, "add", "model.txt")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "first")
    no_ci.chdir(repo)
    return repo


def test_a_record_made_in_a_checkout_under_github_actions_carries_commit_run_url_and_runner(checkout, no_ci):
    env = {"GITHUB_ACTIONS": "true", "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/detector",
           "GITHUB_RUN_ID": "8812345678", "GITHUB_JOB": "bench-imx8mp", "RUNNER_NAME": "imx8mp-lab-3",
           "GITHUB_SHA": "0" * 40, "GITHUB_REF_NAME": "main"}
    for k, v in env.items():
        no_ci.setenv(k, v)
    rec = validate(json.loads(json.dumps(new_record("score", dataset={}, results={"stats": {"AP": 0.3}}))), "test")
    prov = provenance.of_record(rec)
    assert prov["code"] == {"commit": git(checkout, "rev-parse", "HEAD"), "dirty": False, "branch": "feature-x",
                            "commit_time": git(checkout, "log", "-1", "--format=%cI"), "source": "git"}
    # the URL of a run as GitHub shows it: SERVER/OWNER/REPO/actions/runs/RUN_ID
    assert prov["ci"] == {"system": "github-actions", "run_id": "8812345678", "job": "bench-imx8mp",
                          "runner": "imx8mp-lab-3", "run_url": "https://github.com/acme/detector/actions/runs/8812345678"}
    assert prov["harness"] == rec["harness"]


def test_local_changes_are_dirty_and_a_detached_head_takes_the_ci_branch(checkout, no_ci):
    (checkout / "model.txt").write_text("v2\n")
    assert provenance.code_revision()["dirty"] is True
    git(checkout, "checkout", "-q", "--detach")
    no_ci.setenv("GITHUB_ACTIONS", "true")
    no_ci.setenv("GITHUB_HEAD_REF", "pr-branch")
    assert provenance.code_revision()["branch"] == "pr-branch"


def test_outside_git_and_ci_every_field_says_unknown(tmp_path, no_ci):
    no_ci.chdir(tmp_path)
    prov = new_record("score", dataset={}, results={})["provenance"]
    assert prov["code"] == {"commit": "unknown", "commit_time": "unknown", "dirty": "unknown", "branch": "unknown",
                            "source": "unknown"}
    assert prov["ci"] == {"system": "none", "run_id": "unknown", "run_url": "unknown", "job": "unknown",
                          "runner": "unknown"}


def test_without_a_checkout_the_ci_commit_variable_is_used_and_missing_variables_are_unknown(tmp_path, no_ci):
    no_ci.chdir(tmp_path)
    no_ci.setenv("GITLAB_CI", "true")
    no_ci.setenv("CI_COMMIT_SHA", "a" * 40)
    no_ci.setenv("CI_PIPELINE_ID", "4242")
    code = provenance.code_revision()
    assert (code["commit"], code["source"], code["dirty"]) == ("a" * 40, "gitlab-ci", "unknown")
    assert provenance.ci_context() == {"system": "gitlab-ci", "run_id": "4242", "run_url": "unknown", "job": "unknown",
                                       "runner": "unknown"}


@pytest.mark.parametrize(("env", "expected"), [
    ({"GITLAB_CI": "true", "CI_PIPELINE_ID": "77", "CI_PIPELINE_URL": "https://gitlab.example/g/p/-/pipelines/77",
      "CI_JOB_NAME": "bench", "CI_RUNNER_DESCRIPTION": "imx93-runner"},
     {"system": "gitlab-ci", "run_id": "77", "run_url": "https://gitlab.example/g/p/-/pipelines/77", "job": "bench",
      "runner": "imx93-runner"}),
    ({"JENKINS_URL": "https://ci.example/", "BUILD_NUMBER": "15", "BUILD_URL": "https://ci.example/job/bench/15/",
      "JOB_NAME": "bench", "NODE_NAME": "board-7"},
     {"system": "jenkins", "run_id": "15", "run_url": "https://ci.example/job/bench/15/", "job": "bench",
      "runner": "board-7"}),
    ({"BUILDKITE": "true", "BUILDKITE_BUILD_NUMBER": "310", "BUILDKITE_BUILD_URL": "https://buildkite.com/acme/b/builds/310",
      "BUILDKITE_LABEL": ":stopwatch: bench", "BUILDKITE_AGENT_NAME": "imx8mp-1"},
     {"system": "buildkite", "run_id": "310", "run_url": "https://buildkite.com/acme/b/builds/310",
      "job": ":stopwatch: bench", "runner": "imx8mp-1"}),
])
def test_each_ci_system_is_read_from_its_own_variables(env, expected):
    assert provenance.ci_context(env) == expected


def test_records_written_before_provenance_still_load_and_read_as_unknown(tmp_path, no_ci):
    no_ci.chdir(tmp_path)
    old = new_record("score", dataset={}, results={"stats": {"AP": 0.3}})
    del old["provenance"]
    with RecordStore(tmp_path / "s.sqlite") as store:
        store.add([old])
        back = store.records()
    assert len(back) == 1 and "provenance" not in back[0]
    prov = provenance.of_record(back[0])
    assert prov["code"]["commit"] == "unknown" and prov["ci"]["run_url"] == "unknown"
