"""Registry of named, declarative model presets (the paper's model zoo plus CPU-sized ones).

Each preset is a ``ModelConfig`` value. ``PAPER_COMPLEXITY`` holds the figures the paper reports
(params in M, "FLOPs" = thop MACs at 1x3x1024x2048 in T) so that ``kdic models`` can show the
deviation of each reconstruction; ``docs/model_zoo.md`` explains every choice.
"""

from __future__ import annotations

from dataclasses import replace

from ..entropy import SCCTXConfig, SliceConfig
from ..errors import ConfigError
from .config import MAX_DESCRIPTION, ModelConfig, StageConfig, TransformConfig, VariableRateConfig


def mirrored(encoder: tuple[StageConfig, ...], latent_channels: int, **resamplers: str) -> TransformConfig:
    """Transform whose decoder mirrors the encoder (stage 4 = stage 3, 5 = 2, 6 = 1)."""
    return TransformConfig(latent_channels, encoder, tuple(reversed(encoder)), **resamplers)


def s2c_transform(
    channels: tuple[int, int, int],
    depths: tuple[int, int, int],
    kinds: tuple[str, str, str],
    expansions: tuple[float, float, float],
    latent_channels: int,
) -> TransformConfig:
    """S2CFormer skeleton: conv3x3/s2 down-samplers, sub-pixel up-samplers, mirrored stages."""
    return mirrored(
        tuple(StageConfig(k, d, c, e) for k, d, c, e in zip(kinds, depths, channels, expansions)),
        latent_channels,
    )


def tcm_transform(
    widths: tuple[int, int, int],
    depths: tuple[int, int, int],
    mlp_ratios: tuple[float, float, float],
    head_dims: tuple[int, int, int] = (8, 16, 32),
    latent_channels: int = 320,
) -> TransformConfig:
    """TCM skeleton: residual GDN down-samplers, residual IGDN sub-pixel up-samplers; width = 2N."""
    encoder = tuple(
        StageConfig("tcm", d, c, r, head_dim=h) for c, d, r, h in zip(widths, depths, mlp_ratios, head_dims)
    )
    return mirrored(
        encoder,
        latent_channels,
        down="rbws",
        up="rbu",
        latent_projection="conv3x3",
        image_projection="subpel3x3",
    )


HYBRID = ("s2c-conv", "s2c-attn", "s2c-attn")
ALL_CONV = ("s2c-conv", "s2c-conv", "s2c-conv")

_PRESETS: dict[str, ModelConfig] = {}
PAPER_COMPLEXITY: dict[str, tuple[float, float]] = {
    "s2c-hybrid": (79.83, 4.17),
    "kdic": (47.61, 1.80),
    "s2c-conv": (66.60, 3.13),
    "conv-kd": (42.42, 1.35),
    "tcm-l": (75.89, 3.74),
    "tcm-kd": (68.14, 1.84),
    "elic": (33.29, 1.74),
}
TEACHER_OF: dict[str, str] = {
    "kdic": "s2c-hybrid",
    "conv-kd": "s2c-conv",
    "tcm-kd": "tcm-l",
    "kdic-tiny": "s2c-hybrid-tiny",
}


def register(config: ModelConfig) -> ModelConfig:
    """Add a preset under ``config.name``."""
    if config.name in _PRESETS:
        raise ConfigError(f"preset {config.name!r} is already registered")
    _PRESETS[config.name] = config
    return config


def get_config(name: str) -> ModelConfig:
    """Preset by name, with a one-line error listing the known names."""
    try:
        return _PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown model preset {name!r}; known: {', '.join(available())}") from None


def available() -> list[str]:
    return list(_PRESETS)


SCCTX_TEACHER = SCCTXConfig(
    hyper_channels=192, style="s2c", hyper_expansion=2, context_expansion=4, aggregation_expansion=4
)
SCCTX_STUDENT = replace(SCCTX_TEACHER, context_expansion=2, aggregation_expansion=2)

