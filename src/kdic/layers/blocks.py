"""Non-linear transform blocks of every supported family, and a factory that builds them by name.

Families: S2CFormer (S2C-Conv, S2C-Attention), TCM (mixed transformer-CNN), NAFNet, ELIC
(residual bottleneck + simplified attention). Every block keeps its width; width changes happen
in the down/up-sampling modules of a stage.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .attention import WindowAttention
from .common import GatedFFN, LayerNorm2d, ResidualBlock, conv
from .kinds import BLOCKS, BlockKind


class DepthwiseMixer(nn.Module):
    """Spatial mixer of the S2C-Conv block: 1x1, LeakyReLU, depth-wise kxk, 1x1, plus a skip.

    ``out_ch != in_ch`` adds a 1x1 adaptor on the skip (used by the channel-context ramps).
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 5) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(in_ch, in_ch, 1), nn.LeakyReLU(0.01, inplace=True))
        self.depth_conv = nn.Conv2d(in_ch, in_ch, kernel_size, padding=kernel_size // 2, groups=in_ch)
        self.conv2 = nn.Conv2d(in_ch, out_ch, 1)
        self.adaptor = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else None

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.adaptor is None else self.adaptor(x)
        return self.conv2(self.depth_conv(self.conv1(x))) + identity


class S2CConvBlock(nn.Module):
    """S2C-Conv block: depth-wise conv mixer, then x + GatedFFN(LN(x))."""

    def __init__(self, in_ch: int, expansion: float, out_ch: int | None = None, kernel_size: int = 5) -> None:
        super().__init__()
        out_ch = in_ch if out_ch is None else out_ch
        self.mixer = DepthwiseMixer(in_ch, out_ch, kernel_size)
        self.norm = LayerNorm2d(out_ch)
        self.ffn = GatedFFN(out_ch, expansion)

    def forward(self, x: Tensor) -> Tensor:
        x = self.mixer(x)
        return x + self.ffn(self.norm(x))


class S2CAttentionBlock(nn.Module):
    """S2C-Attention block: x + WMSA(LN(x)) with non-shifted windows, then x + GatedFFN(LN(x))."""

    def __init__(self, channels: int, expansion: float, heads: int = 8, window: int = 8) -> None:
        super().__init__()
        self.norm1 = LayerNorm2d(channels)
        self.attn = WindowAttention(channels, heads, window, shift=0)
        self.norm2 = LayerNorm2d(channels)
        self.ffn = GatedFFN(channels, expansion)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return x + self.ffn(self.norm2(x))


class SwinLayer(nn.Module):
    """Swin transformer layer on channels-last tokens: LN, (S)W-MSA, LN, GELU MLP."""

    def __init__(self, dim: int, head_dim: int, window: int, shifted: bool, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, dim // head_dim, window, shift=window // 2 if shifted else 0)
        self.ln2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class TCMBlock(nn.Module):
    """TCM mixed transformer-CNN block: 1x1, split into a residual-conv and a Swin branch, 1x1, skip.

    ``channels`` is the total width; each branch gets half. Odd ``index`` uses shifted windows.
    """

    def __init__(self, channels: int, expansion: float, head_dim: int, window: int = 8, index: int = 0) -> None:
        super().__init__()
        if channels % 2:
            raise ValueError(f"TCM block width {channels} must be even")
        self.branch_width = channels // 2  # not ``half``: that would hide nn.Module.half()
        self.conv1_1 = nn.Conv2d(channels, channels, 1)
        self.conv1_2 = nn.Conv2d(channels, channels, 1)
        self.conv_block = ResidualBlock(self.branch_width, self.branch_width)
        self.trans_block = SwinLayer(self.branch_width, head_dim, window, shifted=index % 2 == 1, mlp_ratio=expansion)

    def forward(self, x: Tensor) -> Tensor:
        conv_x, trans_x = self.conv1_1(x).split(self.branch_width, dim=1)
        conv_x = self.conv_block(conv_x) + conv_x
        trans_x = self.trans_block(trans_x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return x + self.conv1_2(torch.cat((conv_x, trans_x), dim=1))


class NAFBlock(nn.Module):
    """NAFNet block: LN, 1x1 (2c), DW3x3, SimpleGate, SCA, 1x1; then LN, 1x1 (2c), SimpleGate, 1x1."""

    def __init__(self, channels: int, expansion: float = 2.0) -> None:
        super().__init__()
        hidden = int(channels * expansion)
        self.norm1 = LayerNorm2d(channels)
        self.conv1 = nn.Conv2d(channels, hidden, 1)
        self.conv2 = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.sca = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(hidden // 2, hidden // 2, 1))
        self.conv3 = nn.Conv2d(hidden // 2, channels, 1)
        self.norm2 = LayerNorm2d(channels)
        self.conv4 = nn.Conv2d(channels, hidden, 1)
        self.conv5 = nn.Conv2d(hidden // 2, channels, 1)
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, channels, 1, 1))

    @staticmethod
    def _gate(x: Tensor) -> Tensor:
        x1, x2 = x.chunk(2, dim=1)
        return x1 * x2

    def forward(self, x: Tensor) -> Tensor:
        y = self._gate(self.conv2(self.conv1(self.norm1(x))))
        y = self.conv3(y * self.sca(y))
        x = x + self.beta * y
        y = self.conv5(self._gate(self.conv4(self.norm2(x))))
        return x + self.gamma * y


class ResidualBottleneckBlock(nn.Module):
    """ELIC residual bottleneck: 1x1 (c/2), ReLU, 3x3, ReLU, 1x1 (c), plus identity.

    ``final_relu=True`` gives the residual unit of the simplified attention block.
    """

    def __init__(self, channels: int, final_relu: bool = False) -> None:
        super().__init__()
        mid = channels // 2
        self.body = nn.Sequential(
            conv(channels, mid, 1),
            nn.ReLU(inplace=True),
            conv(mid, mid, 3),
            nn.ReLU(inplace=True),
            conv(mid, channels, 1),
        )
        self.final_relu = final_relu

    def forward(self, x: Tensor) -> Tensor:
        out = x + self.body(x)
        return out.relu() if self.final_relu else out


class AttentionBlock(nn.Module):
    """Simplified attention (Cheng 2020, used by ELIC and TCM): x + a(x) * sigmoid(b(x)).

    ``mask_input`` lets TCM's SWAtten feed a Swin-transformed tensor into the mask branch.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv_a = nn.Sequential(*[ResidualBottleneckBlock(channels, final_relu=True) for _ in range(3)])
        self.conv_b = nn.Sequential(
            *[ResidualBottleneckBlock(channels, final_relu=True) for _ in range(3)], conv(channels, channels, 1)
        )

    def forward(self, x: Tensor, mask_input: Tensor | None = None) -> Tensor:
        b = self.conv_b(x if mask_input is None else mask_input)
        return x + self.conv_a(x) * b.sigmoid()


def _heads_divide(width: int, stage) -> str | None:
    return None if width % stage.heads == 0 else f"s2c-attn width {width} is not divisible by {stage.heads} heads"


def _tcm_width(width: int, stage) -> str | None:
    if width % 2:
        return f"tcm stage width {width} must be even"
    if (width // 2) % stage.head_dim:
        return f"tcm branch width {width // 2} is not divisible by head_dim {stage.head_dim}"
    return None


BLOCKS.register("s2c-conv", BlockKind(lambda width, stage, index: S2CConvBlock(width, stage.expansion)))
BLOCKS.register(
    "s2c-attn",
    BlockKind(
        lambda width, stage, index: S2CAttentionBlock(width, stage.expansion, stage.heads, stage.window), _heads_divide
    ),
)
BLOCKS.register(
    "tcm",
    BlockKind(
        lambda width, stage, index: TCMBlock(width, stage.expansion, stage.head_dim, stage.window, index), _tcm_width
    ),
)
BLOCKS.register("nafnet", BlockKind(lambda width, stage, index: NAFBlock(width, stage.expansion)))
BLOCKS.register("elic-rbb", BlockKind(lambda width, stage, index: ResidualBottleneckBlock(width), expansion=False))
