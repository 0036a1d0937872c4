"""Execution paths of `harness compare paths`: one model file run two ways (kernels, runtime, delegate).

compare: per-head error and the AP of both paths, the path_compare record; tensors: the error of every op
output both paths can show.
"""
