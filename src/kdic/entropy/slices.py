"""TCM's channel-wise autoregressive entropy model: equal slices, Swin-attention context, LRP.

For slice i, the mean (and, separately, the scale) is predicted from the hyper-decoded means
(scales) and up to ``max_support`` previously decoded slices, through a Swin attention module and a
3-layer conv net; a latent residual prediction (LRP) then corrects the dequantized slice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from ..layers import (
    AttentionBlock,
    ResidualBlockUpsample,
    ResidualBlockWithStride,
    SubpelConv,
    SwinLayer,
    TCMBlock,
    conv,
)
from ..limits import MAX_CHANNELS, MAX_DEPTH, MAX_SLICES, MAX_WINDOW, in_range, require
from .bottleneck import EntropyBottleneck
from .coder import quantize_parameters, residual_symbols
from .family import CONTEXT_PHASES, LATENT_CODECS, LatentCodecConfig, LatentCodecFamily
from .latent import HyperpriorLatentCodec, SymbolCoder
from .ops import gaussian_likelihood, quantize


@dataclass(frozen=True)
class SliceConfig(LatentCodecConfig):
    """TCM's channel-wise autoregressive entropy model (equal slices, Swin attention, LRP)."""

    hyper_channels: int = 192
    hyper_width: int = 256
    hyper_head_dim: int = 32
    hyper_window: int = 4
    hyper_blocks: int = 2
    slices: int = 5
    max_support: int = 5
    attention_width: int = 128
    attention_head_dim: int = 16
    attention_window: int = 8
    context_widths: tuple[int, int] = (224, 128)
    kind: Literal["slices"] = "slices"

    def __post_init__(self) -> None:
        for what in ("hyper_channels", "hyper_width", "hyper_head_dim", "attention_width", "attention_head_dim"):
            in_range(what, getattr(self, what), 1, MAX_CHANNELS)
        for width in self.context_widths:
            in_range("context width", width, 1, MAX_CHANNELS)
        in_range("hyper_window", self.hyper_window, 1, MAX_WINDOW)
        in_range("attention_window", self.attention_window, 1, MAX_WINDOW)
        in_range("hyper_blocks", self.hyper_blocks, 0, MAX_DEPTH)
        in_range("slices", self.slices, 1, MAX_SLICES)
        in_range("max_support", self.max_support, 0, MAX_SLICES)
        require(
            self.hyper_width % 2 == 0 and (self.hyper_width // 2) % self.hyper_head_dim == 0,
            "hyper_width/2 must be divisible by hyper_head_dim",
        )
        require(
            self.attention_width % self.attention_head_dim == 0,
            "attention_width must be divisible by attention_head_dim",
        )


class SwinAttention(nn.Module):
    """TCM's SWAtten: 1x1 in, simplified attention whose mask branch sees a W/SW Swin pair, 1x1 out."""

    def __init__(self, channels: int, inner: int, head_dim: int, window: int) -> None:
        super().__init__()
        self.in_conv = conv(channels, inner, 1)
        self.swin = nn.ModuleList(SwinLayer(inner, head_dim, window, shifted=s) for s in (False, True))
        self.attention = AttentionBlock(inner)
        self.out_conv = conv(inner, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.in_conv(x)
        tokens = x.permute(0, 2, 3, 1)
        for layer in self.swin:
            tokens = layer(tokens)
        return self.out_conv(self.attention(x, mask_input=tokens.permute(0, 3, 1, 2)))


def _context_net(in_ch: int, widths: tuple[int, int], out_ch: int) -> nn.Sequential:
    return nn.Sequential(
        conv(in_ch, widths[0], 3), nn.GELU(), conv(widths[0], widths[1], 3), nn.GELU(), conv(widths[1], out_ch, 3)
    )


class SliceLatentCodec(HyperpriorLatentCodec):
    """Hyperprior (separate mean and scale synthesis) plus sliced channel context for y."""

    def __init__(
        self,
        latent_channels: int,
        hyper_channels: int,
        hyper_width: int,
        hyper_head_dim: int,
        hyper_window: int,
        hyper_blocks: int,
        slices: int,
        max_support: int,
        attention_width: int,
        attention_head_dim: int,
        attention_window: int,
        context_widths: tuple[int, int],
    ) -> None:
        super().__init__()
        m, width = latent_channels, hyper_width
        self.slices, self.max_support = slices, max_support
        slice_ch = m // slices

        def blocks() -> list[nn.Module]:
            return [TCMBlock(width, 4.0, hyper_head_dim, hyper_window, i) for i in range(hyper_blocks)]

        self.h_a = nn.Sequential(ResidualBlockWithStride(m, width), *blocks(), conv(width, hyper_channels, 3, 2))
        self.h_mean_s = nn.Sequential(ResidualBlockUpsample(hyper_channels, width), *blocks(), SubpelConv(width, m))
        self.h_scale_s = nn.Sequential(ResidualBlockUpsample(hyper_channels, width), *blocks(), SubpelConv(width, m))
        self.entropy_bottleneck = EntropyBottleneck(hyper_channels)
        support = [m + slice_ch * min(i, max_support) for i in range(slices)]
        self.atten_mean = nn.ModuleList(
            SwinAttention(c, attention_width, attention_head_dim, attention_window) for c in support
        )
        self.atten_scale = nn.ModuleList(
            SwinAttention(c, attention_width, attention_head_dim, attention_window) for c in support
        )
        self.cc_mean = nn.ModuleList(_context_net(c, context_widths, slice_ch) for c in support)
        self.cc_scale = nn.ModuleList(_context_net(c, context_widths, slice_ch) for c in support)
        self.lrp = nn.ModuleList(_context_net(c + slice_ch, context_widths, slice_ch) for c in support)

    def forward(self, y: Tensor) -> dict:
        z = self.h_a(y)
        z_hat, z_likelihoods = self.entropy_bottleneck(z)
        latent_means, latent_scales = self.h_mean_s(z_hat), self.h_scale_s(z_hat)
        y_hat_slices: list[Tensor] = []
        likelihoods: list[Tensor] = []
        for i, y_slice in enumerate(y.chunk(self.slices, dim=1)):
            support = y_hat_slices[: self.max_support]
            mean_support = self.atten_mean[i](torch.cat([latent_means, *support], dim=1))
            means = self.cc_mean[i](mean_support)
            scales = self.cc_scale[i](self.atten_scale[i](torch.cat([latent_scales, *support], dim=1)))
            likelihoods.append(gaussian_likelihood(y_slice, scales, means, self.training))
            y_hat_slice = quantize(y_slice, means, self.training)
            residual = self.lrp[i](torch.cat([mean_support, y_hat_slice], dim=1))
            y_hat_slices.append(y_hat_slice + 0.5 * torch.tanh(residual))
        return {
            "y_hat": torch.cat(y_hat_slices, dim=1),
            "likelihoods": {"y": torch.cat(likelihoods, dim=1), "z": z_likelihoods},
        }

    def side_params(self, z_hat: Tensor) -> tuple[Tensor, Tensor]:
        return self.h_mean_s(z_hat), self.h_scale_s(z_hat)

    def code_y(
        self,
        side: tuple[Tensor, Tensor],
        y_shape: tuple[int, int, int, int],
        coder: SymbolCoder,
        y: Tensor | None,
        packed: bool,
    ) -> Tensor:
        """Real-coding twin of ``forward``: slice by slice with quantized parameters (every position of a
        slice is coded at once, so there is nothing to pack)."""
        latent_means, latent_scales = side
        y_slices = y.chunk(self.slices, dim=1) if y is not None else [None] * self.slices
        y_hat_slices: list[Tensor] = []
        for i, y_slice in enumerate(y_slices):
            support = y_hat_slices[: self.max_support]
            mean_support = self.atten_mean[i](torch.cat([latent_means, *support], dim=1))
            scales = self.cc_scale[i](self.atten_scale[i](torch.cat([latent_scales, *support], dim=1)))
            indexes, means = quantize_parameters(scales, self.cc_mean[i](mean_support))
            symbols = None if y_slice is None else residual_symbols(y_slice, means)
            y_hat_slice = coder.code(symbols, indexes) + means
            residual = self.lrp[i](torch.cat([mean_support, y_hat_slice], dim=1))
            y_hat_slices.append(y_hat_slice + 0.5 * torch.tanh(residual))
        return torch.cat(y_hat_slices, dim=1)


LATENT_CODECS.register(
    "slices",
    LatentCodecFamily(
        SliceConfig,
        build=lambda c, m: SliceLatentCodec(
            m,
            c.hyper_channels,
            c.hyper_width,
            c.hyper_head_dim,
            c.hyper_window,
            c.hyper_blocks,
            c.slices,
            c.max_support,
            c.attention_width,
            c.attention_head_dim,
            c.attention_window,
            c.context_widths,
        ),
        parts={
            "channel_context": ("atten_mean", "atten_scale", "cc_mean", "cc_scale"),
            "param_aggregation": ("lrp",),
            "hyper": ("h_a", "h_mean_s", "h_scale_s", "entropy_bottleneck"),
        },
        phases=CONTEXT_PHASES,
        interface=lambda c, m: ("slices", m, c.slices, c.hyper_channels),
        check=lambda c, m: (
            None if m % c.slices == 0 else f"latent channels M={m} must be divisible by {c.slices} slices"
        ),
    ),
)
