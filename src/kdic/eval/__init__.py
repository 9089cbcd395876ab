"""Evaluation: rate-distortion metrics on image sets."""

from .metrics import estimate_rd, psnr_uint8

__all__ = ["estimate_rd", "psnr_uint8"]
