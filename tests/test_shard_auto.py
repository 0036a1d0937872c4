"""`--shard auto`: the shard read from a Kubernetes Indexed Job's or GitLab parallel job's environment.

Expected values come from the CI systems' own documentation: Kubernetes sets JOB_COMPLETION_INDEX counting
from 0 (kubernetes.io, "Indexed Job"), GitLab's `parallel:` sets CI_NODE_INDEX counting from 1 and
CI_NODE_TOTAL (docs.gitlab.com, predefined variables). A Shard counts from 1, like `--shard I/N`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import HarnessError
from harness.measure.shard import Shard, from_environment

K8S_EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "kubernetes" / "eval-indexed-job.yaml"


@pytest.mark.parametrize(("text", "env", "want"), [
    ("auto", {"JOB_COMPLETION_INDEX": "0", "JOB_COMPLETIONS": "3"}, Shard(1, 3)),
    ("auto", {"JOB_COMPLETION_INDEX": "2", "JOB_COMPLETIONS": "3"}, Shard(3, 3)),
    ("auto/4", {"JOB_COMPLETION_INDEX": "1"}, Shard(2, 4)),
    ("auto/3", {"JOB_COMPLETION_INDEX": "1", "JOB_COMPLETIONS": "3"}, Shard(2, 3)),
    ("auto", {"CI_NODE_INDEX": "1", "CI_NODE_TOTAL": "3"}, Shard(1, 3)),
    ("auto", {"CI_NODE_INDEX": "3", "CI_NODE_TOTAL": "3"}, Shard(3, 3)),
    ("auto/2", {"CI_NODE_INDEX": "2", "CI_NODE_TOTAL": "2"}, Shard(2, 2)),
    ("auto", {"JOB_COMPLETION_INDEX": "0", "JOB_COMPLETIONS": "1", "CI_NODE_INDEX": ""}, Shard(1, 1)),
    ("2/5", {"JOB_COMPLETION_INDEX": "0", "JOB_COMPLETIONS": "3"}, Shard(2, 5)),  # given: the environment is not read
], ids=["k8s-first", "k8s-last", "k8s-count-given", "k8s-count-agrees", "gitlab-first", "gitlab-last",
        "gitlab-count-agrees", "empty-gitlab-var", "explicit"])
def test_shard_from_the_environment(text: str, env: dict, want: Shard) -> None:
    assert Shard.parse(text, env) == want


@pytest.mark.parametrize(("text", "env", "match"), [
    ("auto", {}, "found no shard in the environment: it reads JOB_COMPLETION_INDEX"),
    ("auto", {"JOB_COMPLETION_INDEX": "1"}, "nothing gives the count: set \\$JOB_COMPLETIONS"),
    ("auto/3", {"JOB_COMPLETION_INDEX": "1", "JOB_COMPLETIONS": "4"}, "auto/3 disagrees with \\$JOB_COMPLETION_INDEX"),
    ("auto", {"JOB_COMPLETION_INDEX": "3", "JOB_COMPLETIONS": "3"}, "shard 4 of 3, outside 1..3"),
    ("auto", {"CI_NODE_INDEX": "0", "CI_NODE_TOTAL": "3"}, "shard 0 of 3"),
    ("auto", {"CI_NODE_INDEX": "2"}, "CI_NODE_INDEX is set but \\$CI_NODE_TOTAL is not"),
    ("auto", {"CI_NODE_INDEX": "two", "CI_NODE_TOTAL": "3"}, "\\$CI_NODE_INDEX is 'two', not an integer"),
    ("auto", {"JOB_COMPLETION_INDEX": "0", "JOB_COMPLETIONS": "2", "CI_NODE_INDEX": "1", "CI_NODE_TOTAL": "2"},
     "both \\$JOB_COMPLETION_INDEX and"),
    ("auto/0", {"JOB_COMPLETION_INDEX": "0"}, "wants a count N >= 1"),
    ("auto/x", {"JOB_COMPLETION_INDEX": "0"}, "wants a count N >= 1"),
], ids=["nothing", "k8s-no-count", "count-disagrees", "k8s-past-end", "gitlab-zero", "gitlab-no-total",
        "not-an-integer", "two-systems", "zero-count", "bad-count"])
def test_shard_auto_refuses_what_it_cannot_read(text: str, env: dict, match: str) -> None:
    with pytest.raises(HarnessError, match=match):
        Shard.parse(text, env)


def test_every_index_is_one_shard_and_all_systems_agree() -> None:
    """Kubernetes index k, GitLab node k+1 and --shard k+1/N are the same shard; together they cover each item once."""
    n, items = 4, list(range(11))
    shards = [from_environment(None, {"JOB_COMPLETION_INDEX": str(k), "JOB_COMPLETIONS": str(n)}) for k in range(n)]
    assert shards == [from_environment(None, {"CI_NODE_INDEX": str(k + 1), "CI_NODE_TOTAL": str(n)}) for k in range(n)]
    assert shards == [Shard.parse(f"{k + 1}/{n}") for k in range(n)]
    assert sorted(i for s in shards for i in s.select(items)) == items


def test_eval_shard_auto_through_the_cli_merges_to_the_single_run(mirror: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Shard 1 from GitLab's variables, shard 2 from Kubernetes': `harness eval --merge` gives the unsharded
    run's stats."""
    for name in ("JOB_COMPLETION_INDEX", "JOB_COMPLETIONS", "CI_NODE_INDEX", "CI_NODE_TOTAL"):
        monkeypatch.delenv(name, raising=False)

    def run(name: str, *extra: str) -> dict:
        assert main(["eval", "mb3-centernet-f32", "--mirror", str(mirror), "--max-images", "4", "--quiet",
                     "--ci-resamples", "0", "--out", str(tmp_path / name), "--json",
                     str(tmp_path / name / "record.json"), *extra]) == 0
        return json.loads((tmp_path / name / "record.json").read_text())

    monkeypatch.setenv("CI_NODE_INDEX", "1")
    monkeypatch.setenv("CI_NODE_TOTAL", "2")
    first = run("gitlab", "--shard", "auto")
    monkeypatch.delenv("CI_NODE_INDEX")
    monkeypatch.delenv("CI_NODE_TOTAL")
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "1")
    second = run("k8s", "--shard", "auto/2")
    monkeypatch.delenv("JOB_COMPLETION_INDEX")
    single = run("single")
    gt = json.loads((mirror / "coco" / "annotations" / "instances_val2017.json").read_text())
    ids = sorted(i["id"] for i in gt["images"])[:4]  # --max-images 4: the first four by id
    assert (first["shard"]["index"], first["shard"]["count"]) == (1, 2)
    assert (second["shard"]["index"], second["shard"]["count"]) == (2, 2)
    assert first["shard"]["image_ids"] == ids[0::2] and second["shard"]["image_ids"] == ids[1::2]
    assert main(["eval", "--merge", str(tmp_path / "gitlab" / "record.json"), str(tmp_path / "k8s" / "record.json"),
                 "--ci-resamples", "0", "--out", str(tmp_path / "merged"), "--json",
                 str(tmp_path / "merged.json"), "--quiet"]) == 0
    merged = json.loads((tmp_path / "merged.json").read_text())
    assert merged["results"]["stats"] == single["results"]["stats"]
    capsys.readouterr()
    assert main(["eval", "mb3-centernet-f32", "--mirror", str(mirror), "--shard", "auto", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness: error: --shard auto found no shard") and err.count("\n") == 1


def test_kubernetes_example_is_an_indexed_job_that_runs_shard_auto() -> None:
    """The example sets JOB_COMPLETIONS to spec.completions (Kubernetes sets only the index) and evaluates
    the model its fetch Job put in the cache; it sits with the documentation's examples, outside .github/."""
    text = K8S_EXAMPLE.read_text()
    assert "completionMode: Indexed" in text
    completions = re.search(r"^\s+completions: (\d+)$", text, re.M)
    env = re.search(r"\{name: JOB_COMPLETIONS, value: \"(\d+)\"\}", text)
    assert completions and env and completions.group(1) == env.group(1)
    assert "--shard auto" in text
    fetched = re.search(r"command: \[harness, fetch, ([^\]]+)\]", text, re.S)
    evaluated = re.search(r"harness eval (\S+) --coco /data/cache/coco", text)
    assert fetched and evaluated and evaluated.group(1) in fetched.group(1)
    assert {"coco-val2017", "coco-annotations-2017"} <= {w.strip(" ,\n") for w in fetched.group(1).split(",")}
    assert "harness eval --merge /data/shards/*/record.json" in text
