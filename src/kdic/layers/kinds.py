"""The registries of transform blocks and resamplers, and what each entry declares.

A block kind builds one block of a stage at a given width; a resampler changes resolution by a
factor and width. Both are looked up by name from ``StageConfig``/``TransformConfig``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from torch import nn

from ..registry import Registry


@dataclass(frozen=True)
class BlockKind:
    """``build(width, stage, index)`` makes the ``index``-th block of ``stage`` (a ``StageConfig``).

    ``check(width, stage)`` returns what is wrong with that width/stage for this kind, or None.
    ``expansion``: the kind has an FFN/MLP expansion that teacher-guided construction may shrink;
    ``prunable``: a stage may keep fewer of these blocks (not so a GDN, which is the stage's non-linearity).
    """

    build: Callable[[int, Any, int], nn.Module]
    check: Callable[[int, Any], str | None] = lambda width, stage: None
    expansion: bool = True
    prunable: bool = True


@dataclass(frozen=True)
class Resampler:
    """``build(in_ch, out_ch)``; ``direction`` down (analysis) or up (synthesis) by ``factor``.

    ``input_convs(module)`` are the layers that read the module's input directly, all linear in it,
    so that a 1x1 channel map in front of it can be folded into their weights.
    """

    build: Callable[[int, int], nn.Module]
    direction: Literal["down", "up"]
    input_convs: Callable[[nn.Module], list[nn.Module]]
    factor: int = 2


BLOCKS: Registry[BlockKind] = Registry("block kind")
RESAMPLERS: Registry[Resampler] = Registry("resampler")


def resamplers(direction: str) -> tuple[str, ...]:
    return tuple(name for name, entry in RESAMPLERS.items() if entry.direction == direction)
