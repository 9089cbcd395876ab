"""Bundled data: a Kodak sample image for demos and tests, and the shipped default codec weights.

The package ships two variable-rate models, ``<model id>.safetensors``: the CPU-scale teacher and
its SMoDi-distilled student (docs/variable_rate.md says which run each comes from). One continuous
``quality`` knob picks the rate of either: quality q in 0..10 codes at lambda ``quality_lmbda(q)``,
log-linear over the models' trained lambda range, so that each integer lands on one of their eleven
anchors (within the anchors' three-digit rounding). ``QUALITY_LAMBDAS`` is another table: the four
rate points of the fixed-rate study (docs/reproduction.md), whose weights live in the repository
under ``results/repro/shipped-0.1``. ``weights/index.json`` lists every shipped file with its model id and
weights digest: a bitstream's decoder is found there by exact match, never by building a file name
or a pattern from the file's contents.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import KdicError

SAMPLES_DIR = Path(__file__).parent / "samples"
WEIGHTS_DIR = Path(__file__).parent / "weights"
INDEX_NAME = "index.json"

QUALITY_LAMBDAS = {1: 0.0035, 2: 0.0067, 3: 0.013, 4: 0.025}  # the paper's rate points (fixed-rate study)
QUALITY_RANGE = (0.0, 10.0)
LAMBDA_RANGE = (0.000569, 0.178)  # what quality 0 and 10 code at: the shipped models' trained range
DEFAULT_QUALITY = 5.5  # lambda 0.0134, near the paper's middle rate point 0.013
DEFAULT_RATES = 8  # rate points an RD curve of variable-rate weights takes when none are named
ROLES = {"student": "kdic-tiny-vr", "teacher": "s2c-hybrid-tiny-vr"}
DEFAULT_ROLE = "student"


def quality_lmbda(quality: float) -> float:
    """The lambda of ``quality`` (any value in ``QUALITY_RANGE``), or a one-line error."""
    low, high = QUALITY_RANGE
    if not low <= quality <= high:  # also refuses NaN
        raise KdicError(f"quality must be from {low:g} to {high:g}, got {quality:g}")
    return LAMBDA_RANGE[0] * math.exp((quality - low) / (high - low) * math.log(LAMBDA_RANGE[1] / LAMBDA_RANGE[0]))


@dataclass(frozen=True)
class ShippedWeights:
    """One entry of the index: a file in ``WEIGHTS_DIR`` and what a bitstream says about it."""

    file: str
    model: str
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
        model = load(path)
        if model.config.name != path.stem or not model.variable_rate:
            raise KdicError(f"{path.name}: shipped files are variable-rate weights named <model id>.safetensors")
        entries.append(asdict(ShippedWeights(path.name, path.stem, weights_digest(model).hex())))
    return {"weights": entries}


def bundled_weights(model: str = DEFAULT_ROLE) -> Path:
    """Shipped weights of ``model`` (a role or a shipped model id), or a one-line error."""
    preset = ROLES.get(model, model)
    entries = shipped_weights()
    for entry in entries:
        if entry.model == preset:
            return entry.path
    shipped = ", ".join(e.model for e in entries) or "none"
    raise KdicError(
        f"no bundled weights for {model!r} (roles: {', '.join(ROLES)}; shipped: {shipped}); pass --weights FILE"
    )


def weights_for_digest(model_id: str, digest: bytes) -> Path:
    """The shipped file whose model id and weights digest a bitstream names, or a one-line error."""
    for entry in shipped_weights():
        if digest and entry.model == model_id and bytes.fromhex(entry.digest).startswith(digest):
            return entry.path
    raise KdicError(
        f"no shipped weights match this file (model {model_id!r}, weights {digest.hex()}); "
        "pass the encoder's --weights FILE (earlier shipped weights are in the repository: variable-rate under "
        "results/vr, docs/variable_rate.md says which; kdic 0.1's fixed-rate ones in results/repro/shipped-0.1)"
    )
