"""Weights files: safetensors with a JSON metadata block that describes the model completely.

``save(model, path, lmbda=...)`` writes atomically (temp file, then rename); ``load(path)``
rebuilds the model from the file alone. Never pickle.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from . import __version__
from .errors import CheckpointError, ConfigError
from .fileio import atomic_write
from .models import LearnedImageCodec, config_from_dict, to_dict

FORMAT = "kdic-weights"
FORMAT_VERSION = 1
METADATA_KEY = "kdic"


def save(model: LearnedImageCodec, path: str | os.PathLike, lmbda: float | None = None,
         extra: dict[str, Any] | None = None, dtype: torch.dtype | None = None) -> Path:
    """Write ``model``'s weights plus its config, lambda and the kdic version.

    ``dtype=torch.float16`` halves the file (for shipping); ``load`` always rebuilds a float32
    model, so encoder and decoder see the same rounded weights.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise CheckpointError(f"output folder {path.parent} does not exist")
    metadata = {"format": FORMAT, "format_version": FORMAT_VERSION, "kdic_version": __version__,
                "config": to_dict(model.config), "lmbda": lmbda, "extra": extra or {}}
    tensors = {k: v.detach().to("cpu", dtype if dtype is not None and v.is_floating_point() else v.dtype).contiguous()
               for k, v in model.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={METADATA_KEY: json.dumps(metadata)}))
    return path


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The kdic metadata block of a weights file, validated for format and version."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(METADATA_KEY)
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a safetensors weights file ({exc})") from None
    if raw is None:
        raise CheckpointError(f"{path} has no kdic metadata block; it was not written by kdic.save")
    try:
        metadata = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: corrupt kdic metadata ({exc})") from None
    if metadata.get("format") != FORMAT or metadata.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: unsupported weights format {metadata.get('format')!r} "
                              f"version {metadata.get('format_version')!r} (this kdic reads {FORMAT} v{FORMAT_VERSION})")
    return metadata


def _check_state(model: LearnedImageCodec, state: dict[str, torch.Tensor], path: Path) -> None:
    expected = model.state_dict()
    problems = [f"{k}: file has {tuple(v.shape)}, model expects {tuple(expected[k].shape)}"
                for k, v in state.items() if k in expected and v.shape != expected[k].shape]
    problems += [f"missing {k}" for k in expected if k not in state]
    problems += [f"unexpected {k}" for k in state if k not in expected]
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise CheckpointError(f"{path}: weights do not match the model config: {'; '.join(problems[:3])}{more}")


def load(path: str | os.PathLike, device: str | torch.device = "cpu") -> LearnedImageCodec:
    """Rebuild the model described by a weights file and load its weights (eval mode)."""
    path = Path(path)
    metadata = read_metadata(path)
    try:
        config = config_from_dict(metadata["config"])
    except (ConfigError, KeyError) as exc:
        raise CheckpointError(f"{path}: invalid model config in metadata: {exc}") from None
    model = LearnedImageCodec(config)
    with safe_open(str(path), framework="pt", device=str(device)) as f:
        state = {k: f.get_tensor(k) for k in f.keys()}
    _check_state(model, state, path)
    model.load_state_dict(state)
    model.lmbda = metadata.get("lmbda")
    return model.to(device).eval()


def weights_digest(model: torch.nn.Module) -> bytes:
    """SHA-256 of the weights (names, dtypes, shapes, bytes); a bitstream names the weights it needs."""
    key = tuple((p._version, p.data_ptr()) for p in model.parameters())
    cached = getattr(model, "_kdic_digest", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    model._kdic_digest = (key, digest.digest())
    return model._kdic_digest[1]
