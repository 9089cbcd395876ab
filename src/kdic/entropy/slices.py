"""TCM's channel-wise autoregressive entropy model: equal slices, Swin-attention context, LRP.

For slice i, the mean (and, separately, the scale) is predicted from the hyper-decoded means
(scales) and up to ``max_support`` previously decoded slices, through a Swin attention module and a
3-layer conv net; a latent residual prediction (LRP) then corrects the dequantized slice.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..layers import AttentionBlock, ResidualBlockUpsample, ResidualBlockWithStride, SubpelConv, SwinLayer, TCMBlock, conv
from .bottleneck import EntropyBottleneck
from .coder import quantize_parameters, residual_symbols
from .latent import HyperpriorLatentCodec, SymbolCoder
from .ops import gaussian_likelihood, quantize


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
    return nn.Sequential(conv(in_ch, widths[0], 3), nn.GELU(), conv(widths[0], widths[1], 3), nn.GELU(),
                         conv(widths[1], out_ch, 3))


class SliceLatentCodec(HyperpriorLatentCodec):
    """Hyperprior (separate mean and scale synthesis) plus sliced channel context for y."""

    def __init__(self, latent_channels: int, hyper_channels: int, hyper_width: int, hyper_head_dim: int,
                 hyper_window: int, hyper_blocks: int, slices: int, max_support: int, attention_width: int,
                 attention_head_dim: int, attention_window: int, context_widths: tuple[int, int]) -> None:
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
            SwinAttention(c, attention_width, attention_head_dim, attention_window) for c in support)
        self.atten_scale = nn.ModuleList(
            SwinAttention(c, attention_width, attention_head_dim, attention_window) for c in support)
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
        return {"y_hat": torch.cat(y_hat_slices, dim=1),
                "likelihoods": {"y": torch.cat(likelihoods, dim=1), "z": z_likelihoods}}

    def side_params(self, z_hat: Tensor) -> tuple[Tensor, Tensor]:
        return self.h_mean_s(z_hat), self.h_scale_s(z_hat)

    def code_y(self, side: tuple[Tensor, Tensor], y_shape: tuple[int, int, int, int], coder: SymbolCoder,
               y: Tensor | None) -> Tensor:
        """Real-coding twin of ``forward``: slice by slice with quantized parameters."""
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
