"""Import other projects' checkpoints as ordinary kdic models (``kdic import``, ``kdic.import_checkpoint``).

Each source is one module registering an ``Importer`` under ``project:model``.
"""

from . import compressai_elic, compressai_hyperprior, lic_tcm  # noqa: F401  (register their sources)
from .base import IMPORTERS, ImportFailed, import_checkpoint, read_state_dict

__all__ = ["IMPORTERS", "ImportFailed", "import_checkpoint", "read_state_dict"]
