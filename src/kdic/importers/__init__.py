"""Import other projects' checkpoints as ordinary kdic models (``kdic import``, ``kdic.import_checkpoint``).

Each source is one module registering an ``Importer`` under ``project:model``; ``registered`` loads
them all. ``SOURCES`` names them without loading torch, for the command line's parser (a test keeps
it equal to the registry).
"""

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

if TYPE_CHECKING:  # the real names for type checkers; at run time each loads on first use
    from .base import ImportFailed, read_state_dict
    from .registered import IMPORTERS, import_checkpoint


SOURCES = ("compressai:elic2022-official", "compressai:bmshj2018-hyperprior", "compressai:mbt2018-mean", "lic_tcm:tcm")

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "IMPORTERS": ".registered",
        "import_checkpoint": ".registered",
        "ImportFailed": ".base",
        "read_state_dict": ".base",
    },
)
__all__ = ["IMPORTERS", "SOURCES", "ImportFailed", "import_checkpoint", "read_state_dict"]
