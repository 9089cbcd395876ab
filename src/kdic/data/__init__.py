"""Bundled data: one Kodak image (kodim23) for demos and tests, and shipped weights (if any)."""

from __future__ import annotations

from pathlib import Path

SAMPLES_DIR = Path(__file__).parent / "samples"
WEIGHTS_DIR = Path(__file__).parent / "weights"


def sample_image_path(name: str = "kodim23.png") -> Path:
    return SAMPLES_DIR / name


def bundled_weights(model_id: str) -> Path | None:
    """Path of the shipped weights for ``model_id`` (a preset name, optionally with a quality suffix)."""
    path = WEIGHTS_DIR / f"{model_id}.safetensors"
    return path if path.is_file() else None
