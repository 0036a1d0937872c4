"""Which records answer which question: latest runs, float/quantized siblings, bench series per host.

The report and the gates read the same store; picking "the" record for a question lives here once, so
a table and the gate that guards it never disagree about which run they mean.
"""

from __future__ import annotations

from collections import defaultdict

FLOAT = "float32"


def model_name(rec: dict) -> str:
    return str(rec.get("model", {}).get("name") or rec.get("model_label") or "?")


def eval_key(rec: dict) -> tuple:
    """One eval series: the same model, runtime, protocol and image set."""
    return (model_name(rec), rec.get("backend", {}).get("runtime"), rec.get("protocol", {}).get("name"),
            rec.get("dataset", {}).get("image_ids_sha256"))


def bench_key(rec: dict) -> tuple:
    """One latency series: the same model on the same host with the same threads, delegate and runtime."""
    s = rec.get("settings", {})
    return (model_name(rec), rec["host"]["fingerprint"], s.get("threads"), s.get("delegate"), s.get("runtime"))


def ab_key(rec: dict) -> tuple:
    """One A/B question: the same candidate against the same baseline (model and settings) on one host."""
    def side(role: str) -> tuple:
        sd = rec.get("sides", {}).get(role) or {}
        st = sd.get("settings", {})
        return (sd.get("label"), st.get("threads"), st.get("delegate"), st.get("runtime"))

    return (side("candidate"), side("baseline"), rec["host"]["fingerprint"])


def _order(rec: dict) -> str:
    return str(rec.get("created") or "")


def series(records: list[dict], kind: str, key) -> dict[tuple, list[dict]]:
    """Records of one kind grouped by `key`, each group oldest first (stable for equal timestamps)."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for rec in records:
        if rec.get("kind") == kind:
            groups[key(rec)].append(rec)
    return {k: sorted(v, key=_order) for k, v in groups.items()}


def latest_evals(records: list[dict]) -> list[dict]:
    return [g[-1] for g in series(records, "eval", eval_key).values()]


def latest_benches(records: list[dict]) -> list[dict]:
    return [g[-1] for g in series(records, "bench", bench_key).values()]


def search_subject(rec: dict) -> str:
    """What a quant_search record searched: the model's name, else the SavedModel its plans start from
    (its last two path parts: the mirror's is mb3-centernet/raw)."""
    model = rec.get("model")
    if isinstance(model, dict) and model.get("name"):
        return str(model["name"])
    if isinstance(model, str) and model:
        return model
    for cand in rec.get("candidates") or []:
        path = ((cand.get("plan") or {}).get("source") or {}).get("path")
        if path:
            return "/".join(str(path).replace("\\", "/").rstrip("/").split("/")[-2:])
    return "?"


def search_key(rec: dict) -> tuple:
    """One search series: the same model and deployment target, validated on the same images."""
    return (search_subject(rec), rec.get("target"), (rec.get("validate") or {}).get("image_ids_sha256"))


def latest_searches(records: list[dict]) -> list[dict]:
    return [g[-1] for g in series(records, "quant_search", search_key).values()]


def precision(rec: dict) -> str:
    return str(rec.get("model", {}).get("precision") or FLOAT)


def family(rec: dict) -> str | None:
    return rec.get("model", {}).get("family")


def quant_pairs(evals: list[dict]) -> list[tuple[dict, dict]]:
    """(float, quantized) eval records of one family on the same images.

    Among several float siblings the one on the same runtime wins (a TFLite int8 is compared with the
    TFLite float, not the SavedModel), then the same protocol, then the newest.
    """
    pairs = []
    for q in evals:
        if precision(q) == FLOAT or family(q) is None:
            continue
        ds = q.get("dataset", {}).get("image_ids_sha256")
        floats = [f for f in evals if precision(f) == FLOAT and family(f) == family(q)
                  and f.get("dataset", {}).get("image_ids_sha256") == ds]
        if not floats:
            continue

        def rank(f: dict, q: dict = q) -> tuple:
            return (f.get("backend", {}).get("runtime") == q.get("backend", {}).get("runtime"),
                    f.get("protocol", {}).get("name") == q.get("protocol", {}).get("name"), _order(f))

        pairs.append((max(floats, key=rank), q))
    return sorted(pairs, key=lambda p: (model_name(p[0]), model_name(p[1])))
