"""Shared fixtures: the bundled Kodak sample and, when present, the full sets in ../shared/data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from kdic.data import sample_image_path

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
KODAK_DIR = SHARED_DATA / "kodak"


@pytest.fixture(scope="session")
def kodak_sample() -> torch.Tensor:
    """kodim23 as a (1, 3, 512, 768) float tensor in [0, 1]."""
    array = np.asarray(Image.open(sample_image_path()).convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1)[None]


@pytest.fixture(scope="session")
def kodak_dir() -> Path:
    if not KODAK_DIR.is_dir():
        pytest.skip(f"full Kodak set not found at {KODAK_DIR} (a fresh clone has only the bundled sample)")
    return KODAK_DIR
