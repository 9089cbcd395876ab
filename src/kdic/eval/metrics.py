"""Rate-distortion metrics: PSNR on 8-bit RGB, and likelihood-estimated rate on whole images."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from ..codec.pipeline import pad_to_multiple, to_tensor, to_uint8
from ..train.losses import rate_bpp


def psnr_uint8(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB over all RGB values of two uint8 images."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * math.log10(255**2 / mse) if mse > 0 else float("inf")


@torch.no_grad()
def estimate_rd(forward: Callable[[torch.Tensor], dict], images: list[tuple[str, np.ndarray]], padding_multiple: int = 64,
                device: torch.device | str = "cpu") -> dict[str, float]:
    """Mean likelihood-estimated bpp and mean per-image PSNR (8-bit, cropped) of ``forward`` (eval mode)."""
    bpps, psnrs = [], []
    for _, image in images:
        h, w = image.shape[:2]
        x = pad_to_multiple(to_tensor(image), padding_multiple).to(device)
        out = forward(x)
        bpps.append(float(rate_bpp(out["likelihoods"], h * w)))
        psnrs.append(psnr_uint8(to_uint8(out["x_hat"].clamp(0, 1)[..., :h, :w].cpu()), image))
    return {"bpp": float(np.mean(bpps)), "psnr": float(np.mean(psnrs))}
