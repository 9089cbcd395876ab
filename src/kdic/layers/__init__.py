"""Transform blocks, attention and resampling modules, and their registries (``BLOCKS``, ``RESAMPLERS``)."""

from . import gdn_blocks  # noqa: F401  (registers its block kinds)
from .attention import WindowAttention
from .blocks import (
    AttentionBlock,
    DepthwiseMixer,
    NAFBlock,
    ResidualBottleneckBlock,
    S2CAttentionBlock,
    S2CConvBlock,
    SwinLayer,
    TCMBlock,
)
from .common import (
    GDN,
    GatedFFN,
    LayerNorm2d,
    ResidualBlock,
    ResidualBlockUpsample,
    ResidualBlockWithStride,
    SubpelConv,
    conv,
    deconv,
)
from .kinds import BLOCKS, RESAMPLERS, BlockKind, Resampler, resamplers

__all__ = [
    "AttentionBlock",
    "BLOCKS",
    "BlockKind",
    "DepthwiseMixer",
    "GDN",
    "GatedFFN",
    "LayerNorm2d",
    "NAFBlock",
    "RESAMPLERS",
    "ResidualBlock",
    "ResidualBlockUpsample",
    "ResidualBlockWithStride",
    "ResidualBottleneckBlock",
    "Resampler",
    "S2CAttentionBlock",
    "S2CConvBlock",
    "SubpelConv",
    "SwinLayer",
    "TCMBlock",
    "WindowAttention",
    "conv",
    "deconv",
    "resamplers",
]
