"""``hugectr2onnx inspect``: what a converted model takes and gives, and what it holds."""

from __future__ import annotations

import argparse
import json

HELP = "show a converted model's inputs, outputs, ops, sizes and metadata"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="the .onnx file")
    p.add_argument("--json", action="store_true", help="print one JSON object instead")


def run(args) -> int:
    from ..inspection import format_report, inspect_model

    info = inspect_model(args.model)
    print(json.dumps(info, indent=1) if args.json else format_report(info))
    return 0
