"""Distortion of a decoded image: what the codec's reports and its target-PSNR search measure."""

from __future__ import annotations

import math

import numpy as np


def psnr(mse: float, peak: float = 1.0) -> float:
    """PSNR in dB of a mean squared error on values whose range is ``peak``."""
    return 10 * math.log10(peak**2 / mse) if mse > 0 else float("inf")


def psnr_uint8(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB over all RGB values of two uint8 images."""
    return psnr(float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)), 255.0)
