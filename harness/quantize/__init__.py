"""`harness quantize`: calibration sets, conversion modes, precision plans that rebuild their model, the
per-target cost model and mixed int8 + 16-bit conversion. A workstation layer (TensorFlow, lazily).

It may import every layer below it (common up to boards); analyse and cli sit above it.
"""
