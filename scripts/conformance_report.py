#!/usr/bin/env python
"""Measure every conformance fixture in ../shared/conformance against its import (results/byot/conformance.json).

python scripts/conformance_report.py [-o results/byot/conformance.json]
"""

import argparse
import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from kdic.importers import import_checkpoint
from kdic.importers.conformance import compare

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = {
    "bmshj2018-hyperprior-N64-M96": ("compressai:bmshj2018-hyperprior", False),
    "mbt2018-mean-N64-M96": ("compressai:mbt2018-mean", False),
    "elic2022-official-N64-M128": ("compressai:elic2022-official", False),
    "lic_tcm-transforms-N32": ("lic_tcm:tcm", True),
}

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--conformance", type=Path, default=ROOT.parent / "shared" / "conformance")
parser.add_argument("-o", "--output", type=Path, default=ROOT / "results" / "byot" / "conformance.json")
args = parser.parse_args()
torch.set_num_threads(1)
report = {}
for fixture, (source, partial) in FIXTURES.items():
    folder = args.conformance / fixture
    meta = json.loads((folder / "meta.json").read_text())
    model = import_checkpoint(folder / "weights.safetensors", source, partial=partial)
    counted = [p for n, p in model.named_parameters() if not partial or n.startswith(("g_a.", "g_s."))]
    report[fixture] = {
        "source": source,
        "partial": partial,
        "params": sum(p.numel() for p in counted),
        **compare(model, load_file(str(folder / "expected.safetensors")), meta.get("estimated_bits_eval_forward")),
    }
    print(fixture, json.dumps(report[fixture]))
args.output.parent.mkdir(parents=True, exist_ok=True)
args.output.write_text(json.dumps(report, indent=2) + "\n")
