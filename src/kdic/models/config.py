"""Declarative model configuration: every width, depth and expansion is a value, never code.

A model is ``ModelConfig(transform=TransformConfig(...), entropy=<a registered family's config>)``,
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

from ..entropy import LATENT_CODECS, LatentCodecConfig, SCCTXConfig
from ..errors import ConfigError
from ..layers import BLOCKS, RESAMPLERS, resamplers
from ..limits import (  # noqa: F401  (re-exported: configs and checkpoints are validated against them)
    ADDED,
    MAX_CHANNELS,
    MAX_DEPTH,
    MAX_EXPANSION,
    MAX_HEADS,
    MAX_STAGES,
    MAX_WINDOW,
    in_range,
    require,
)
from .rate import RATE_METHODS

ATTENTION_POSITIONS = ("none", "start", "after-resample", "end")
MAX_LMBDA = 1.0  # rate points (a bitstream header refuses more); the paper's range ends at 0.05
MIN_ANCHORS, MAX_ANCHORS = 2, 16  # anchor lambdas of a variable-rate model
MAX_DESCRIPTION = 512  # characters, printable (shown by ``kdic info``)
# A name goes into bitstream headers and names weights files: lowercase, no path separators.
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


@dataclass(frozen=True)
class StageConfig:
    """One transform stage: a resampler and ``depth`` blocks of one kind, at width ``channels``.

    The blocks follow the resampler (``blocks_first=False``) and run at the stage's width, or
    precede it (cheng2020's synthesis) and run at the stage's input width. ``resample`` names the
    stage's own resampler (default: the transform's ``down``/``up``). ``expansion`` is the FFN
    expansion (MLP ratio for TCM); ``heads`` applies to S2C attention, ``head_dim``/``window`` to
    attention blocks, and ``attention`` places an extra ELIC attention block at the start, after
    the resampler, or at the end of the stage.
    """

    block: str
    depth: int
    channels: int
    expansion: float = 4.0
    heads: int = 8
    head_dim: int = 32
    window: int = 8
    attention: str = "none"
    resample: str | None = field(default=None, metadata=ADDED)
    blocks_first: bool = field(default=False, metadata=ADDED)

    def __post_init__(self) -> None:
        require(self.block in BLOCKS, f"unknown block kind {self.block!r}; known: {', '.join(BLOCKS)}")
        in_range("stage depth", self.depth, 0, MAX_DEPTH)
        in_range("stage channels", self.channels, 1, MAX_CHANNELS)
        in_range("FFN expansion", self.expansion, 0, MAX_EXPANSION, open_low=True)
        in_range("attention heads", self.heads, 1, MAX_HEADS)
        in_range("attention head_dim", self.head_dim, 1, MAX_CHANNELS)
        in_range("attention window", self.window, 1, MAX_WINDOW)
        require(self.attention in ATTENTION_POSITIONS, f"attention must be one of {ATTENTION_POSITIONS}")
        require(
            self.resample is None or self.resample in RESAMPLERS,
            f"unknown resampler {self.resample!r}; known: {', '.join(RESAMPLERS)}",
        )
        if not self.blocks_first:
            self.check_blocks(self.channels)

    def check_blocks(self, width: int) -> None:
        """The block kind accepts this stage's settings at the width its blocks run at."""
        if self.depth:
            problem = BLOCKS[self.block].check(width, self)
            require(problem is None, str(problem))


def _check_resampler(name: str, direction: str) -> None:
    require(
        name in RESAMPLERS and RESAMPLERS[name].direction == direction,
        f"{direction}-samplers must be one of {resamplers(direction)}, got {name!r}",
    )


@dataclass(frozen=True)
class TransformConfig:
    """Analysis (``encoder`` stages, in order) and synthesis (``decoder`` stages) transforms.

    Encoder stage k: resampler to its width, blocks; the last stage ends with the
    ``latent_projection`` to ``latent_channels`` (y), or, when that is None, has that width
    itself. Decoder stage k likewise, the last one ending with the ``image_projection`` to RGB
    (or being 3 wide). SMoDi numbers the stages 1..E (encoder) then E+1..E+D (decoder).
    """

    latent_channels: int
    encoder: tuple[StageConfig, ...]
    decoder: tuple[StageConfig, ...]
    down: str = "conv3x3"
    up: str = "subpel3x3"
    latent_projection: str | None = "conv3x3"
    image_projection: str | None = "subpel3x3"

    def __post_init__(self) -> None:
        in_range("latent_channels", self.latent_channels, 1, MAX_CHANNELS)
        in_range("number of encoder stages", len(self.encoder), 1, MAX_STAGES)
        in_range("number of decoder stages", len(self.decoder), 1, MAX_STAGES)
        for direction, default, projection, stages in (
            ("down", self.down, self.latent_projection, self.encoder),
            ("up", self.up, self.image_projection, self.decoder),
        ):
            for name in (default, projection, *(s.resample for s in stages)):
                if name is not None:
                    _check_resampler(name, direction)
        require(
            self.latent_projection is not None or self.encoder[-1].channels == self.latent_channels,
            "without a latent_projection the last encoder stage must be latent_channels wide",
        )
        require(
            self.image_projection is not None or self.decoder[-1].channels == 3,
            "without an image_projection the last decoder stage must be 3 wide",
        )
        for stage, width in zip(self.stages, self.stage_widths):
            if stage.blocks_first:
                stage.check_blocks(width[0])

    @property
    def stages(self) -> tuple[StageConfig, ...]:
        """All stages in SMoDi order (encoder, then decoder)."""
        return (*self.encoder, *self.decoder)

    @property
    def stage_widths(self) -> list[tuple[int, int]]:
        """(input, output) channels of every stage, projections included."""
        enc = [s.channels for s in self.encoder]
        dec = [s.channels for s in self.decoder]
        ins = [3, *enc[:-1], self.latent_channels, *dec[:-1]]
        outs = [*enc[:-1], self.latent_channels, *dec[:-1], 3]
        return list(zip(ins, outs))

    def resampler_of(self, stage_index: int) -> str:
        """Resampler name of SMoDi stage ``stage_index`` (1-based)."""
        stage = self.stages[stage_index - 1]
        return stage.resample or (self.down if stage_index <= len(self.encoder) else self.up)

    @property
    def stride(self) -> int:
        """Pixels per latent unit: the product of the analysis resampling factors."""
        names = [self.resampler_of(k) for k in range(1, len(self.encoder) + 1)]
        names += [self.latent_projection] if self.latent_projection else []
        return math.prod(RESAMPLERS[n].factor for n in names)


