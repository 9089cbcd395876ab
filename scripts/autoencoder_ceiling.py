"""Where a variable-rate model's quality stops growing with lambda, and why (issue 13.5).

For each lambda, every image is passed through the model twice, in eval mode: as coded (the
latent rounded, likelihood-estimated bpp) and with the rounding left out (``g_s`` of the
rate-scaled latent, unrounded). Gain units give every lambda the same ``g_a(x)``, so the
unrounded PSNR is nearly the same at every lambda; modulated transforms move it with lambda, but
only as far as their width allows. Once the coded PSNR reaches it, more rate buys nothing, and only
a better latent than the encoder's (e.g. ``--refine``, whose Kodak curve passes the bound) or wider
transforms lift the curve.

    python scripts/autoencoder_ceiling.py --weights src/kdic/data/weights/kdic-tiny-vr.safetensors \
        --data ../shared/data/kodak --lmbdas 0.0134 0.0564 0.178 -o results/vr/ceiling/student.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from kdic.checkpoint import load
from kdic.eval.metrics import estimate_rd, unrounded_forward
from kdic.eval.validation import load_validation
from kdic.fileio import atomic_write_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", required=True, help="variable-rate weights file")
    parser.add_argument("--data", required=True, help="image folder, e.g. Kodak")
    parser.add_argument("--limit", type=int, default=None, help="only the first N images")
    parser.add_argument("--lmbdas", type=float, nargs="+", required=True)
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    model = load(args.weights).eval()
    images = load_validation(args.data, args.limit)
    rows = []
    with torch.no_grad():
        for lmbda in args.lmbdas:
            coded = estimate_rd(lambda x, v=lmbda: model(x, v), images, model.padding_multiple)
            plain = estimate_rd(lambda x, v=lmbda: unrounded_forward(model, x, v), images, model.padding_multiple)
            row = {"lmbda": lmbda, "bpp": coded["bpp"], "psnr": coded["psnr"], "psnr_unrounded": plain["psnr"]}
            rows.append(row)
            coded_text = f"{row['bpp']:.3f} bpp  {row['psnr']:.2f} dB coded"
            print(f"lambda {lmbda:<8g} {coded_text}  {row['psnr_unrounded']:.2f} dB unrounded")
    report = {"weights": args.weights, "images": len(images), "rows": rows}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.output, (json.dumps(report, indent=2) + "\n").encode())


if __name__ == "__main__":
    main()
