"""Evaluation: rate-distortion metrics on image sets, real-bitstream RD curves, BD-rate, baselines."""

from ..lazy import lazy_exports

_EXPORTS = {"estimate_rd": ".metrics", "psnr_uint8": "..codec.distortion", "load_validation": ".validation"}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = list(_EXPORTS)
