"""Bounds on every configurable size, and the checks that enforce them.

A weights file carries its config, so these cap what a hostile file can make kdic build. Each is
far above every preset (paper-size ones peak at width 320, depth 8, expansion 4, 8 heads, window
8, 5 groups/slices) and still keeps a model description cheap to instantiate.
"""

from __future__ import annotations

from .errors import ConfigError

MAX_CHANNELS = 4096  # any width: stage channels, M, hyper/attention/context widths, head_dim, group size
MAX_DEPTH = 32  # blocks per stage or per hyper transform (Swin-L's deepest stage has 18)
MAX_STAGES = 8  # resolution stages per transform (CompressAI's and ELIC's resample four times)
MAX_EXPANSION = 16.0  # FFN expansion / MLP ratio
MAX_HEADS = 64
MAX_WINDOW = 16  # attention window; its non-persistent index buffer grows as window**4
MAX_GROUPS = 16  # leading SCCTX channel groups
MAX_SLICES = 32  # TCM slices (and max_support)
# Field metadata of config fields added after weights files were shipped: a config leaves them out of
# ``to_dict`` while they hold their default, so it describes itself exactly as it did before.
ADDED = {"omit_default": True}


def require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def in_range(what: str, value: float, low: float, high: float, open_low: bool = False) -> None:
    """``low <= value <= high`` (``low < value`` if ``open_low``); NaN and inf fail too."""
    ok = (low < value if open_low else low <= value) and value <= high
    require(ok, f"{what} must be {'>' if open_low else '>='} {low:g} and <= {high:g}, got {value}")
