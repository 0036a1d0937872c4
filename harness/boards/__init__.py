"""Reaching boards from the host: running the measuring wing on a board over SSH or through a board farm,
and the NPU compilers of the seeds' boards. Runs on the host; nothing below this layer imports it.

It may import the measuring wing (common, models, scoring, records, measure), whose jobs it ships to boards.
"""
