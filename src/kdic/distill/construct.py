"""Teacher-guided student construction: a student is the teacher, pruned.

Same block types and stage layout; fewer blocks in the inner stages, a narrower first (and
mirrored last) stage, smaller FFN expansions, narrower plain conv/GDN stages, and what the
entropy family shrinks (in S2CFormer's enhanced SCCTX, the context and aggregation expansions).
Optionally the student starts from the teacher's weights (kept blocks,
leading channels), like structured pruning.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

import torch
from torch import nn

from ..errors import ConfigError
from ..layers import BLOCKS
from ..models import TEACHER_OF, ModelConfig, StageConfig, get_config, with_variable_rate
from .options import DEFAULT_WIDTH_SCALE


def _multiple_of_8(width: float) -> int:
    return max(8, int(round(width / 8)) * 8)


def derive_student(
    teacher: ModelConfig,
    name: str,
    stage1_channels: int | None = None,
    depth_scale: float = 5 / 8,
    expansions: tuple[float, float, float] = (3, 2, 2),
    entropy_expansion: float | None = 2,
    width_scale: float = DEFAULT_WIDTH_SCALE,
) -> ModelConfig:
    """Student config from a teacher config by the paper's pruning rule, for any stage layout.

    Stages are ranked by their distance from the image (level 0: the first encoder and the last
    decoder stage, mirrored). Level-0 stages get ``stage1_channels`` (default 2/3 of the teacher's
    first width, a multiple of 8) and keep their depth; deeper stages keep ``round(depth *
    depth_scale)`` blocks (at least one) of kinds that may be pruned; ``expansions[level]`` (the
    last entry for levels beyond) replaces the FFN/MLP expansion of kinds that have one. A stage
    whose blocks have neither (plain conv/GDN stages) is narrowed by ``width_scale`` instead,
    which for convolutions keeps about ``width_scale**2`` of the MACs (0.65: a CompressAI
    hyperprior student at 47% of its teacher's). A stage whose width is the
    latent's or the image's stays so. The entropy model shrinks as its family says, and a
    variable-rate teacher gives a variable-rate student over the same anchors.
    """
    t = teacher.transform
    if stage1_channels is None:
        stage1_channels = _multiple_of_8(t.encoder[0].channels * 2 / 3)
    if stage1_channels > t.encoder[0].channels or not 0 < depth_scale <= 1 or not 0 < width_scale <= 1:
        raise ConfigError("a student may only shrink its teacher (stage-1 width, depth and width scales <= 1)")

    def shrink(stage: StageConfig, level: int, fixed_width: bool) -> StageConfig:
        kind = BLOCKS[stage.block]
        if stage.depth == 0 or not (kind.prunable or kind.expansion):
            channels = stage.channels if fixed_width else _multiple_of_8(stage.channels * width_scale)
            return replace(stage, channels=channels)
        depth = stage.depth if level == 0 or not kind.prunable else max(1, round(stage.depth * depth_scale))
        channels = stage1_channels if level == 0 and not fixed_width else stage.channels
        expansion = float(expansions[min(level, len(expansions) - 1)]) if kind.expansion else stage.expansion
        return replace(stage, depth=depth, channels=channels, expansion=expansion)

    last_enc, last_dec = len(t.encoder) - 1, len(t.decoder) - 1
    encoder = tuple(shrink(s, i, i == last_enc and t.latent_projection is None) for i, s in enumerate(t.encoder))
    decoder = tuple(
        shrink(s, last_dec - i, i == last_dec and t.image_projection is None) for i, s in enumerate(t.decoder)
    )
    entropy = teacher.entropy
    if entropy_expansion is not None:
        entropy = teacher.family.shrink(entropy, entropy_expansion)
    return ModelConfig(
        name,
        replace(t, encoder=encoder, decoder=decoder),
        entropy,
        f"student of {teacher.name} by teacher-guided construction",
        teacher.variable_rate,
        teacher.padding,
    )


def student_for(
    teacher: ModelConfig,
    student: ModelConfig | Literal["derive"] | None = None,
    stage1_channels: int | None = None,
    width_scale: float = DEFAULT_WIDTH_SCALE,
) -> ModelConfig:
    """The student a run distills from ``teacher``: ``student`` if given, else the preset registered as
    the student of the teacher's architecture (``TEACHER_OF``), else (or with ``"derive"``) one derived
    by pruning. The teacher's padding and rate conditioning (its variable-rate anchors) carry over, so a
    variable-rate teacher gets a variable-rate student on the same lambda range."""
    if student is None or student == "derive":
        registered = [
            s
            for s, t in TEACHER_OF.items()
            if student is None
            and (get_config(t).transform, get_config(t).entropy) == (teacher.transform, teacher.entropy)
        ]
        student = (
            get_config(registered[0])
            if registered
            else derive_student(teacher, f"{teacher.name}-student", stage1_channels, width_scale=width_scale)
        )
    student = replace(student, padding=teacher.padding)
    if teacher.variable_rate is not None and student.variable_rate is None:
        student = replace(with_variable_rate(student), variable_rate=teacher.variable_rate)
    return student


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
