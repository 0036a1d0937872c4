"""`harness compile`: compile a .tflite for a board's NPU (Vela for the Ethos-U65 of i.MX 93) and record the
compiler's own estimate (inference time, cycles, NPU/CPU split, SRAM/DRAM) as an npu_compile record."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.boards.vela import TARGETS
from harness.cli.options import add_json, add_out, add_quiet, write_record

NAME = "compile"
HELP = "compile a .tflite for a board's NPU (i.MX 93: Vela) and record the compiler's estimate"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="the int8 (or 16x8) .tflite to compile")
    p.add_argument("--target", choices=list(TARGETS), default="imx93",
                   help="the board's NPU (default imx93: Arm Ethos-U65-256, compiled by Vela, "
                        "pip install centernet-harness[vela])")
    add_out(p, "folder for the NPU model (MODEL_vela.tflite) and Vela's summary CSV", required=True)
    add_json(p, "npu_compile")
    add_quiet(p, "print only where the record went, no summary")


def run(args: argparse.Namespace) -> int:
    from harness.boards.vela import compile_record

    model, out = Path(args.model), Path(args.out)  # outputs that are inputs: refused in harness.cli.paths
    record = compile_record(model, args.target, out)
    if not args.quiet:
        print(format_compile(record))
    write_record(args.json, record)
    return 0


def format_compile(record: dict) -> str:
    """Vela's estimate in a few lines: time, NPU/CPU split, ops left to the CPU, memory."""
    est, ops, mem, comp = record["estimate"], record["ops"], record["memory"], record["compiler"]
    opts = comp["options"]
    left = ", ".join(ops["cpu_ops"]) or "none"
    return "\n".join([
        f"{record['model']['path']} on {record['target']} ({record['board']}): {record['output']['model']}",
        f"  estimated {est['inference_ms']:.2f} ms per inference ({est['cycles'].get('total', 0)} cycles at "
        f"{est['core_clock_hz'] / 1e6:.0f} MHz), estimate by {est['source']}",
        f"  ops: {ops['npu']} on the NPU, {ops['cpu']} on the CPU (left to the CPU: {left})",
        f"  SRAM {mem['sram_kib']:.2f} KiB, DRAM {mem['dram_kib']:.2f} KiB",
        f"  options: {opts['accelerator']}, {opts['system_config']}, {opts['memory_mode']} ({opts['config']}), "
        f"optimise {opts['optimise']}; compiled in {record['compile_s']:.1f} s",
    ])