register(
    ModelConfig(
        "s2c-hybrid",
        s2c_transform((192, 192, 192), (3, 8, 8), HYBRID, (4, 4, 4), 320),
        SCCTX_TEACHER,
        "S2CFormer-Hybrid teacher: S2C-Conv stage 1, S2C-Attention stages 2-3, enhanced SCCTX",
    )
)
register(
    ModelConfig(
        "kdic",
        s2c_transform((128, 192, 192), (3, 5, 5), HYBRID, (3, 2, 2), 320),
        SCCTX_STUDENT,
        "KDIC student: teacher-guided pruning of s2c-hybrid (C1 192->128, L2/L3 8->5, FFN expansion 4->2/3)",
    )
)
register(
    ModelConfig(
        "s2c-conv",
        s2c_transform((192, 192, 192), (3, 3, 3), ALL_CONV, (4, 4, 4), 320),
        SCCTX_TEACHER,
        "S2CFormer-Conv teacher: S2C-Conv blocks in every stage",
    )
)
register(
    ModelConfig(
        "conv-kd",
        s2c_transform((128, 192, 192), (3, 2, 2), ALL_CONV, (3, 2, 2), 320),
        SCCTX_STUDENT,
        "Conv-KD student of s2c-conv (C1 192->128, L2/L3 3->2, FFN expansion 4->2/3)",
    )
)
register(
    ModelConfig(
        "tcm-l",
        tcm_transform((256, 256, 256), (2, 2, 2), (4, 4, 4)),
        SliceConfig(),
        "TCM-L (Liu et al. 2023), N=128: mixed transformer-CNN blocks, 5-slice channel-wise entropy model",
    )
)
register(
    ModelConfig(
        "tcm-kd",
        tcm_transform((128, 256, 256), (2, 2, 1), (4, 2, 2)),
        SliceConfig(),
        "TCM-KD student of tcm-l (stage-1/6 width 256->128, stage-3/4 depth 2->1, MLP ratio 4->2 in stages 2-5)",
    )
)
_ELIC_STAGE = StageConfig("elic-rbb", 3, 192)
register(
    ModelConfig(
        "elic",
        TransformConfig(
            320,
            encoder=(_ELIC_STAGE, replace(_ELIC_STAGE, attention="end"), replace(_ELIC_STAGE, attention="end")),
            decoder=(
                replace(_ELIC_STAGE, attention="start"),
                replace(_ELIC_STAGE, attention="after-resample"),
                _ELIC_STAGE,
            ),
            down="conv5x5",
            up="deconv5x5",
            latent_projection="conv5x5",
            image_projection="deconv5x5",
        ),
        SCCTXConfig(hyper_channels=192, style="elic"),
        "ELIC (He et al. 2022) as in CompressAI's Elic2022Official: reference for the SCCTX entropy model",
    )
)

TINY_GROUPS = (6, 6, 12, 24)  # leading groups; with M=96 the last group holds 48 channels


def tiny_transform(
    stage1_channels: int, depths: tuple[int, int, int], expansions: tuple[float, float, float]
) -> TransformConfig:
    """CPU-sized S2C-Hybrid skeleton: width 32, 4 attention heads, M=96."""
    encoder = tuple(
        StageConfig(k, d, c, e, heads=4) for k, d, c, e in zip(HYBRID, depths, (stage1_channels, 32, 32), expansions)
    )
    return mirrored(encoder, 96)


SCCTX_TINY_TEACHER = SCCTXConfig(
    hyper_channels=32,
    groups=TINY_GROUPS,
    style="s2c",
    hyper_expansion=2,
    context_expansion=4,
    aggregation_expansion=4,
    hyper_blocks=1,
)
register(
    ModelConfig(
        "s2c-hybrid-tiny",
        tiny_transform(32, (1, 3, 3), (4, 4, 4)),
        SCCTX_TINY_TEACHER,
        "CPU-sized S2C-Hybrid teacher with the paper's layout (conv stage 1, attention stages 2-3)",
    )
)
register(
    ModelConfig(
        "kdic-tiny",
        tiny_transform(16, (1, 2, 2), (3, 2, 2)),
        replace(SCCTX_TINY_TEACHER, context_expansion=2, aggregation_expansion=2),
        "CPU-sized KDIC student of s2c-hybrid-tiny, pruned by the paper's rule",
    )
)


def with_variable_rate(
    config: ModelConfig, lmbdas: tuple[float, ...] | None = None, method: str | None = None
) -> ModelConfig:
    """The variable-rate variant of a model (named ``<name>-vr``): same transforms and entropy model,
    plus a rate method (default: the model's, else gain units) over ``lmbdas`` (default: the model's,
    else ``DEFAULT_ANCHORS``)."""
    vr = config.variable_rate or VariableRateConfig()
    vr = replace(vr, lmbdas=tuple(lmbdas) if lmbdas else vr.lmbdas, method=method or vr.method)
    name = config.name if config.variable_rate is not None else f"{config.name}-vr"
    description = (
        config.description
        if config.variable_rate is not None
        else (f"{config.description} (variable rate)" if config.description else "variable rate")
    )
    return replace(config, name=name, description=description[:MAX_DESCRIPTION], variable_rate=vr)
