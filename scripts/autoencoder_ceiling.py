"""Where a variable-rate model's quality stops growing with lambda, and why (issue 13.5).

For each lambda, every image is passed through the model twice, in eval mode: as coded (the
latent rounded, likelihood-estimated bpp) and with the rounding left out (``g_s`` of the
rate-scaled latent, unrounded). When the unrounded PSNR is the same at every lambda, the top of the
curve is bounded by the transforms, not by quantization: more rate (a higher lambda, more
steps at it, or encoder-side refinement) cannot buy quality there, only a wider ``g_a`` / ``g_s`` can.

    python scripts/autoencoder_ceiling.py --weights src/kdic/data/weights/kdic-tiny-vr.safetensors \
        --data ../shared/data/kodak --lmbdas 0.0134 0.0564 0.178 -o results/vr/ceiling/student.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from kdic.checkpoint import load
from kdic.codec.distortion import psnr_uint8
from kdic.codec.pipeline import encode_image
from kdic.eval.metrics import estimate_rd, unrounded_forward
from kdic.eval.validation import load_validation
from kdic.fileio import atomic_write_bytes
from kdic.models import LearnedImageCodec


def refined(model: LearnedImageCodec, images: list, lmbda: float, steps: int) -> dict[str, float]:
    """Mean file bpp and PSNR of real files coded with ``steps`` of encoder-side refinement."""
    bpps, psnrs = [], []
    for _, image in images:
        data, reconstruction, _ = encode_image(model, image, estimate=False, lmbda=lmbda, refine_steps=steps)
        assert reconstruction is not None  # encode_image reconstructs by default
        bpps.append(8 * len(data) / (image.shape[0] * image.shape[1]))
        psnrs.append(psnr_uint8(reconstruction, image))
    return {"bpp": sum(bpps) / len(bpps), "psnr": sum(psnrs) / len(psnrs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", required=True, help="variable-rate weights file")
    parser.add_argument("--data", required=True, help="image folder, e.g. Kodak")
    parser.add_argument("--limit", type=int, default=None, help="only the first N images")
    parser.add_argument("--lmbdas", type=float, nargs="+", required=True)
    parser.add_argument("--refine", type=int, default=0, help="also code real files with this many refinement steps")
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
            if args.refine:
                more = refined(model, images, lmbda, args.refine)
                row.update({"refined_bpp": more["bpp"], "refined_psnr": more["psnr"]})
                print(f"  refined {args.refine} steps: {more['bpp']:.3f} bpp (file), {more['psnr']:.2f} dB")
            rows.append(row)
            coded_text = f"{row['bpp']:.3f} bpp  {row['psnr']:.2f} dB coded"
            print(f"lambda {lmbda:<8g} {coded_text}  {row['psnr_unrounded']:.2f} dB unrounded")
    report = {"weights": args.weights, "images": [n for n, _ in images], "refine_steps": args.refine, "rows": rows}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.output, (json.dumps(report, indent=2) + "\n").encode())


if __name__ == "__main__":
    main()
