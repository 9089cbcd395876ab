"""Bundled sample data: one Kodak image (kodim23) for demos and tests on a fresh clone."""

from pathlib import Path

SAMPLES_DIR = Path(__file__).parent / "samples"


def sample_image_path(name: str = "kodim23.png") -> Path:
    return SAMPLES_DIR / name
