"""The latency reference model: a small fixed network benched beside a candidate to factor out host speed.

candidate p50 / reference p50, both measured interleaved in one process, is a speed figure that carries
across hosts of different speed far better than milliseconds do. The file ships with the package (built
once from seeded numpy weights by harness.models.reference.build; its sha256 is pinned here so a
record says exactly which yardstick it used), so a board needs no TensorFlow and no network to use it.
It is opened with the candidate's TFLite runtime and threads, never with a delegate: it measures the CPU.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from harness.common.identity import model_sha256
from harness.errors import HarnessError

PATH = Path(__file__).resolve().parent / "reference.tflite"
SHA256 = "64a86f4b76553ec7f0faaa01da14f43b8397cef55969ddcb10667645b666faf7"
NAME = "harness-reference-v2"


def open_reference(runtime: str | None, threads: int | None) -> tuple[Callable[[], None], dict]:
    """A staged invoke() of the reference model and the description a record keeps of it."""
    from harness.models.backends.tflite_runtimes import select_runtime

    if not PATH.is_file():
        raise HarnessError(f"the reference model is missing from this installation ({PATH}): reinstall the harness")
    rt = select_runtime(runtime)
    interpreter = rt.interpreter(model_path=str(PATH), num_threads=threads)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    interpreter.set_tensor(inp["index"], np.random.default_rng(0).uniform(0, 255, inp["shape"]).astype(np.float32))
    desc = {"name": NAME, "path": str(PATH), "model_sha256": model_sha256(PATH), "pinned_sha256": SHA256,
            "runtime": rt.name, "runtime_version": rt.version, "threads": threads,
            "input_shape": [int(s) for s in inp["shape"]]}
    return interpreter.invoke, desc
