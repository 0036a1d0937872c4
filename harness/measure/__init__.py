"""What runs on a board: the eval and bench applications, the eval loop that owns the clock, latency phases and
stopping rules, A/B latency, resume and shards, fetching datasets, detect.

The top of the measuring wing: it may import common, models, scoring and records, never boards, quantize,
analyse or cli, so a board needs no host-side code.
"""
