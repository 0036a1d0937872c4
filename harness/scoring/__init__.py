"""COCO scoring without runtimes: ground truth and results, the evaluator engines, per-image matching,
re-accumulated AP, bootstrap intervals and the verdicts that gates read.

Runs on boards. Imports only the layers below it (common, models).
"""
