"""Block kinds of the CompressAI families (Balle 2018, Minnen 2018, Cheng 2020): GDN, IGDN and
the plain residual block, each a registered entry so that their stages are ordinary kdic stages."""

from __future__ import annotations

from .common import GDN, ResidualBlock
from .kinds import BLOCKS, BlockKind

BLOCKS.register("gdn", BlockKind(lambda width, stage, index: GDN(width), expansion=False, prunable=False))
BLOCKS.register(
    "igdn", BlockKind(lambda width, stage, index: GDN(width, inverse=True), expansion=False, prunable=False)
)
BLOCKS.register("residual", BlockKind(lambda width, stage, index: ResidualBlock(width, width), expansion=False))
