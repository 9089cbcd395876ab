#!/usr/bin/env python
"""Border against interior error on flat images, and a 1x1 image, for weights as trained or with their
convolutions switched to another padding (docs/variable_rate.md, "Borders").

    python scripts/border_error.py src/kdic/data/weights/kdic-tiny-vr.safetensors --lmbda 0.0018
    python scripts/border_error.py results/repro/shipped-0.1/kdic-tiny-q1.safetensors [--padding replicate]
"""

import argparse

import numpy as np
import torch

from kdic.checkpoint import load
from kdic.codec.image_io import read_image
from kdic.codec.pipeline import encode_image
from kdic.data import sample_image_path
from kdic.models.lic import set_padding

BORDER = 8  # pixels

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("weights")
parser.add_argument("--padding", choices=["zeros", "replicate"], help="switch the padding without retraining")
parser.add_argument("--lmbda", type=float, help="rate point of variable-rate weights")
args = parser.parse_args()
torch.set_num_threads(1)
model = load(args.weights)
if args.padding == "replicate":
    set_padding(model, "replicate", [f"latent_codec.{n}" for n in model.config.family.checkerboard])
band = np.zeros((256, 256), bool)
band[:BORDER], band[-BORDER:], band[:, :BORDER], band[:, -BORDER:] = True, True, True, True
for level in (30, 128, 230):
    image = np.full((256, 256, 3), level, np.uint8)
    _, decoded, _ = encode_image(model, image, estimate=False, lmbda=args.lmbda)
    error = np.abs(decoded.astype(int) - level).max(axis=2)
    print(
        f"flat {level}: border max {error[band].max()} mean {error[band].mean():.2f} levels, "
        f"interior max {error[~band].max()} mean {error[~band].mean():.2f}"
    )
    _, pixel, _ = encode_image(model, np.full((1, 1, 3), level, np.uint8), estimate=False, lmbda=args.lmbda)
    print(f"1x1 {level}: {np.abs(pixel.astype(int) - level).max()} levels off")
photo = read_image(sample_image_path())
data, decoded, _ = encode_image(model, photo, estimate=False, lmbda=args.lmbda)
mse = np.mean((decoded.astype(float) - photo) ** 2)
print(f"kodim23: {8 * len(data) / photo.shape[0] / photo.shape[1]:.4f} bpp, {10 * np.log10(255**2 / mse):.2f} dB")
