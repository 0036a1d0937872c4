"""Change points and the `check --change-points` gate.

The split statistic is checked against the energy distance written out from its definition (Matteson and
James 2014), the rank test against scipy's Mann-Whitney U, and the gate against stores with steps planted where
the test put them: 60 commits on two boards, one 15% slower from commit 30 on.
"""

from __future__ import annotations

import itertools
import sqlite3

import numpy as np
import pytest
from history_store import commit_sha, history

from harness.analyse.change_points import _split_statistic, detect, two_sided_rank_p
from harness.analyse.history import build, in_force
from harness.cli import main
from harness.records.store import RecordStore

A, B = "imx8mp", "imx93"


def energy_q(x: np.ndarray, tau: int) -> float:
    """Q(tau) from the definition: m k / (m + k) * (2 mean|L-R| - mean over pairs |L-L'| - mean over pairs |R-R'|)."""
    left, right = x[:tau], x[tau:]
    m, k = left.size, right.size
    cross = np.mean([abs(a - b) for a in left for b in right])
    within_l = np.mean([abs(a - b) for a, b in itertools.combinations(left, 2)])
    within_r = np.mean([abs(a - b) for a, b in itertools.combinations(right, 2)])
    return m * k / (m + k) * (2 * cross - within_l - within_r)


def test_split_statistic_is_the_energy_distance_of_the_definition():
    x = np.random.default_rng(3).lognormal(0, 0.3, 23)
    qs = {tau: energy_q(x, tau) for tau in range(3, 21)}
    at, q = _split_statistic(x, 3)
    assert at == max(qs, key=qs.get)
    assert q == pytest.approx(qs[at], rel=1e-9)


def test_rank_test_matches_scipy_exact_for_small_untied_samples_else_asymptotic():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(5)
    for n1, n2, shift in ((30, 3, 1.0), (3, 30, 1.0), (7, 5, 0.5), (40, 10, 0.8)):
        a, b = rng.normal(shift, 1, n1), rng.normal(0, 1, n2)
        ref = stats.mannwhitneyu(a, b, alternative="two-sided", method="exact").pvalue
        assert two_sided_rank_p(a, b) == pytest.approx(ref, rel=1e-9)
    for n1, n2, shift in ((30, 3, 1.0), (12, 17, 0.3), (25, 25, 0.0)):
        a, b = rng.normal(shift, 1, n1), rng.normal(0, 1, n2)
        b[:2] = a[:2]  # ties
        ref = stats.mannwhitneyu(a, b, alternative="two-sided", method="asymptotic", use_continuity=True).pvalue
        assert two_sided_rank_p(a, b) == pytest.approx(ref, rel=1e-6)
    # three runs above thirty: 2 / C(33, 3) by counting, what a gate has three commits after a step
    assert two_sided_rank_p(np.arange(30.0, 33.0), np.arange(30.0)) == pytest.approx(2 / 5456)


def test_a_clean_step_is_found_where_it_is_and_flat_or_noisy_series_have_none():
    (c,) = detect([1.0] * 10 + [2.0] * 10)
    assert (c.index, c.before, c.after) == (10, 1.0, 2.0) and c.pvalue < 1e-3
    assert detect([5.0] * 40) == []
    assert detect(np.random.default_rng(0).normal(100, 3, 60)) == []
    two = detect([10.0] * 15 + [12.0] * 15 + [10.0] * 15)
    assert [c.index for c in two] == [15, 30]


def test_in_force_until_undone():
    recs = history(45, A, 50.0, steps={15: 1.2, 30: 1 / 1.2}, seed=4)
    (s,) = build(recs)
    changes = detect([p.value for p in s.points])
    assert [c.index for c in changes] == [15, 30]
    assert in_force(s, changes, 1.05) is None
    assert in_force(s, changes[:1], 1.05).change.index == 15


@pytest.fixture(scope="module")
def two_hosts(tmp_path_factory):
    """60 commits on board A, 15% slower from commit 30 on, and 60 on board B with no change."""
    path = tmp_path_factory.mktemp("history") / "runs.sqlite"
    with RecordStore(path) as s:
        s.add(history(60, A, 50.0, steps={30: 1.15}, seed=1) + history(60, B, 120.0, seed=2))
    return path


