"""Evaluation: rate-distortion metrics on image sets, real-bitstream RD curves, BD-rate, baselines."""

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

if TYPE_CHECKING:  # the real names for type checkers; at run time each loads on first use
    from ..codec.distortion import psnr_uint8
    from .metrics import estimate_rd
    from .validation import load_validation


_EXPORTS = {"estimate_rd": ".metrics", "psnr_uint8": "..codec.distortion", "load_validation": ".validation"}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = list(_EXPORTS)
