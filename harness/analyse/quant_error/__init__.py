"""The quantization error of `harness compare quant`: how far a quantized model drifts from its float twin.

compare: per head, and the run over images that fills the quant_compare record; layers: the per-layer
error, accumulated and layer-wise; ranking: the per-layer rows, where error is injected and where it
grows, and the first bad layer.
"""
