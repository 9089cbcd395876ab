"""The latent-codec family registry: what a model's ``entropy`` config names and what it declares.

A family is one module holding its config dataclass (with a ``kind`` literal equal to the
registered name), its latent-codec module, and a ``LATENT_CODECS.register(...)`` call. Model
building, config parsing, teacher-guided construction, the codec pipeline and distillation look
the family up here and never branch on types.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from ..registry import Registry


@dataclass(frozen=True)
class LatentCodecConfig:
    """Base of every family's config (each adds ``kind: Literal[name]`` and its own fields)."""


@dataclass(frozen=True)
class LatentCodecFamily:
    """One entropy-model family.

    ``build(config, latent_channels)`` makes the latent codec; ``check(config, latent_channels)``
    says what does not fit (or None). ``parts`` maps the names a distillation strategy may train,
    swap or inherit to the latent codec's child modules; ``phases`` is SMoDi's order for them, each
    (trained part, parts swapped into the teacher). ``interface(config, latent_channels)`` is what
    a part plugs into: a student's part fits a teacher only where both agree. ``streams`` names
    the byte strings of one coded latent, in the order a ``.kdic`` file stores them, and
    ``latent_multiple`` the factor y's height and width must divide by (the hyper stride).
    ``shrink(config)`` is the family's part of teacher-guided construction. ``checkerboard`` names
    the children that read checkerboard-masked input: a model that pads by replication pads those by
    reflection instead, which keeps the anchor pattern intact across the border.
    """

    config: type
    build: Callable[[Any, int], nn.Module]
    parts: dict[str, tuple[str, ...]]
    phases: tuple[tuple[str, tuple[str, ...]], ...] = ()
    interface: Callable[[Any, int], tuple] = lambda config, latent_channels: (config, latent_channels)
    check: Callable[[Any, int], str | None] = lambda config, latent_channels: None
    shrink: Callable[[Any, float], Any] = lambda config, expansion: config
    streams: tuple[str, ...] = ("y", "z")
    latent_multiple: int = 4
    checkerboard: tuple[str, ...] = ()


LATENT_CODECS: Registry[LatentCodecFamily] = Registry("latent codec family")

# SMoDi's entropy phases of the context models: the channel context inside the teacher, then the
# parameter aggregation with the student's channel context in front of it (it reads its output).
CONTEXT_PHASES = (
    ("channel_context", ("channel_context",)),
    ("param_aggregation", ("channel_context", "param_aggregation")),
)