# Eleven anchors, log-spaced (ratio ~1.78) from 0.000569 to 0.178: the paper's range 0.0018..0.0483
# plus about one octave above, because the CPU-scale presets need more lambda for the same rate
# (~0.8 bpp on Kodak needs lambda ~0.07 for kdic-tiny), and two anchors below, which reach ~0.1 bpp
# (docs/variable_rate.md, "Extending the range"). The shipped models are trained over these.
DEFAULT_ANCHORS = (0.000569, 0.00101, 0.0018, 0.0032, 0.0057, 0.0101, 0.0179, 0.0318, 0.0564, 0.1, 0.178)


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
        require(self.method in RATE_METHODS, f"unknown rate method {self.method!r}; known: {', '.join(RATE_METHODS)}")
        in_range("number of anchor lambdas", len(self.lmbdas), MIN_ANCHORS, MAX_ANCHORS)
        for lmbda in self.lmbdas:
            in_range("anchor lambda", lmbda, 0, MAX_LMBDA, open_low=True)
        require(
            all(a < b for a, b in zip(self.lmbdas, self.lmbdas[1:])),
            f"anchor lambdas must be strictly increasing, got {list(self.lmbdas)}",
        )

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
    """A complete learned image codec: transforms plus an entropy model of a registered family."""

    name: str
    transform: TransformConfig
    entropy: LatentCodecConfig = field(default_factory=SCCTXConfig)
    description: str = ""
    variable_rate: VariableRateConfig | None = field(default=None, metadata=ADDED)  # None: one lambda per file
    # How convolutions pad: "zeros" (CompressAI's, every shipped preset's) or "replicate", which keeps a
    # flat image flat through every layer, so borders decode as well as the interior.
    padding: Literal["zeros", "replicate"] = field(default="zeros", metadata=ADDED)

    def __post_init__(self) -> None:
        require(
            NAME_PATTERN.fullmatch(self.name) is not None,
            f"model name {self.name[:80]!r} must match {NAME_PATTERN.pattern} (lowercase, no path separators)",
        )
        require(
            len(self.description) <= MAX_DESCRIPTION and self.description.isprintable(),
            f"model description must be printable and at most {MAX_DESCRIPTION} characters",
        )
        problem = self.family.check(self.entropy, self.transform.latent_channels)
        require(problem is None, str(problem))

    @property
    def family(self):
        """The registered latent-codec family of ``entropy``."""
        return LATENT_CODECS[getattr(self.entropy, "kind", None)]


def to_dict(config: Any) -> Any:
    """Plain-JSON form of a config (tuples become lists; added fields left out while at their default)."""
    if not dataclasses.is_dataclass(config):
        return list(map(to_dict, config)) if isinstance(config, (tuple, list)) else config
    return {
        f.name: to_dict(getattr(config, f.name))
        for f in dataclasses.fields(config)
        if not (f.metadata.get("omit_default") and getattr(config, f.name) == f.default)
    }


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = get_origin(tp)
    if tp is LatentCodecConfig:  # a choice of registered families, by "kind"
        kind = value.get("kind") if isinstance(value, dict) else None
        if kind not in LATENT_CODECS:
            raise ConfigError(f"{where}.kind: expected one of {list(LATENT_CODECS)}, got {str(kind)[:80]!r}")
        return _build(LATENT_CODECS[kind].config, value, where)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, where)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in get_args(tp):
            return None
        (option,) = [t for t in get_args(tp) if t is not type(None)]  # optional values only
        return _convert(option, value, where)
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
    if tp is bool and isinstance(value, bool):
        return value
    if tp in (int, str) and isinstance(value, tp) and not isinstance(value, bool):
        return value
    raise ConfigError(f"{where}: expected {getattr(tp, '__name__', tp)}, got {str(value)[:80]!r}")


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
