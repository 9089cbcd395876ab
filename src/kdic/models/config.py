"""Declarative model configuration: every width, depth and expansion is a value, never code.

A model is ``ModelConfig(transform=TransformConfig(...), entropy=SCCTXConfig(...) | SliceConfig(...))``.
Configs are frozen dataclasses, validated on construction, and round-trip through plain dicts
(``to_dict``/``config_from_dict``) so that a checkpoint can carry its own architecture.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from ..errors import ConfigError
from ..layers import BLOCK_KINDS, DOWNSAMPLERS, UPSAMPLERS

ATTENTION_POSITIONS = ("none", "start", "after-resample", "end")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


@dataclass(frozen=True)
class StageConfig:
    """One transform stage: a factor-2 resampler followed by ``depth`` blocks of one kind.

    ``channels`` is the stage's feature width; ``expansion`` the FFN expansion (MLP ratio for
    TCM). ``heads`` applies to S2C attention, ``head_dim``/``window`` to attention blocks, and
    ``attention`` places an extra ELIC attention block at the start, after the resampler, or at
    the end of the stage.
    """

    block: str
    depth: int
    channels: int
    expansion: float = 4.0
    heads: int = 8
    head_dim: int = 32
    window: int = 8
    attention: str = "none"

    def __post_init__(self) -> None:
        _require(self.block in BLOCK_KINDS, f"unknown block kind {self.block!r}; known: {', '.join(BLOCK_KINDS)}")
        _require(self.depth >= 0, f"stage depth must be >= 0, got {self.depth}")
        _require(self.channels > 0, f"stage channels must be > 0, got {self.channels}")
        _require(self.expansion > 0, f"FFN expansion must be > 0, got {self.expansion}")
        _require(self.window > 0, f"attention window must be > 0, got {self.window}")
        _require(self.attention in ATTENTION_POSITIONS, f"attention must be one of {ATTENTION_POSITIONS}")
        if self.block == "s2c-attn":
            _require(self.channels % self.heads == 0, f"s2c-attn width {self.channels} is not divisible by {self.heads} heads")
        if self.block == "tcm":
            _require(self.channels % 2 == 0, f"tcm stage width {self.channels} must be even")
            _require((self.channels // 2) % self.head_dim == 0,
                     f"tcm branch width {self.channels // 2} is not divisible by head_dim {self.head_dim}")


@dataclass(frozen=True)
class TransformConfig:
    """Analysis (stages 1-3) and synthesis (stages 4-6) transforms.

    Encoder stage k: ``down`` resampler to its width, blocks; stage 3 ends with the
    ``latent_projection`` to ``latent_channels`` (y). Decoder stage k: ``up`` resampler, blocks;
    stage 6 ends with the ``image_projection`` to RGB.
    """

    latent_channels: int
    encoder: tuple[StageConfig, StageConfig, StageConfig]
    decoder: tuple[StageConfig, StageConfig, StageConfig]
    down: str = "conv3x3"
    up: str = "subpel3x3"
    latent_projection: str = "conv3x3"
    image_projection: str = "subpel3x3"

    def __post_init__(self) -> None:
        _require(self.latent_channels > 0, f"latent_channels must be > 0, got {self.latent_channels}")
        _require(len(self.encoder) == 3 and len(self.decoder) == 3, "a transform has exactly 3 encoder and 3 decoder stages")
        _require(self.down in DOWNSAMPLERS and self.latent_projection in DOWNSAMPLERS,
                 f"down-samplers must be one of {DOWNSAMPLERS}")
        _require(self.up in UPSAMPLERS and self.image_projection in UPSAMPLERS, f"up-samplers must be one of {UPSAMPLERS}")

    @property
    def stages(self) -> tuple[StageConfig, ...]:
        """All six stages in SMoDi order (1-3 encoder, 4-6 decoder)."""
        return (*self.encoder, *self.decoder)


@dataclass(frozen=True)
class SCCTXConfig:
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

    def __post_init__(self) -> None:
        _require(self.style in ("s2c", "elic"), f"SCCTX style must be 's2c' or 'elic', got {self.style!r}")
        _require(self.hyper_channels > 0, "hyper_channels must be > 0")
        _require(len(self.groups) >= 1 and all(g > 0 for g in self.groups), "channel groups must be positive")
        _require(min(self.hyper_expansion, self.context_expansion, self.aggregation_expansion) > 0, "expansions must be > 0")


@dataclass(frozen=True)
class SliceConfig:
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
        _require(self.slices > 0 and self.max_support >= 0, "slices must be > 0 and max_support >= 0")
        _require(self.hyper_width % 2 == 0 and (self.hyper_width // 2) % self.hyper_head_dim == 0,
                 "hyper_width/2 must be divisible by hyper_head_dim")
        _require(self.attention_width % self.attention_head_dim == 0, "attention_width must be divisible by attention_head_dim")


EntropyConfig = Union[SCCTXConfig, SliceConfig]


@dataclass(frozen=True)
class ModelConfig:
    """A complete learned image codec: transforms plus entropy model."""

    name: str
    transform: TransformConfig
    entropy: EntropyConfig = field(default_factory=SCCTXConfig)
    description: str = ""

    def __post_init__(self) -> None:
        m = self.transform.latent_channels
        if isinstance(self.entropy, SCCTXConfig):
            lead = sum(self.entropy.groups)
            _require(m > lead, f"latent channels M={m} must exceed the sum of the leading channel groups "
                               f"{list(self.entropy.groups)} = {lead} (the last group takes M - {lead})")
        else:
            _require(m % self.entropy.slices == 0, f"latent channels M={m} must be divisible by {self.entropy.slices} slices")

    @property
    def channel_groups(self) -> tuple[int, ...]:
        """Full SCCTX group sizes including the remainder group."""
        assert isinstance(self.entropy, SCCTXConfig)
        return (*self.entropy.groups, self.transform.latent_channels - sum(self.entropy.groups))


def to_dict(config: Any) -> dict[str, Any]:
    """Plain-JSON form of a config (tuples become lists)."""
    return dataclasses.asdict(config)


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, where)
    if origin is Union:
        options = [t for t in get_args(tp) if dataclasses.is_dataclass(t)]
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        kinds = {get_type_hints(t)["kind"].__args__[0]: t for t in options}
        kind = value.get("kind")
        if kind not in kinds:
            raise ConfigError(f"{where}.kind: expected one of {sorted(kinds)}, got {kind!r}")
        return _build(kinds[kind], value, where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        args = get_args(tp)
        item_types = [args[0]] * len(value) if len(args) == 2 and args[1] is Ellipsis else list(args)
        if len(item_types) != len(value):
            raise ConfigError(f"{where}: expected {len(item_types)} items, got {len(value)}")
        return tuple(_convert(t, v, f"{where}[{i}]") for i, (t, v) in enumerate(zip(item_types, value)))
    if origin is Literal:
        if value not in get_args(tp):
            raise ConfigError(f"{where}: expected one of {get_args(tp)}, got {value!r}")
        return value
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp in (int, str) and isinstance(value, tp) and not isinstance(value, bool):
        return value
    raise ConfigError(f"{where}: expected {getattr(tp, '__name__', tp)}, got {value!r}")


def _build(cls: Any, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)}")
    kwargs = {k: _convert(hints[k], v, f"{where}.{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:  # missing required fields
        raise ConfigError(f"{where}: {exc}") from None


def config_from_dict(data: dict[str, Any]) -> ModelConfig:
    """Rebuild and validate a ``ModelConfig`` from its ``to_dict`` form."""
    return _build(ModelConfig, data, "config")
