"""Bundled declarative configs (``strategies/``, ``recipes/``, ``studies/``: JSON files), found by name
without importing torch, so that the command line can list them in its help."""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parent
KINDS = ("strategies", "recipes", "studies")
BUNDLED_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")  # no dots, no path separators: a name cannot leave its folder


def bundled_names(kind: str) -> list[str]:
    """Names of the bundled configs of ``kind`` (one of ``KINDS``)."""
    return sorted(p.stem for p in (CONFIG_DIR / kind).glob("*.json"))


def config_path(kind: str, spec: str) -> Path:
    """A bundled config of ``kind`` by name, or a JSON file by path (any path ending in .json).

    A bare name is checked against a strict charset and the bundled names, so it cannot reach a
    file outside its folder (``../../x``).
    """
    if Path(spec).suffix == ".json":
        return Path(spec)
    if BUNDLED_NAME.fullmatch(spec) and spec in bundled_names(kind):
        return CONFIG_DIR / kind / f"{spec}.json"
    singular = kind.removesuffix("ies") + "y" if kind.endswith("ies") else kind.removesuffix("s")
    raise ConfigError(
        f"unknown {singular} {spec[:80]!r}; known: {', '.join(bundled_names(kind))} (or pass a path ending in .json)"
    )
