"""Rate-distortion loss: R + lambda * 255^2 * MSE, with x in [0, 1] (CompressAI's convention)."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def rate_bpp(likelihoods: dict[str, Tensor], num_pixels: int) -> Tensor:
    """Estimated bits per pixel from the likelihoods of every latent."""
    return sum(torch.log(lik).sum() for lik in likelihoods.values()) / (-math.log(2) * num_pixels)


def rd_loss(out: dict, x: Tensor, lmbda: float) -> dict[str, Tensor]:
    """``loss`` (= ``rd``) = bpp + lambda * 255^2 * MSE, plus its parts for logging."""
    num_pixels = x.shape[0] * x.shape[2] * x.shape[3]
    bpp = rate_bpp(out["likelihoods"], num_pixels)
    mse = torch.mean((out["x_hat"] - x) ** 2)
    rd = bpp + lmbda * 255**2 * mse
    return {"loss": rd, "rd": rd, "bpp": bpp, "mse": mse}


def psnr(mse: float, peak: float = 1.0) -> float:
    return 10 * math.log10(peak**2 / mse) if mse > 0 else float("inf")
