"""Bundled data: a Kodak sample image for demos and tests, and the shipped default codec weights.

Shipped weights are named ``<preset>-q<quality>.safetensors``; quality 1..4 maps to the paper's
lambdas below, and the two roles name the CPU-scale teacher and its SMoDi-distilled student
(docs/reproduction.md says which training run each file comes from).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import KdicError

SAMPLES_DIR = Path(__file__).parent / "samples"
WEIGHTS_DIR = Path(__file__).parent / "weights"

QUALITY_LAMBDAS = {1: 0.0035, 2: 0.0067, 3: 0.013, 4: 0.025}
DEFAULT_QUALITY = 3
ROLES = {"student": "kdic-tiny", "teacher": "s2c-hybrid-tiny"}
DEFAULT_ROLE = "student"


def sample_image_path(name: str = "kodim23.png") -> Path:
    return SAMPLES_DIR / name


def bundled_weights(model: str = DEFAULT_ROLE, quality: int = DEFAULT_QUALITY) -> Path:
    """Shipped weights of ``model`` (a role or a preset name) at ``quality``, or a one-line error."""
    preset = ROLES.get(model, model)
    if quality not in QUALITY_LAMBDAS:
        raise KdicError(f"quality must be one of {', '.join(map(str, QUALITY_LAMBDAS))}, got {quality}")
    path = WEIGHTS_DIR / f"{preset}-q{quality}.safetensors"
    if not path.is_file():
        shipped = ", ".join(p.stem for p in sorted(WEIGHTS_DIR.glob("*.safetensors"))) or "none"
        raise KdicError(f"no bundled weights for {model!r} at quality {quality} (shipped: {shipped}); "
                        "pass --weights FILE")
    return path


def bundled_candidates(model_id: str) -> list[Path]:
    """Shipped weights files of the preset ``model_id`` (every quality), to find a bitstream's decoder."""
    return sorted(WEIGHTS_DIR.glob(f"{model_id}-q[0-9].safetensors"))
