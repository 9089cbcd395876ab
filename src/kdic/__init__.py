"""kdic: learned image compression and knowledge distillation of LIC models (KDIC / SMoDi)."""

from typing import TYPE_CHECKING

from .errors import CheckpointError, ConfigError, KdicError
from .lazy import lazy_exports

if TYPE_CHECKING:  # the real names for type checkers; at run time each loads on first use
    from .checkpoint import load, read_metadata, save
    from .importers import import_checkpoint
    from .models import LearnedImageCodec, ModelConfig, available, build_model, get_config


__version__ = "0.2.0.dev0"

_EXPORTS = {
    "LearnedImageCodec": ".models",
    "ModelConfig": ".models",
    "available": ".models",
    "build_model": ".models",
    "get_config": ".models",
    "load": ".checkpoint",
    "read_metadata": ".checkpoint",
    "save": ".checkpoint",
    "import_checkpoint": ".importers",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = ["CheckpointError", "ConfigError", "KdicError", "__version__", *_EXPORTS]
