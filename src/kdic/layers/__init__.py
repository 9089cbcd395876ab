"""Transform blocks, attention and resampling modules."""

from .attention import WindowAttention
from .blocks import (
    BLOCK_KINDS,
    AttentionBlock,
    DepthwiseMixer,
    NAFBlock,
    ResidualBottleneckBlock,
    S2CAttentionBlock,
    S2CConvBlock,
    SwinLayer,
    TCMBlock,
    make_block,
)
from .common import (
    DOWNSAMPLERS,
    GDN,
    UPSAMPLERS,
    GatedFFN,
    LayerNorm2d,
    ResidualBlock,
    ResidualBlockUpsample,
    ResidualBlockWithStride,
    SubpelConv,
    conv,
    deconv,
    resampler,
)

__all__ = [
    "AttentionBlock", "BLOCK_KINDS", "DOWNSAMPLERS", "DepthwiseMixer", "GDN", "GatedFFN", "LayerNorm2d",
    "NAFBlock", "ResidualBlock", "ResidualBlockUpsample", "ResidualBlockWithStride", "ResidualBottleneckBlock",
    "S2CAttentionBlock", "S2CConvBlock", "SubpelConv", "SwinLayer", "TCMBlock", "UPSAMPLERS", "WindowAttention",
    "conv", "deconv", "make_block", "resampler",
]