@pytest.fixture
def store(two_hosts, tmp_path):
    """A copy of the two-host store each test may append to."""
    path = tmp_path / "runs.sqlite"
    with RecordStore(two_hosts, create=False) as src, RecordStore(path) as dst:
        dst.add(src.records())
    return path


def _fingerprint(board: str) -> str:
    from fake_records import board_host

    return board_host(board)["fingerprint"]


def test_done_when_host_a_fails_naming_commit_30_and_host_b_passes(store, capsys):
    assert main(["check", "--store", str(store), "--change-points", "--max-slowdown", "1.05"]) == 1
    lines = capsys.readouterr().out.splitlines()
    fail = [ln for ln in lines if ln.startswith("FAIL")]
    passed = [ln for ln in lines if ln.startswith("PASS")]
    assert len(fail) == 1 and len(passed) == 1
    assert _fingerprint(A) in fail[0] and f"{commit_sha(29)[:12]}..{commit_sha(30)[:12]}" in fail[0]
    assert _fingerprint(B) in passed[0] and "no regression" in passed[0]


def test_a_store_of_host_b_alone_passes(tmp_path):
    path = tmp_path / "b.sqlite"
    with RecordStore(path) as s:
        s.add(history(60, B, 120.0, seed=2))
    assert main(["check", "--store", str(path), "--change-points", "--max-slowdown", "1.05"]) == 0


def test_a_step_within_the_limit_passes(tmp_path):
    path = tmp_path / "small.sqlite"
    with RecordStore(path) as s:
        s.add(history(60, A, 50.0, steps={30: 1.03}, noise=0.005, seed=3))
    assert main(["check", "--store", str(path), "--change-points", "--max-slowdown", "1.05"]) == 0


def test_an_ap_drop_fails_and_an_ap_gain_does_not(tmp_path, capsys):
    from fake_records import eval_record
    from history_store import provenance

    def evals(aps):
        out = []
        for i, ap in enumerate(aps):
            rec = eval_record("mb3-centernet-int8", ap, created=provenance(i, A)["code"]["commit_time"])
            rec["provenance"] = provenance(i, A)
            out.append(rec)
        return out

    for aps, status in (([0.30] * 20 + [0.27] * 10, 1), ([0.27] * 20 + [0.30] * 10, 0)):
        path = tmp_path / f"ap{status}.sqlite"
        with RecordStore(path) as s:
            s.add(evals(aps))
        assert main(["check", "--store", str(path), "--change-points", "--max-slowdown", "1.05"]) == status
    assert f"{commit_sha(19)[:12]}..{commit_sha(20)[:12]}" in capsys.readouterr().out


def test_an_acknowledgement_passes_the_gate_until_the_next_regression(store, capsys):
    (a,) = [s for s in build(RecordStore(store, create=False).records()) if _fingerprint(A) in s.host]
    assert main(["store", "ack", str(store), a.id, commit_sha(59)[:12], "--reason", "new runtime, accepted"]) == 0
    assert main(["check", "--store", str(store), "--change-points", "--max-slowdown", "1.05"]) == 0
    with RecordStore(store) as s:
        s.add(history(30, A, 50.0 * 1.15, steps={70: 1.15}, seed=9, start=60))
    capsys.readouterr()
    assert main(["check", "--store", str(store), "--change-points", "--max-slowdown", "1.05"]) == 1
    assert f"{commit_sha(69)[:12]}..{commit_sha(70)[:12]}" in capsys.readouterr().out
    with RecordStore(store) as s, pytest.raises(sqlite3.DatabaseError, match="append-only"):
        s._db.execute("DELETE FROM acks")


def test_ack_of_an_unknown_series_or_commit_is_one_line(store, capsys):
    assert main(["store", "ack", str(store), "0123456789", commit_sha(1)]) == 2
    assert "has no series 0123456789" in capsys.readouterr().err
    sid = build(RecordStore(store, create=False).records())[0].id
    assert main(["store", "ack", str(store), sid, "f" * 40]) == 2
    err = capsys.readouterr().err
    assert "has no run of commit" in err and len(err.strip().splitlines()) == 1


def test_change_points_need_max_slowdown(store, capsys):
    assert main(["check", "--store", str(store), "--change-points"]) == 2
    assert "--change-points needs --max-slowdown" in capsys.readouterr().err
