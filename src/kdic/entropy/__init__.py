"""Entropy models: factorized prior, Gaussian conditional, and the registered latent-codec families."""

from .bottleneck import EntropyBottleneck
from .family import LATENT_CODECS, LatentCodecConfig, LatentCodecFamily
from .hyperprior import GaussianHyperpriorCodec, HyperpriorConfig
from .ops import bits, gaussian_likelihood, quantize, ste_round
from .scctx import SCCTXConfig, SCCTXLatentCodec, channel_ramp, checkerboard_anchor_mask
from .slices import SliceConfig, SliceLatentCodec

__all__ = [
    "EntropyBottleneck",
    "GaussianHyperpriorCodec",
    "HyperpriorConfig",
    "LATENT_CODECS",
    "LatentCodecConfig",
    "LatentCodecFamily",
    "SCCTXConfig",
    "SCCTXLatentCodec",
    "SliceConfig",
    "SliceLatentCodec",
    "bits",
    "channel_ramp",
    "checkerboard_anchor_mask",
    "gaussian_likelihood",
    "quantize",
    "ste_round",
]
