"""Model-only latency of every backend on the mirror's mb3-centernet artifacts, for CI dashboards.

`pytest benchmarks --benchmark-json FILE` (or `nox -s bench`) writes the pytest-benchmark JSON that
dashboards read; each entry's extra_info names the runtime, threads and model sha256.
"""

from __future__ import annotations

import pytest

from harness.models.backends import BackendOptions, create_backend
from harness.models.images import list_images, read_rgb
from harness.models.preprocess import apply_preprocess
from harness.models.zoo import get_card

# The 16x8 model takes about 2 s an invoke on a 2-core x86 runner: fewer rounds.
ROUNDS = {"mb3-centernet-hub": 20, "mb3-centernet-f32": 20, "mb3-centernet-int8": 20, "mb3-centernet-16x8": 3}


@pytest.mark.parametrize("name", list(ROUNDS))
def test_invoke_latency(benchmark, mirror, name):
    card = get_card(name)
    backend = create_backend(card.backend, mirror / card.source.mirror_path, card.outputs, BackendOptions())
    backend.load()
    image = read_rgb(list_images([mirror / "coco/val2017_unlabeled"], 1)[0])
    backend.set_input(apply_preprocess(image, card.input).batch)
    benchmark.pedantic(backend.invoke, rounds=ROUNDS[name], iterations=1, warmup_rounds=2)
    d = backend.describe()
    benchmark.extra_info.update({k: d.get(k) for k in ("backend", "runtime", "runtime_version", "threads",
                                                        "model_sha256")})
    heads = backend.read_outputs()
    assert set(heads) == set(card.outputs)
