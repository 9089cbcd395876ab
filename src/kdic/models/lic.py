"""The staged learned image codec: g_a (encoder stages), latent codec, g_s (decoder stages).

Public interface follows CompressAI (``forward`` -> ``x_hat`` + ``likelihoods``, ``aux_loss``) so
LIC users feel at home; every stage is addressable by its SMoDi index so that it can be frozen,
swapped or distilled on its own.
"""

from __future__ import annotations

from typing import Literal, cast

import torch
from torch import Tensor, nn

from ..entropy.latent import NEWEST, ParameterPath
from ..errors import ConfigError
from ..layers import BLOCKS, RESAMPLERS, AttentionBlock
from .config import ModelConfig, StageConfig, TransformConfig
from .rate import RATE_METHODS, GainUnits, Modulation


class Stage(nn.Module):
    """One SMoDi stage: resampler and blocks (either order), optional projection (the last stage of a
    transform), optional ELIC attention block."""

    def __init__(self, config: StageConfig, in_ch: int, resample: str, projection: tuple[str, int] | None) -> None:
        super().__init__()
        self.attention_position = config.attention
        self.blocks_first = config.blocks_first
        self.resample = RESAMPLERS[resample].build(in_ch, config.channels)
        width = in_ch if config.blocks_first else config.channels
        kind = BLOCKS[config.block]
        self.blocks = nn.Sequential(*(kind.build(width, config, i) for i in range(config.depth)))
        self.projection = RESAMPLERS[projection[0]].build(config.channels, projection[1]) if projection else None
        out_ch = projection[1] if projection else config.channels
        attention_width = {"start": in_ch, "after-resample": config.channels, "end": out_ch}.get(config.attention)
        self.attention = AttentionBlock(attention_width) if attention_width else None

    def forward(self, x: Tensor) -> Tensor:
        # __init__ builds the attention block for every position but "none"
        if self.attention_position == "start":
            assert self.attention is not None
            x = self.attention(x)
        if self.blocks_first:
            x = self.blocks(x)
        x = self.resample(x)
        if self.attention_position == "after-resample":
            assert self.attention is not None
            x = self.attention(x)
        if not self.blocks_first:
            x = self.blocks(x)
        if self.projection is not None:
            x = self.projection(x)
        if self.attention_position == "end":
            assert self.attention is not None
            x = self.attention(x)
        return x


class Transform(nn.Module):
    """Stages applied in order; ``forward_stages`` also returns every stage output (as the stage gave
    it, before a rate method's ``modulate`` maps it to the next stage's input)."""

    def __init__(self, stages: list[Stage]) -> None:
        super().__init__()
        self.stages = nn.ModuleList(stages)

    def forward_stages(self, x: Tensor, modulate: Modulation | None = None) -> list[Tensor]:
        outputs = []
        for i, stage in enumerate(self.stages):
            if i and modulate is not None:
                x = modulate(i - 1, x)
            x = stage(x)
            outputs.append(x)
        return outputs

    def forward(self, x: Tensor, modulate: Modulation | None = None) -> Tensor:
        return self.forward_stages(x, modulate)[-1]


def build_transform(config: TransformConfig, encoder: bool) -> Transform:
    """g_a (``encoder``) or g_s of ``config``; the last stage carries the projection, if any."""
    stages = config.encoder if encoder else config.decoder
    first = 0 if encoder else len(config.encoder)
    name, width = (config.latent_projection, config.latent_channels) if encoder else (config.image_projection, 3)
    projection = (name, width) if name is not None else None
    widths = config.stage_widths[first : first + len(stages)]
    return Transform(
        [
            Stage(
                cfg,
                widths[i][0],
                config.resampler_of(first + i + 1),
                projection if i == len(stages) - 1 else None,
            )
            for i, cfg in enumerate(stages)
        ]
    )


def set_padding(
    model: nn.Module, mode: Literal["zeros", "reflect", "replicate", "circular"], checkerboard: list[str]
) -> None:
    """Pad every padded convolution by ``mode``; those under ``checkerboard`` by reflection (a replicated
    border row would put anchors where the pattern has none). Transposed convolutions pad by zeros only
    in torch; the presets that use ``replicate`` have none."""
    for name, module in model.named_modules():
        if type(module) is nn.Conv2d and any(module.padding):
            module.padding_mode = "reflect" if name.startswith(tuple(checkerboard)) else mode
        elif isinstance(module, nn.ConvTranspose2d):
            raise ConfigError(f"padding {mode!r} needs convolutions; {name} is a transposed convolution")


