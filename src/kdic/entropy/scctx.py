"""ELIC's space-channel context model (SCCTX) with a hyperprior, in ELIC and S2CFormer styles.

Per channel group k (uneven sizes, e.g. 16,16,32,64,M-128): a channel-context network sees all
previously decoded groups, a checkerboard spatial context sees the group's decoded anchors, and a
parameter-aggregation network turns [spatial ctx, channel ctx, hyper params] into (scale, mean)
of a Gaussian. Training runs the exact decode order ("two-pass" checkerboard): anchors with a zero
spatial context first, then non-anchors with the anchors' context.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import torch
from torch import Tensor, nn

from ..layers import GatedFFN, LayerNorm2d, S2CConvBlock, SubpelConv, conv, deconv
from ..limits import ADDED, MAX_CHANNELS, MAX_DEPTH, MAX_EXPANSION, MAX_GROUPS, in_range, require
from .bottleneck import EntropyBottleneck
from .coder import CODING_GRIDS, ROUND_UP, CodingGrid, quantize_parameters, residual_symbols
from .family import CONTEXT_PHASES, LATENT_CODECS, LatentCodecConfig, LatentCodecFamily
from .latent import HyperpriorLatentCodec, SymbolCoder
from .ops import gaussian_likelihood, quantize


@dataclass(frozen=True)
class SCCTXConfig(LatentCodecConfig):
    """ELIC space-channel context entropy model with a hyperprior.

    ``groups`` are the leading channel groups; the last group takes the remaining
    ``M - sum(groups)`` channels. ``style="s2c"`` is S2CFormer's enhanced SCCTX (gated blocks in the
    hyper transforms, channel context and parameter aggregation, with the three expansions);
    ``style="elic"`` is ELIC's original conv/ReLU version.
    """

    hyper_channels: int = 192
    groups: tuple[int, ...] = (16, 16, 32, 64)
    style: str = "s2c"
    hyper_expansion: float = 2.0
    context_expansion: float = 4.0
    aggregation_expansion: float = 4.0
    hyper_blocks: int = 2
    kind: Literal["scctx"] = "scctx"
    # How coding snaps scales and means (``kdic.entropy.coder``): the presets shipped rounding up;
    # imported models code with the nearest entry.
    coding: Literal["round-up", "nearest"] = field(default="round-up", metadata=ADDED)

    def __post_init__(self) -> None:
        require(self.style in ("s2c", "elic"), f"SCCTX style must be 's2c' or 'elic', got {self.style!r}")
        in_range("hyper_channels", self.hyper_channels, 1, MAX_CHANNELS)
        in_range("number of leading channel groups", len(self.groups), 1, MAX_GROUPS)
        for g in self.groups:
            in_range("channel group size", g, 1, MAX_CHANNELS)
        for what in ("hyper_expansion", "context_expansion", "aggregation_expansion"):
            in_range(what, getattr(self, what), 0, MAX_EXPANSION, open_low=True)
        in_range("hyper_blocks", self.hyper_blocks, 0, MAX_DEPTH)

    def channel_groups(self, latent_channels: int) -> tuple[int, ...]:
        """Full group sizes, the remainder group included."""
        return (*self.groups, latent_channels - sum(self.groups))


def channel_ramp(in_ch: int, out_ch: int, min_ch: int, layers: int = 3) -> list[int]:
    """Widths of a ``layers``-deep ramp from ``in_ch`` to ``out_ch``, interior widths >= ``min_ch``."""
    widths = [(in_ch * (layers - i) + out_ch * i) // layers for i in range(layers + 1)]
    return [widths[0], *(max(w, min_ch) for w in widths[1:-1]), widths[-1]]


class ParameterAggregationBlock(nn.Module):
    """1x1 projection, then x + GatedFFN(LN(x)) (S2CFormer's enhanced aggregation)."""

    def __init__(self, in_ch: int, out_ch: int, expansion: float) -> None:
        super().__init__()
        self.mixer = nn.Conv2d(in_ch, out_ch, 1)
        self.norm = LayerNorm2d(out_ch)
        self.ffn = GatedFFN(out_ch, expansion)

    def forward(self, x: Tensor) -> Tensor:
        x = self.mixer(x)
        return x + self.ffn(self.norm(x))


def _ramp(widths: list[int], make_layer, act: type[nn.Module] | None) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(make_layer(a, b))
        if act is not None and i < len(widths) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


def checkerboard_anchor_mask(height: int, width: int, like: Tensor) -> Tensor:
    """(1, 1, H, W) boolean mask, True on anchors ((row + col) even), decoded first."""
    rows = torch.arange(height, device=like.device)[:, None]
    cols = torch.arange(width, device=like.device)[None, :]
    return ((rows + cols) % 2 == 0)[None, None]


def _gather(t: Tensor, positions: Tensor) -> Tensor:
    """(B, C, 1, N): ``t`` at the flat spatial ``positions``, for pointwise networks."""
    return t.flatten(2)[..., positions].unsqueeze(2)


class SCCTXLatentCodec(HyperpriorLatentCodec):
    """Hyperprior + channel groups + checkerboard latent codec for y (and factorized z)."""

    def __init__(
        self,
        latent_channels: int,
        groups: tuple[int, ...],
        hyper_channels: int,
        style: str,
        hyper_expansion: float,
        context_expansion: float,
        aggregation_expansion: float,
        hyper_blocks: int,
        grid: CodingGrid = ROUND_UP,
    ) -> None:
        super().__init__()
        m, n = latent_channels, hyper_channels
        self.grid = grid
        self.groups = list(groups)
        self.h_a, self.h_s = self._hyper_transforms(m, n, style, hyper_expansion, hyper_blocks)
        self.entropy_bottleneck = EntropyBottleneck(n)
        self.channel_context = nn.ModuleDict()
        for k in range(1, len(groups)):
            widths = channel_ramp(sum(groups[:k]), 2 * groups[k], n)
            if style == "s2c":
                self.channel_context[f"y{k}"] = _ramp(widths, lambda a, b: S2CConvBlock(a, context_expansion, b), None)
            else:
                self.channel_context[f"y{k}"] = nn.Sequential(
                    conv(widths[0], 224, 5),
                    nn.ReLU(inplace=True),
                    conv(224, 128, 5),
                    nn.ReLU(inplace=True),
                    conv(128, widths[-1], 5),
                )
        self.spatial_context = nn.ModuleList(conv(g, 2 * g, 5) for g in groups)
        self.param_aggregation = nn.ModuleList()
        for k, g in enumerate(groups):
            widths = channel_ramp(2 * g + (2 * g if k else 0) + 2 * n, 2 * g, 2 * n)
            if style == "s2c":
                self.param_aggregation.append(
                    _ramp(widths, lambda a, b: ParameterAggregationBlock(a, b, aggregation_expansion), None)
                )
            else:
                self.param_aggregation.append(_ramp(widths, lambda a, b: conv(a, b, 1), nn.ReLU))

    @staticmethod
    def _hyper_transforms(
        m: int, n: int, style: str, expansion: float, blocks: int
    ) -> tuple[nn.Sequential, nn.Sequential]:
        if style == "elic":
            h_a = nn.Sequential(
                conv(m, n, 3), nn.ReLU(inplace=True), conv(n, n, 5, 2), nn.ReLU(inplace=True), conv(n, n, 5, 2)
            )
            h_s = nn.Sequential(
                deconv(n, n, 5, 2),
                nn.ReLU(inplace=True),
                deconv(n, 3 * n // 2, 5, 2),
                nn.ReLU(inplace=True),
                deconv(3 * n // 2, 2 * n, 3, 1),
            )
            return h_a, h_s

        def gated() -> list[nn.Module]:
            return [S2CConvBlock(n, expansion) for _ in range(blocks)]

        h_a = nn.Sequential(conv(m, n, 3), *gated(), conv(n, n, 3, 2), *gated(), conv(n, n, 3, 2))
        h_s = nn.Sequential(SubpelConv(n, n), *gated(), SubpelConv(n, n), *gated(), conv(n, 2 * n, 3))
        return h_a, h_s

    def group_context(self, k: int, y_hat_groups: list[Tensor], side_params: Tensor) -> Tensor:
        """Context tensor fed (after the spatial context) into group k's parameter aggregation."""
        if k == 0:
            return side_params
        return torch.cat([self.channel_context[f"y{k}"](torch.cat(y_hat_groups, dim=1)), side_params], dim=1)

    def group_params(self, k: int, spatial_ctx: Tensor, context: Tensor) -> tuple[Tensor, Tensor]:
        """(scales, means) of group k from its spatial context and its channel/hyper context."""
        scales, means = self.param_aggregation[k](torch.cat([spatial_ctx, context], dim=1)).chunk(2, dim=1)
        return scales, means

    def _code_group(self, k: int, y: Tensor, context: Tensor) -> tuple[Tensor, Tensor]:
        """Two-pass checkerboard: anchors from a zero spatial context, non-anchors from the anchors."""
        b, g, h, w = y.shape
        anchor = checkerboard_anchor_mask(h, w, y)
        scales_a, means_a = self.group_params(k, y.new_zeros(b, 2 * g, h, w), context)
        y_hat_anchor = quantize(y, means_a, self.training) * anchor
        scales_n, means_n = self.group_params(k, self.spatial_context[k](y_hat_anchor), context)
        scales = torch.where(anchor, scales_a, scales_n)
        means = torch.where(anchor, means_a, means_n)
        return quantize(y, means, self.training), gaussian_likelihood(y, scales, means, self.training)

    def forward(self, y: Tensor) -> dict:
        z = self.h_a(y)
        z_hat, z_likelihoods = self.entropy_bottleneck(z)
        side_params = self.h_s(z_hat)
        y_hat_groups: list[Tensor] = []
        likelihoods: list[Tensor] = []
        for k, y_k in enumerate(y.split(self.groups, dim=1)):
            y_hat_k, likelihood_k = self._code_group(k, y_k, self.group_context(k, y_hat_groups, side_params))
            y_hat_groups.append(y_hat_k)
            likelihoods.append(likelihood_k)
        return {
            "y_hat": torch.cat(y_hat_groups, dim=1),
            "likelihoods": {"y": torch.cat(likelihoods, dim=1), "z": z_likelihoods},
        }

    def side_params(self, z_hat: Tensor) -> Tensor:
        return self.h_s(z_hat)

    def code_y(
        self, side: Tensor, y_shape: tuple[int, int, int, int], coder: SymbolCoder, y: Tensor | None, packed: bool
    ) -> Tensor:
        """Real-coding twin of ``forward``: per group, anchors then non-anchors, quantized parameters.

        The parameter aggregation is pointwise, so ``packed`` (format 4 on) runs it on the positions being
        coded only, gathered into a (B, C, 1, N) row: half the work of running it on the whole latent for
        each of the two passes (formats 1-3). Symbols are coded in the same order either way.
        """
        b, _, h, w = y_shape
        anchor = checkerboard_anchor_mask(h, w, side)
        y_groups = y.split(self.groups, dim=1) if y is not None else [None] * len(self.groups)
        y_hat_groups: list[Tensor] = []
        for k, g in enumerate(self.groups):
            y_group = y_groups[k]
            context = self.group_context(k, y_hat_groups, side)
            y_hat = side.new_zeros(b, g, h, w)
            for mask in (anchor, ~anchor):
                spatial = self.spatial_context[k](y_hat) if mask is not anchor else side.new_zeros(b, 2 * g, h, w)
                at = mask.flatten().nonzero().squeeze(1)
                if packed:
                    indexes, means = quantize_parameters(
                        *self.group_params(k, _gather(spatial, at), _gather(context, at)), self.grid
                    )
                else:
                    full = quantize_parameters(*self.group_params(k, spatial, context), self.grid)
                    indexes, means = (_gather(t, at) for t in full)
                symbols = None if y_group is None else residual_symbols(_gather(y_group, at), means)
                y_hat.flatten(2)[..., at] = (coder.code(symbols, indexes) + means).squeeze(2)
            y_hat_groups.append(y_hat)
        return torch.cat(y_hat_groups, dim=1)


def _fits(config: SCCTXConfig, latent_channels: int) -> str | None:
    lead = sum(config.groups)
    return (
        None
        if latent_channels > lead
        else (
            f"latent channels M={latent_channels} must exceed the sum of the leading channel groups "
            f"{list(config.groups)} = {lead} (the last group takes M - {lead})"
        )
    )


LATENT_CODECS.register(
    "scctx",
    LatentCodecFamily(
        SCCTXConfig,
        build=lambda c, m: SCCTXLatentCodec(
            m,
            c.channel_groups(m),
            c.hyper_channels,
            c.style,
            c.hyper_expansion,
            c.context_expansion,
            c.aggregation_expansion,
            c.hyper_blocks,
            CODING_GRIDS[c.coding],
        ),
        parts={
            "channel_context": ("channel_context",),
            "param_aggregation": ("param_aggregation",),
            "spatial_context": ("spatial_context",),
            "hyper": ("h_a", "h_s", "entropy_bottleneck"),
        },
        phases=CONTEXT_PHASES,
        interface=lambda c, m: ("scctx", m, c.channel_groups(m), c.hyper_channels),
        check=_fits,
        checkerboard=("spatial_context",),
        # S2CFormer's enhanced SCCTX has expansions to shrink; ELIC's conv version has none.
        shrink=lambda c, e: (
            replace(c, context_expansion=float(e), aggregation_expansion=float(e)) if c.style == "s2c" else c
        ),
    ),
)
