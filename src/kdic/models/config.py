"""Declarative model configuration: every width, depth and expansion is a value, never code.

A model is ``ModelConfig(transform=TransformConfig(...), entropy=SCCTXConfig(...) | SliceConfig(...))``,
optionally ``variable_rate=VariableRateConfig(...)`` for one set of weights covering a lambda range.
Configs are frozen dataclasses, validated on construction, and round-trip through plain dicts
(``to_dict``/``config_from_dict``) so that a checkpoint can carry its own architecture.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
from dataclasses import dataclass, field
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from ..errors import ConfigError
from ..layers import BLOCK_KINDS, DOWNSAMPLERS, UPSAMPLERS
from .rate import RATE_METHODS

ATTENTION_POSITIONS = ("none", "start", "after-resample", "end")

# Upper bounds: a weights file carries its config, so these cap what a hostile file can make kdic
# build. Each is far above every preset (paper-size ones peak at width 320, depth 8, expansion 4,
# 8 heads, window 8, 5 groups/slices) and still keeps a model description cheap to instantiate.
MAX_CHANNELS = 4096  # any width: stage channels, M, hyper/attention/context widths, head_dim, group size
MAX_DEPTH = 32  # blocks per stage or per hyper transform (Swin-L's deepest stage has 18)
MAX_EXPANSION = 16.0  # FFN expansion / MLP ratio
MAX_HEADS = 64
MAX_WINDOW = 16  # attention window; its non-persistent index buffer grows as window**4
MAX_GROUPS = 16  # leading SCCTX channel groups
MAX_SLICES = 32  # TCM slices (and max_support)
MAX_LMBDA = 1.0  # rate points (a bitstream header refuses more); the paper's range ends at 0.05
MIN_ANCHORS, MAX_ANCHORS = 2, 16  # anchor lambdas of a variable-rate model
MAX_DESCRIPTION = 512  # characters, printable (shown by ``kdic info``)
# A name goes into bitstream headers and names weights files: lowercase, no path separators.
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _in_range(what: str, value: float, low: float, high: float, open_low: bool = False) -> None:
    """``low <= value <= high`` (``low < value`` if ``open_low``); NaN and inf fail too."""
    ok = (low < value if open_low else low <= value) and value <= high
    _require(ok, f"{what} must be {'>' if open_low else '>='} {low:g} and <= {high:g}, got {value}")


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
        _in_range("stage depth", self.depth, 0, MAX_DEPTH)
        _in_range("stage channels", self.channels, 1, MAX_CHANNELS)
        _in_range("FFN expansion", self.expansion, 0, MAX_EXPANSION, open_low=True)
        _in_range("attention heads", self.heads, 1, MAX_HEADS)
        _in_range("attention head_dim", self.head_dim, 1, MAX_CHANNELS)
        _in_range("attention window", self.window, 1, MAX_WINDOW)
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
        _in_range("latent_channels", self.latent_channels, 1, MAX_CHANNELS)
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
        _in_range("hyper_channels", self.hyper_channels, 1, MAX_CHANNELS)
        _in_range("number of leading channel groups", len(self.groups), 1, MAX_GROUPS)
        for g in self.groups:
            _in_range("channel group size", g, 1, MAX_CHANNELS)
        for what in ("hyper_expansion", "context_expansion", "aggregation_expansion"):
            _in_range(what, getattr(self, what), 0, MAX_EXPANSION, open_low=True)
        _in_range("hyper_blocks", self.hyper_blocks, 0, MAX_DEPTH)


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
        for what in ("hyper_channels", "hyper_width", "hyper_head_dim", "attention_width", "attention_head_dim"):
            _in_range(what, getattr(self, what), 1, MAX_CHANNELS)
        for width in self.context_widths:
            _in_range("context width", width, 1, MAX_CHANNELS)
        _in_range("hyper_window", self.hyper_window, 1, MAX_WINDOW)
        _in_range("attention_window", self.attention_window, 1, MAX_WINDOW)
        _in_range("hyper_blocks", self.hyper_blocks, 0, MAX_DEPTH)
        _in_range("slices", self.slices, 1, MAX_SLICES)
        _in_range("max_support", self.max_support, 0, MAX_SLICES)
        _require(self.hyper_width % 2 == 0 and (self.hyper_width // 2) % self.hyper_head_dim == 0,
                 "hyper_width/2 must be divisible by hyper_head_dim")
        _require(self.attention_width % self.attention_head_dim == 0, "attention_width must be divisible by attention_head_dim")


EntropyConfig = Union[SCCTXConfig, SliceConfig]

# Eight anchors, log-spaced from 0.0018 to 0.1 (ratio ~1.78, a little denser than the paper's six
# points 0.0018..0.0483, ratio ~1.9): the paper's range plus about one octave, because the CPU-scale
# presets need more lambda for the same rate. kdic-tiny codes Kodak at 0.20 bpp at lambda 0.0035 and
# 0.50 bpp at 0.025 (results/repro/points/smodi-q*-s0.json), ~1.4x per doubling of lambda, so
# ~0.8 bpp needs lambda ~0.07; 0.1 leaves a margin.
DEFAULT_ANCHORS = (0.0018, 0.0032, 0.0057, 0.0101, 0.0179, 0.0318, 0.0564, 0.1)


@dataclass(frozen=True)
class VariableRateConfig:
    """One set of weights for every lambda in ``[lmbdas[0], lmbdas[-1]]``.

    ``lmbdas`` are the anchors the rate adaptation learns a state for (sorted, positive); any
    lambda between two anchors is interpolated. ``method`` names a ``kdic.models.rate`` module
    (``"gain"``: Cui et al.'s gain units).
    """

    lmbdas: tuple[float, ...] = DEFAULT_ANCHORS
    method: str = "gain"

    def __post_init__(self) -> None:
        _require(self.method in RATE_METHODS, f"unknown rate method {self.method!r}; known: {', '.join(RATE_METHODS)}")
        _in_range("number of anchor lambdas", len(self.lmbdas), MIN_ANCHORS, MAX_ANCHORS)
        for lmbda in self.lmbdas:
            _in_range("anchor lambda", lmbda, 0, MAX_LMBDA, open_low=True)
        _require(all(a < b for a, b in zip(self.lmbdas, self.lmbdas[1:])),
                 f"anchor lambdas must be strictly increasing, got {list(self.lmbdas)}")

    @property
    def range(self) -> tuple[float, float]:
        return self.lmbdas[0], self.lmbdas[-1]

    def spread(self, count: int) -> tuple[float, ...]:
        """``count`` lambdas log-spaced over the range, both ends included (e.g. an RD curve)."""
        low, high = self.range
        if count == 1:
            return (math.sqrt(low * high),)
        return tuple(float(low * (high / low) ** (i / (count - 1))) for i in range(count))


@dataclass(frozen=True)
class ModelConfig:
    """A complete learned image codec: transforms plus entropy model."""

    name: str
    transform: TransformConfig
    entropy: EntropyConfig = field(default_factory=SCCTXConfig)
    description: str = ""
    variable_rate: VariableRateConfig | None = None  # None: one lambda per weights file

    def __post_init__(self) -> None:
        _require(NAME_PATTERN.fullmatch(self.name) is not None,
                 f"model name {self.name[:80]!r} must match {NAME_PATTERN.pattern} (lowercase, no path separators)")
        _require(len(self.description) <= MAX_DESCRIPTION and self.description.isprintable(),
                 f"model description must be printable and at most {MAX_DESCRIPTION} characters")
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


# Optional parts added after weights files were shipped: left out of ``to_dict`` while unset, so a
# config that does not use them describes itself exactly as it did before they existed.
OPTIONAL_FIELDS = ("variable_rate",)


def to_dict(config: Any) -> dict[str, Any]:
    """Plain-JSON form of a config (tuples become lists; unset optional parts left out)."""
    data = dataclasses.asdict(config)
    if isinstance(config, ModelConfig):
        for name in OPTIONAL_FIELDS:
            if data[name] is None:
                del data[name]
    return data


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, where)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in get_args(tp):
            return None
        options = [t for t in get_args(tp) if dataclasses.is_dataclass(t)]
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        if len(options) == 1:  # an optional part, not a choice of kinds
            return _build(options[0], value, where)
        kinds = {get_type_hints(t)["kind"].__args__[0]: t for t in options}
        kind = value.get("kind")
        if not isinstance(kind, str) or kind not in kinds:
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
