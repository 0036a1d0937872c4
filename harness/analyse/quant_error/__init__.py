"""The quantization error of `harness compare quant`: how far a quantized model drifts from its float twin.

compare: per head, and the run over images that fills the quant_compare record; layers: the per-layer
error, accumulated and layer-wise (its rows and rankings: harness.analyse.tensor_error).
"""
