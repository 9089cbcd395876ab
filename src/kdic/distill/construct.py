"""Teacher-guided student construction: a student is the teacher, pruned.

Same block types and stage layout; fewer blocks in stages 2-5, a narrower first (and mirrored
sixth) stage, smaller FFN expansions, and, in S2CFormer's enhanced SCCTX, smaller context and
aggregation expansions. Optionally the student starts from the teacher's weights (kept blocks,
leading channels), like structured pruning.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from ..errors import ConfigError
from ..models import ModelConfig, SCCTXConfig, StageConfig


def derive_student(teacher: ModelConfig, name: str, stage1_channels: int | None = None, depth_scale: float = 5 / 8,
                   expansions: tuple[float, float, float] = (3, 2, 2), entropy_expansion: float | None = 2) -> ModelConfig:
    """Student config from a teacher config by the paper's pruning rule.

    ``stage1_channels`` defaults to 2/3 of the teacher's stage-1 width (rounded to a multiple of 8);
    stages 2-3 (and mirrored 4-5) keep ``round(depth * depth_scale)`` blocks (at least one);
    ``expansions`` are the FFN expansions of encoder stages 1-3 (mirrored in the decoder). A
    variable-rate teacher gives a variable-rate student over the same anchors (``init_from_teacher``
    then copies its gain units, which have the latent's width).
    """
    t = teacher.transform
    if stage1_channels is None:
        stage1_channels = max(8, int(round(t.encoder[0].channels * 2 / 3 / 8)) * 8)
    if stage1_channels > t.encoder[0].channels or not 0 < depth_scale <= 1:
        raise ConfigError("a student may only shrink its teacher (stage-1 width, depth scale <= 1)")

    def shrink(stage: StageConfig, level: int) -> StageConfig:
        depth = stage.depth if level == 0 else max(1, round(stage.depth * depth_scale))
        channels = stage1_channels if level == 0 else stage.channels
        return replace(stage, depth=depth, channels=channels, expansion=float(expansions[level]))

    encoder = tuple(shrink(s, level) for level, s in enumerate(t.encoder))
    decoder = tuple(shrink(s, 2 - level) for level, s in enumerate(t.decoder))
    entropy = teacher.entropy
    if entropy_expansion is not None and isinstance(entropy, SCCTXConfig) and entropy.style == "s2c":
        entropy = replace(entropy, context_expansion=float(entropy_expansion), aggregation_expansion=float(entropy_expansion))
    return ModelConfig(name, replace(t, encoder=encoder, decoder=decoder), entropy,  # type: ignore[arg-type]
                       f"student of {teacher.name} by teacher-guided construction", teacher.variable_rate)


@torch.no_grad()
def init_from_teacher(student: nn.Module, teacher: nn.Module) -> list[str]:
    """Copy every teacher tensor into the same-named student tensor, keeping its leading slice
    when the student is smaller (kept blocks, leading channels). Returns the names copied."""
    teacher_state = teacher.state_dict()
    copied = []
    for name, tensor in student.state_dict().items():
        source = teacher_state.get(name)
        if source is None or source.dim() != tensor.dim() or any(s < d for s, d in zip(source.shape, tensor.shape)):
            continue
        tensor.copy_(source[tuple(slice(0, d) for d in tensor.shape)])
        copied.append(name)
    return copied