class LearnedImageCodec(nn.Module):
    """Learned image codec built from a ``ModelConfig``.

    ``forward(x)`` expects x in [0, 1] with height and width multiples of ``padding_multiple`` (the
    transform's stride times the family's ``latent_multiple``; 64 for every preset)
    and returns ``{"x_hat", "likelihoods": {"y", "z"}}``. A variable-rate model (config with
    ``variable_rate``) has a ``rate`` module and needs ``lmbda`` in ``forward``, ``compress`` and
    ``decompress``; a fixed-rate one codes at the lambda it was trained for and takes none.
    """

    rate: GainUnits | None

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.lmbda: float | None = None  # set by kdic.load from the weights metadata
        t = config.transform
        self.g_a = build_transform(t, encoder=True)
        self.g_s = build_transform(t, encoder=False)
        self.latent_codec = config.family.build(config.entropy, t.latent_channels)
        self.latent_stride = t.stride  # pixels per latent unit
        self.padding_multiple = t.stride * config.family.latent_multiple
        if config.padding != "zeros":
            set_padding(self, config.padding, [f"latent_codec.{name}" for name in config.family.checkerboard])
        vr = config.variable_rate
        self.rate = RATE_METHODS[vr.method].for_transform(t, vr.lmbdas) if vr is not None else None

    @property
    def variable_rate(self) -> bool:
        return self.rate is not None

    def check_lmbda(self, lmbda: float | None) -> None:
        """A variable-rate model needs a lambda in its range; a fixed-rate one refuses any."""
        if self.rate is None:
            if lmbda is not None:
                raise ConfigError(
                    f"model {self.config.name!r} is fixed-rate (trained for lambda {self.lmbda}); it takes no lambda"
                )
            return
        if lmbda is None:
            low, high = self.rate.range
            raise ConfigError(f"model {self.config.name!r} is variable-rate: pass a lambda from {low:g} to {high:g}")
        self.rate.check(lmbda)

    def scale_latent(self, y: Tensor, lmbda: float | None) -> Tensor:
        """y as the latent codec codes it (unchanged in a fixed-rate model)."""
        self.check_lmbda(lmbda)
        if self.rate is None:
            return y
        assert lmbda is not None  # check_lmbda refuses None for a variable-rate model
        return self.rate.scale_latent(y, lmbda)

    def unscale_latent(self, y_hat: Tensor, lmbda: float | None) -> Tensor:
        """Decoded latent as g_s reads it (unchanged in a fixed-rate model)."""
        self.check_lmbda(lmbda)
        if self.rate is None:
            return y_hat
        assert lmbda is not None  # check_lmbda refuses None for a variable-rate model
        return self.rate.unscale_latent(y_hat, lmbda)

    def modulation(self, decoder: bool, lmbda: float | None) -> Modulation | None:
        """What the rate method does between the stages of g_s (``decoder``) or g_a at ``lmbda``."""
        return None if self.rate is None or lmbda is None else self.rate.modulation(decoder, lmbda)

    def analyze_stages(self, x: Tensor, lmbda: float | None = None) -> list[Tensor]:
        """Every g_a stage output at ``lmbda``; the last is y before the rate scaling."""
        return self.g_a.forward_stages(x, self.modulation(False, lmbda))

    def analyze(self, x: Tensor, lmbda: float | None = None) -> Tensor:
        """y as the latent codec codes it at ``lmbda``: g_a (conditioned on it, if the rate method is),
        then the rate scaling."""
        return self.scale_latent(self.analyze_stages(x, lmbda)[-1], lmbda)

    def reconstruct_stages(self, y_hat: Tensor, lmbda: float | None = None) -> list[Tensor]:
        """Every g_s stage output of a coded latent at ``lmbda``; the last is x_hat, unclamped."""
        return self.g_s.forward_stages(self.unscale_latent(y_hat, lmbda), self.modulation(True, lmbda))

    def reconstruct(self, y_hat: Tensor, lmbda: float | None = None) -> Tensor:
        """x_hat of a coded latent, unclamped and differentiable (training and latent refinement)."""
        return self.reconstruct_stages(y_hat, lmbda)[-1]

    @property
    def stage_count(self) -> int:
        return len(self.g_a.stages) + len(self.g_s.stages)

    def stage_path(self, stage_index: int) -> str:
        """Module path of SMoDi stage 1..E+D (1..E encoder, then decoder) inside this model."""
        if not 1 <= stage_index <= self.stage_count:
            raise IndexError(f"stage_index must be in 1..{self.stage_count}, got {stage_index}")
        encoder = len(self.g_a.stages)
        return f"g_a.stages.{stage_index - 1}" if stage_index <= encoder else f"g_s.stages.{stage_index - 1 - encoder}"

    def stage(self, stage_index: int) -> Stage:
        """SMoDi stage 1..E+D."""
        return cast(Stage, self.get_submodule(self.stage_path(stage_index)))

    def check_input(self, x: Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected a (B, 3, H, W) image batch, got shape {tuple(x.shape)}")
        h, w = x.shape[-2:]
        if h % self.padding_multiple or w % self.padding_multiple:
            raise ValueError(
                f"height and width must be multiples of {self.padding_multiple}, got {h}x{w}; "
                "pad the image first (kdic.codec pads and crops automatically)"
            )

    def forward(self, x: Tensor, lmbda: float | None = None) -> dict:
        self.check_input(x)
        self.check_lmbda(lmbda)
        latent = self.latent_codec(self.analyze(x, lmbda))
        return {"x_hat": self.reconstruct(latent["y_hat"], lmbda), "likelihoods": latent["likelihoods"]}

    @torch.no_grad()
    def compress(self, x: Tensor, lmbda: float | None = None) -> dict:
        """Entropy-code a batch: ``strings`` = one list per stream of the family (y, z: one string per
        image), ``shape`` = z size;
        ``y_hat`` is the coded latent (before the inverse gain of a variable-rate model)."""
        self.check_input(x)
        self.check_lmbda(lmbda)
        y = self.analyze(x, lmbda)
        coded = [self.compress_latent(y[i : i + 1]) for i in range(x.shape[0])]
        multiple = self.config.family.latent_multiple
        return {
            "strings": [list(streams) for streams in zip(*(c["strings"] for c in coded))],
            "shape": (y.shape[-2] // multiple, y.shape[-1] // multiple),
            "y_hat": torch.cat([c["y_hat"] for c in coded]),
        }

    @torch.no_grad()
    def compress_latent(self, y: Tensor) -> dict:
        """Entropy-code one (already rate-scaled) latent: ``strings`` in the family's stream order,
        ``y_hat`` as the decoder will see it, ``symbols`` coded (the newest format's parameter path)."""
        return self.latent_codec.compress(y)

    @torch.no_grad()
    def latent_likelihoods(self, y: Tensor) -> dict[str, Tensor]:
        """Eval-mode likelihoods of one (rate-scaled) latent: what coding it should cost, in the estimate."""
        return self.latent_codec(y)["likelihoods"]

    @torch.no_grad()
    def decompress_latent(
        self, strings: list[bytes], y_shape: tuple[int, int, int, int], path: ParameterPath = NEWEST
    ) -> dict:
        """Inverse of ``compress_latent``; ValueError on streams that cannot be parsed or are not used up.
        ``path`` is how the file's format computes the entropy parameters (``kdic.codec.bitstream``)."""
        return self.latent_codec.decompress(strings, y_shape, path)

    @torch.no_grad()
    def decompress(self, strings: list[list[bytes]], shape: tuple[int, int], lmbda: float | None = None) -> dict:
        """Inverse of ``compress``: the same latent on every machine (format 4's exact parameter path)."""
        self.check_lmbda(lmbda)
        multiple = self.config.family.latent_multiple
        y_shape = (1, self.config.transform.latent_channels, shape[0] * multiple, shape[1] * multiple)
        y_hat = torch.cat([self.decompress_latent(list(streams), y_shape)["y_hat"] for streams in zip(*strings)])
        return {"x_hat": self.synthesize(y_hat, lmbda)}

    @torch.no_grad()
    def synthesize(self, y_hat: Tensor, lmbda: float | None = None) -> Tensor:
        """Decoder-side reconstruction in [0, 1] of a coded latent, on every thread: float, so the same
        pixels for the same machine and thread count, and within a level elsewhere (docs/bitstream.md)."""
        return self.reconstruct(y_hat, lmbda).clamp_(0, 1)

    def update(self, force: bool = False) -> bool:
        """CompressAI-compatible no-op: coding tables rebuild themselves when weights change."""
        return self.latent_codec.entropy_bottleneck.update(force=force)

    def aux_loss(self) -> Tensor:
        """Quantile loss of the factorized prior; add it to the main loss in the same backward pass."""
        return self.latent_codec.entropy_bottleneck.aux_loss()

    def aux_parameters(self) -> list[nn.Parameter]:
        """The parameters only ``aux_loss`` trains (an optimizer group of their own, with its own lr)."""
        return [self.latent_codec.entropy_bottleneck.quantiles]

    @torch.no_grad()
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
