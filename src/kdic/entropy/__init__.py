"""Entropy models: factorized prior, Gaussian conditional, SCCTX and TCM slice latent codecs."""

from .bottleneck import EntropyBottleneck
from .ops import bits, gaussian_likelihood, quantize, ste_round
from .scctx import SCCTXLatentCodec, channel_ramp, checkerboard_anchor_mask
from .slices import SliceLatentCodec

__all__ = ["EntropyBottleneck", "SCCTXLatentCodec", "SliceLatentCodec", "bits", "channel_ramp",
           "checkerboard_anchor_mask", "gaussian_likelihood", "quantize", "ste_round"]
