"""Evaluation images: a folder (e.g. Kodak) read whole, in name order, for validation and RD curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..codec.image_io import list_images, read_image


def load_validation(folder: str | Path, limit: int | None = None) -> list[tuple[str, np.ndarray]]:
    """(name, uint8 RGB) pairs of the first ``limit`` images of a folder (e.g. Kodak)."""
    files = list_images(folder, recursive=False)[:limit]
    return [(p.name, read_image(p)) for p in files]
