"""Does training a variable-rate model at one lambda lift its unrounded-PSNR bound? (issue 13.5)

Fine-tunes every parameter except the quantiles at a single lambda (Adam, batch 8, 128² BSDS500 crops,
gradient clip 1) and every 100 steps reports, on 256² top-left crops of four Kodak images, the
likelihood bpp, the coded PSNR and the PSNR with the latent unrounded
(``scripts/autoencoder_ceiling.py``). A probe, not a training run: nothing is saved but the report.

    OMP_NUM_THREADS=1 python scripts/one_lambda_probe.py --weights results/vr/extended/student/model.safetensors \
        --lmbda 0.178 --steps 300 --lr 1e-4 --data ../shared/data/train/bsds500 --val ../shared/data/kodak \
        -o results/vr/ceiling/probe-lr1e-4.json
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
from kdic.train.data import CropDataset, batches
from kdic.train.losses import rd_loss

PROBE_IMAGES = ("kodim01.png", "kodim05.png", "kodim13.png", "kodim20.png")  # detailed and smooth ones
CROP = 256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", required=True)
    parser.add_argument("--lmbda", type=float, required=True)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--data", required=True, help="training images")
    parser.add_argument("--val", required=True, help="Kodak folder")
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = load(args.weights)
    crops = [(n, image[:CROP, :CROP]) for n, image in load_validation(args.val) if n in PROBE_IMAGES]
    rows = []

    def report(step: int) -> None:
        model.eval()
        with torch.no_grad():
            coded = estimate_rd(lambda x: model(x, args.lmbda), crops, model.padding_multiple)
            plain = estimate_rd(lambda x: unrounded_forward(model, x, args.lmbda), crops, model.padding_multiple)
        rows.append({"step": step, "bpp": coded["bpp"], "psnr": coded["psnr"], "psnr_unrounded": plain["psnr"]})
        print(f"step {step}: {coded['bpp']:.3f} bpp, {coded['psnr']:.2f} dB coded, {plain['psnr']:.2f} dB unrounded")
        model.train()

    trained = [p for p in model.parameters() if all(p is not q for q in model.aux_parameters())]
    optimizer = torch.optim.Adam(trained, lr=args.lr)
    report(0)
    for step, x in enumerate(batches(CropDataset(args.data, 128, seed=7), 8, 0, args.steps), 1):
        loss = rd_loss(model(x, args.lmbda), x, args.lmbda)["loss"]
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        optimizer.step()
        if step % 100 == 0:
            report(step)
    result = {"weights": args.weights, "lmbda": args.lmbda, "lr": args.lr, "images": list(PROBE_IMAGES), "rows": rows}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.output, (json.dumps(result, indent=2) + "\n").encode())


if __name__ == "__main__":
    main()
