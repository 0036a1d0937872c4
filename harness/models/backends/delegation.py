"""Which ops a TFLite delegate took and which stayed on the CPU, read from a loaded interpreter.

What TFLite shows from Python, and what this relies on (checked on ai-edge-litert 2.3.0 and tf.lite 2.21):
`Interpreter._get_ops_details()` lists every node of the primary subgraph, the model's own ops first,
then one node per delegate partition (op name `DELEGATE`) appended after delegation, with the tensors
that partition reads and writes. The execution plan itself (which nodes run) is not exposed; a
partition's members are found from its outputs by walking back through the producing ops until the
partition's inputs. An op of the model that no partition covers runs on the CPU's built-in kernels.

This holds for the runtime's default XNNPACK delegate and for external delegates alike. With every
tensor preserved (keep_tensors), XNNPACK makes one partition per op, so coverage is read from a normal
load, never from a keep-tensors one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

DELEGATE_OP = "DELEGATE"


def delegate_coverage(ops: Sequence[dict], delegate: str | None) -> dict:
    """Coverage of `ops` (the interpreter's `_get_ops_details()` after allocation) by the delegate partitions.

    `delegate` names what was asked for (the external library, the default XNNPACK, or None); it is
    recorded as is. `cpu_ops` lists "index:OP" of every model op no partition took; with a delegate
    asked for, any such op is a fall-back (`fell_back`), including a delegate that took nothing at all.
    """
    model_ops = [o for o in ops if o["op_name"] != DELEGATE_OP]
    kernels = [o for o in ops if o["op_name"] == DELEGATE_OP]
    producer = {int(t): o for o in model_ops for t in o["outputs"]}
    taken: set[int] = set()
    partitions = []
    for kernel in kernels:
        boundary = {int(t) for t in kernel["inputs"]}
        members: set[int] = set()
        stack = [int(t) for t in kernel["outputs"]]
        while stack:
            t = stack.pop()
            op = producer.get(t)
            if op is None or t in boundary or op["index"] in members:
                continue
            members.add(int(op["index"]))
            stack.extend(int(i) for i in op["inputs"] if i >= 0)
        taken |= members
        partitions.append(sorted(members))
    by_index = {int(o["index"]): o["op_name"] for o in model_ops}
    cpu = [i for i in sorted(by_index) if i not in taken]
    return {
        "delegate": delegate,
        "partitions": len(kernels),
        "model_ops": len(model_ops),
        "delegated_ops": len(taken),
        "delegated_by_type": dict(sorted(Counter(by_index[i] for i in taken).items())),
        "cpu_ops": [f"{i}:{by_index[i]}" for i in cpu],
        "cpu_by_type": dict(sorted(Counter(by_index[i] for i in cpu).items())),
        "fell_back": bool(delegate) and bool(cpu),
        "method": "delegate partitions from Interpreter._get_ops_details() (DELEGATE nodes after the model's "
                  "ops), members by walking back from each partition's outputs to its inputs",
    }


def fallback_warning(coverage: dict | None) -> str | None:
    """One line for `bench` when a delegate left ops on the CPU; None when it took them all (or none asked)."""
    if not coverage or not coverage.get("fell_back"):
        return None
    counts = sorted(coverage["cpu_by_type"].items(), key=lambda kv: -kv[1])
    kinds = ", ".join(f"{op} x{n}" for op, n in counts[:5]) + (", ..." if len(counts) > 5 else "")
    return (f"warning: {len(coverage['cpu_ops'])} of {coverage['model_ops']} ops fell back from "
            f"{coverage['delegate']} to the CPU ({kinds})")


__all__ = ["DELEGATE_OP", "delegate_coverage", "fallback_warning"]
