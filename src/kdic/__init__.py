"""kdic: learned image compression and knowledge distillation of LIC models (KDIC / SMoDi)."""

from .errors import CheckpointError, ConfigError, KdicError
from .lazy import lazy_exports

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
