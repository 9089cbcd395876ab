"""kdic: learned image compression and knowledge distillation of LIC models (KDIC / SMoDi)."""

__version__ = "0.1.0"

from .errors import CheckpointError, ConfigError, KdicError  # noqa: E402
from .models import LearnedImageCodec, ModelConfig, available, build_model, get_config  # noqa: E402
from .checkpoint import load, read_metadata, save  # noqa: E402
from .importers import import_checkpoint  # noqa: E402

__all__ = ["CheckpointError", "ConfigError", "KdicError", "LearnedImageCodec", "ModelConfig", "__version__",
           "available", "build_model", "get_config", "import_checkpoint", "load", "read_metadata", "save"]
