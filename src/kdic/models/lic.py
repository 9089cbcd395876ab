"""The staged learned image codec: g_a (stages 1-3), latent codec, g_s (stages 4-6).

Public interface follows CompressAI (``forward`` -> ``x_hat`` + ``likelihoods``, ``aux_loss``) so
LIC users feel at home; every stage is addressable by its SMoDi index so that it can be frozen,
swapped or distilled on its own.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..entropy import SCCTXLatentCodec, SliceLatentCodec
from ..entropy.coder import fixed_threads
from ..entropy.latent import HYPER_STRIDE
from ..errors import ConfigError
from ..layers import AttentionBlock, make_block, resampler
from .config import ModelConfig, SCCTXConfig, StageConfig
from .rate import RATE_METHODS


class Stage(nn.Module):
    """One SMoDi stage: resampler, blocks, optional projection (stages 3 and 6), optional ELIC attention."""

    def __init__(self, config: StageConfig, in_ch: int, resample: str, projection: tuple[str, int] | None) -> None:
        super().__init__()
        self.attention_position = config.attention
        self.resample = resampler(resample, in_ch, config.channels)
        self.blocks = nn.Sequential(*(
            make_block(config.block, config.channels, config.expansion, i, config.heads, config.head_dim, config.window)
            for i in range(config.depth)))
        self.projection = resampler(projection[0], config.channels, projection[1]) if projection else None
        out_ch = projection[1] if projection else config.channels
        attention_width = {"start": in_ch, "after-resample": config.channels, "end": out_ch}.get(config.attention)
        self.attention = AttentionBlock(attention_width) if attention_width else None

    def forward(self, x: Tensor) -> Tensor:
        if self.attention_position == "start":
            x = self.attention(x)
        x = self.resample(x)
        if self.attention_position == "after-resample":
            x = self.attention(x)
        x = self.blocks(x)
        if self.projection is not None:
            x = self.projection(x)
        if self.attention_position == "end":
            x = self.attention(x)
        return x


class Transform(nn.Module):
    """Three stages applied in order; ``forward_stages`` also returns every stage output."""

    def __init__(self, stages: list[Stage]) -> None:
        super().__init__()
        self.stages = nn.ModuleList(stages)

    def forward_stages(self, x: Tensor) -> list[Tensor]:
        outputs = []
        for stage in self.stages:
            x = stage(x)
            outputs.append(x)
        return outputs

    def forward(self, x: Tensor) -> Tensor:
        for stage in self.stages:
            x = stage(x)
        return x


def build_latent_codec(config: ModelConfig) -> nn.Module:
    """Latent codec of y and z described by ``config.entropy``."""
    m = config.transform.latent_channels
    e = config.entropy
    if isinstance(e, SCCTXConfig):
        return SCCTXLatentCodec(m, config.channel_groups, e.hyper_channels, e.style, e.hyper_expansion,
                                e.context_expansion, e.aggregation_expansion, e.hyper_blocks)
    return SliceLatentCodec(m, e.hyper_channels, e.hyper_width, e.hyper_head_dim, e.hyper_window, e.hyper_blocks,
                            e.slices, e.max_support, e.attention_width, e.attention_head_dim, e.attention_window,
                            e.context_widths)


class LearnedImageCodec(nn.Module):
    """Learned image codec built from a ``ModelConfig``.

    ``forward(x)`` expects x in [0, 1] with height and width multiples of ``padding_multiple``
    and returns ``{"x_hat", "likelihoods": {"y", "z"}}``. A variable-rate model (config with
    ``variable_rate``) has a ``rate`` module and needs ``lmbda`` in ``forward``, ``compress`` and
    ``decompress``; a fixed-rate one codes at the lambda it was trained for and takes none.
    """

    padding_multiple = 64  # 16 (g_a) x 4 (h_a)

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.lmbda: float | None = None  # set by kdic.load from the weights metadata
        t = config.transform
        enc_in = [3, t.encoder[0].channels, t.encoder[1].channels]
        self.g_a = Transform([
            Stage(cfg, enc_in[i], t.down, (t.latent_projection, t.latent_channels) if i == 2 else None)
            for i, cfg in enumerate(t.encoder)])
        dec_in = [t.latent_channels, t.decoder[0].channels, t.decoder[1].channels]
        self.g_s = Transform([
            Stage(cfg, dec_in[i], t.up, (t.image_projection, 3) if i == 2 else None)
            for i, cfg in enumerate(t.decoder)])
        self.latent_codec = build_latent_codec(config)
        vr = config.variable_rate
        self.rate = RATE_METHODS[vr.method](t.latent_channels, vr.lmbdas) if vr is not None else None

    @property
    def variable_rate(self) -> bool:
        return self.rate is not None

    def check_lmbda(self, lmbda: float | None) -> None:
        """A variable-rate model needs a lambda in its range; a fixed-rate one refuses any."""
        if self.rate is None:
            if lmbda is not None:
                raise ConfigError(f"model {self.config.name!r} is fixed-rate (trained for lambda {self.lmbda}); "
                                  "it takes no lambda")
            return
        if lmbda is None:
            low, high = self.rate.range
            raise ConfigError(f"model {self.config.name!r} is variable-rate: pass a lambda from {low:g} to {high:g}")
        self.rate.check(lmbda)

    def scale_latent(self, y: Tensor, lmbda: float | None) -> Tensor:
        """y as the latent codec codes it (unchanged in a fixed-rate model)."""
        self.check_lmbda(lmbda)
        return y if self.rate is None else self.rate.scale_latent(y, lmbda)

    def unscale_latent(self, y_hat: Tensor, lmbda: float | None) -> Tensor:
        """Decoded latent as g_s reads it (unchanged in a fixed-rate model)."""
        self.check_lmbda(lmbda)
        return y_hat if self.rate is None else self.rate.unscale_latent(y_hat, lmbda)

    def stage(self, stage_index: int) -> Stage:
        """SMoDi stage 1-6 (1-3 encoder, 4-6 decoder)."""
        if not 1 <= stage_index <= 6:
            raise IndexError(f"stage_index must be in 1..6, got {stage_index}")
        transform = self.g_a if stage_index <= 3 else self.g_s
        return transform.stages[(stage_index - 1) % 3]

    def check_input(self, x: Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected a (B, 3, H, W) image batch, got shape {tuple(x.shape)}")
        h, w = x.shape[-2:]
        if h % self.padding_multiple or w % self.padding_multiple:
            raise ValueError(f"height and width must be multiples of {self.padding_multiple}, got {h}x{w}; "
                             "pad the image first (kdic.codec pads and crops automatically)")

    def forward(self, x: Tensor, lmbda: float | None = None) -> dict:
        self.check_input(x)
        self.check_lmbda(lmbda)
        latent = self.latent_codec(self.scale_latent(self.g_a(x), lmbda))
        return {"x_hat": self.g_s(self.unscale_latent(latent["y_hat"], lmbda)), "likelihoods": latent["likelihoods"]}

    @torch.no_grad()
    def compress(self, x: Tensor, lmbda: float | None = None) -> dict:
        """Entropy-code a batch: ``strings`` = [y strings, z strings] (one per image), ``shape`` = z size;
        ``y_hat`` is the coded latent (before the inverse gain of a variable-rate model)."""
        self.check_input(x)
        self.check_lmbda(lmbda)
        y = self.scale_latent(self.g_a(x), lmbda)
        coded = [self.latent_codec.compress(y[i: i + 1]) for i in range(x.shape[0])]
        return {"strings": [[c["strings"][0] for c in coded], [c["strings"][1] for c in coded]],
                "shape": (y.shape[-2] // HYPER_STRIDE, y.shape[-1] // HYPER_STRIDE),
                "y_hat": torch.cat([c["y_hat"] for c in coded])}

    @torch.no_grad()
    def decompress(self, strings: list[list[bytes]], shape: tuple[int, int], lmbda: float | None = None) -> dict:
        """Inverse of ``compress``; the synthesis runs single-threaded so every machine gets the same pixels."""
        self.check_lmbda(lmbda)
        y_shape = (1, self.config.transform.latent_channels, shape[0] * HYPER_STRIDE, shape[1] * HYPER_STRIDE)
        y_hat = torch.cat([self.latent_codec.decompress([y_s, z_s], y_shape)["y_hat"]
                           for y_s, z_s in zip(strings[0], strings[1])])
        return {"x_hat": self.synthesize(y_hat, lmbda)}

    @torch.no_grad()
    def synthesize(self, y_hat: Tensor, lmbda: float | None = None) -> Tensor:
        """Deterministic decoder-side reconstruction in [0, 1] (fixed thread count) of a coded latent."""
        with fixed_threads():
            return self.g_s(self.unscale_latent(y_hat, lmbda)).clamp_(0, 1)

    def update(self, force: bool = False) -> bool:
        """CompressAI-compatible no-op: coding tables rebuild themselves when weights change."""
        return self.latent_codec.entropy_bottleneck.update(force=force)

    def aux_loss(self) -> Tensor:
        """Quantile loss of the factorized prior; add it to the main loss in the same backward pass."""
        return self.latent_codec.entropy_bottleneck.aux_loss()

    @torch.no_grad()
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
