"""The importer registry with every source module loaded (what ``kdic.importers`` hands out)."""

from . import compressai_elic, compressai_hyperprior, lic_tcm  # noqa: F401  (register their sources)
from .base import IMPORTERS, import_checkpoint

__all__ = ["IMPORTERS", "import_checkpoint"]
