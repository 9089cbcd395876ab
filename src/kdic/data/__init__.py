"""Bundled data: a Kodak sample image for demos and tests, and the shipped default codec weights.

Shipped weights are named ``<preset>-q<quality>.safetensors``; quality 1..4 maps to the paper's
lambdas below, and the two roles name the CPU-scale teacher and its SMoDi-distilled student
(docs/reproduction.md says which training run each file comes from). ``weights/index.json`` lists
every shipped file with its model id, quality and weights digest: a bitstream's decoder is found
there by exact match, never by building a file name or a pattern from the file's contents.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import KdicError

SAMPLES_DIR = Path(__file__).parent / "samples"
WEIGHTS_DIR = Path(__file__).parent / "weights"
INDEX_NAME = "index.json"

QUALITY_LAMBDAS = {1: 0.0035, 2: 0.0067, 3: 0.013, 4: 0.025}
DEFAULT_QUALITY = 3
DEFAULT_RATES = 8  # rate points an RD curve of variable-rate weights takes when none are named
ROLES = {"student": "kdic-tiny", "teacher": "s2c-hybrid-tiny"}
DEFAULT_ROLE = "student"


@dataclass(frozen=True)
class ShippedWeights:
    """One entry of the index: a file in ``WEIGHTS_DIR`` and what a bitstream says about it."""

    file: str
    model: str
    quality: int
    digest: str  # hex SHA-256 of the loaded (float32) weights, ``kdic.checkpoint.weights_digest``

    @property
    def path(self) -> Path:
        return WEIGHTS_DIR / self.file


def sample_image_path(name: str = "kodim23.png") -> Path:
    return SAMPLES_DIR / name


def shipped_weights() -> list[ShippedWeights]:
    """The index of shipped weights files (empty if the package ships none)."""
    index = WEIGHTS_DIR / INDEX_NAME
    if not index.is_file():
        return []
    return [ShippedWeights(**entry) for entry in json.loads(index.read_text())["weights"]]


def build_weights_index() -> dict:
    """The index as the shipped files are now (``scripts/write_weights_index.py`` writes it)."""
    from ..checkpoint import load, weights_digest

    entries = []
    for path in sorted(WEIGHTS_DIR.glob("*.safetensors")):
        preset, _, quality = path.stem.rpartition("-q")
        model = load(path)
        if model.config.name != preset or int(quality) not in QUALITY_LAMBDAS:
            raise KdicError(f"{path.name}: shipped files are named <model>-q<1..4>.safetensors")
        entries.append(asdict(ShippedWeights(path.name, preset, int(quality), weights_digest(model).hex())))
    return {"weights": entries}


def bundled_weights(model: str = DEFAULT_ROLE, quality: int = DEFAULT_QUALITY) -> Path:
    """Shipped weights of ``model`` (a role or a preset name) at ``quality``, or a one-line error."""
    preset = ROLES.get(model, model)
    if quality not in QUALITY_LAMBDAS:
        raise KdicError(f"quality must be one of {', '.join(map(str, QUALITY_LAMBDAS))}, got {quality}")
    entries = shipped_weights()
    for entry in entries:
        if entry.model == preset and entry.quality == quality:
            return entry.path
    shipped = ", ".join(e.path.stem for e in entries) or "none"
    raise KdicError(f"no bundled weights for {model!r} at quality {quality} (shipped: {shipped}); pass --weights FILE")


def weights_for_digest(model_id: str, digest: bytes) -> Path:
    """The shipped file whose model id and weights digest a bitstream names, or a one-line error."""
    for entry in shipped_weights():
        if digest and entry.model == model_id and bytes.fromhex(entry.digest).startswith(digest):
            return entry.path
    raise KdicError(
        f"no shipped weights match this file (model {model_id!r}, weights {digest.hex()}); "
        "pass the encoder's --weights FILE"
    )
