"""Staged learned image codecs, their declarative configs and the preset registry."""

from ..entropy import SCCTXConfig, SliceConfig
from .config import (
    ModelConfig,
    StageConfig,
    TransformConfig,
    VariableRateConfig,
    config_from_dict,
    to_dict,
)
from .lic import LearnedImageCodec, Stage, Transform
from .zoo import PAPER_COMPLEXITY, TEACHER_OF, available, get_config, register, with_variable_rate


def build_model(config: ModelConfig | str) -> LearnedImageCodec:
    """Model from a config or a preset name."""
    return LearnedImageCodec(get_config(config) if isinstance(config, str) else config)


__all__ = [
    "LearnedImageCodec",
    "ModelConfig",
    "PAPER_COMPLEXITY",
    "SCCTXConfig",
    "SliceConfig",
    "Stage",
    "StageConfig",
    "TEACHER_OF",
    "Transform",
    "TransformConfig",
    "VariableRateConfig",
    "available",
    "build_model",
    "config_from_dict",
    "get_config",
    "register",
    "to_dict",
    "with_variable_rate",
]
