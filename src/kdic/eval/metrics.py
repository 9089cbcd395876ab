"""Rate-distortion metrics: MS-SSIM on 8-bit RGB, likelihood-estimated rate, and the likelihood RD of a model
on a set of images (PSNR itself lives in ``kdic.codec.distortion``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import cast

import numpy as np
import torch
from pytorch_msssim import ms_ssim

from ..codec.distortion import psnr_uint8
from ..codec.pipeline import pad_to_multiple, to_tensor, to_uint8
from ..models import LearnedImageCodec

MS_SSIM_MIN_SIDE = 161  # pytorch_msssim's 5 scales need both sides > 160 px


def rate_bpp(likelihoods: dict[str, torch.Tensor], num_pixels: int) -> torch.Tensor:
    """Estimated bits per pixel from the likelihoods of every latent."""
    bits = cast(torch.Tensor, sum(torch.log(lik).sum() for lik in likelihoods.values()))  # 0 + tensors
    return bits / (-math.log(2) * num_pixels)


def ms_ssim_uint8(a: np.ndarray, b: np.ndarray) -> float | None:
    """MS-SSIM (5 scales, Gaussian window 11, sigma 1.5) on 8-bit RGB; None for images too small."""
    if min(a.shape[:2]) < MS_SSIM_MIN_SIDE:
        return None
    x, y = (torch.from_numpy(v.astype(np.float32)).permute(2, 0, 1)[None] for v in (a, b))
    return float(ms_ssim(x, y, data_range=255.0))


@torch.no_grad()
def estimate_rd(
    forward: Callable[[torch.Tensor], dict],
    images: list[tuple[str, np.ndarray]],
    padding_multiple: int = 64,
    device: torch.device | str = "cpu",
) -> dict[str, float]:
    """Mean likelihood-estimated bpp and mean per-image PSNR (8-bit, cropped) of ``forward`` (eval mode)."""
    bpps, psnrs = [], []
    for _, image in images:
        h, w = image.shape[:2]
        x = pad_to_multiple(to_tensor(image), padding_multiple).to(device)
        out = forward(x)
        bpps.append(float(rate_bpp(out["likelihoods"], h * w)))
        psnrs.append(psnr_uint8(to_uint8(out["x_hat"].clamp(0, 1)[..., :h, :w].cpu()), image))
    return {"bpp": float(np.mean(bpps)), "psnr": float(np.mean(psnrs))}


def unrounded_forward(model: LearnedImageCodec, x: torch.Tensor, lmbda: float | None) -> dict:
    """``model(x, lmbda)`` with the latent left unrounded (its likelihoods as coded): the PSNR the
    transforms reach without quantization, which bounds what any rate buys (scripts/autoencoder_ceiling.py)."""
    y = model.analyze(x, lmbda)
    return {"x_hat": model.reconstruct(y, lmbda), "likelihoods": model.latent_likelihoods(y)}
