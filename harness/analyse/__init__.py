"""Workstation analyses over records and models: the report, the CI gates, the doctor, the quantization error,
the execution paths, the precision search and the comparisons. Heavy imports (pandas, matplotlib,
TensorFlow) stay inside the code paths that need them.

Sub-packages are plans of one job each: report/, doctor/, quant_error/, execution_paths/, precision/;
tensor_error holds the tensor-pair statistics the quantization error and the execution paths share.
It may import every layer below it (common up to quantize); only cli imports it.
"""
