"""Weights files: safetensors with a JSON metadata block that describes the model completely.

``save(model, path, lmbda=...)`` writes atomically (temp file, then rename); ``load(path)``
rebuilds the model from the file alone. Never pickle. Files are untrusted input: the metadata is
validated (bounded config) and the tensor table checked against it before anything is allocated.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as serialize

from . import __version__
from .errors import CheckpointError, ConfigError
from .fileio import atomic_write_bytes
from .models import LearnedImageCodec, ModelConfig, config_from_dict, to_dict

FORMAT = "kdic-weights"
FORMAT_VERSION = 1
METADATA_KEY = "kdic"
MAX_HEADER_BYTES = 16 * 2**20  # the largest preset's header (tensor table + metadata) is ~160 KB
MAX_NESTING = 16  # JSON levels in the metadata; kdic writes 5 (metadata.config.transform.encoder[i])
STORED_FLOATS = ("F16", "BF16", "F32")  # what ``save`` writes (float32, or float16 for shipping)
VERSION_PATTERN = re.compile(r"[0-9A-Za-z.+_-]{1,64}")
MAX_PROBLEMS = 3  # mismatches quoted in one error line


def save(
    model: LearnedImageCodec,
    path: str | os.PathLike,
    lmbda: float | None = None,
    extra: dict[str, Any] | None = None,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write ``model``'s weights plus its config, lambda and the kdic version.

    ``dtype=torch.float16`` halves the file (for shipping); ``load`` always rebuilds a float32
    model, so encoder and decoder see the same rounded weights.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise CheckpointError(f"output folder {path.parent} does not exist")
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kdic_version": __version__,
        "config": to_dict(model.config),
        "lmbda": lmbda,
        "extra": extra or {},
    }
    tensors = {
        k: v.detach().to("cpu", dtype if dtype is not None and v.is_floating_point() else v.dtype).contiguous()
        for k, v in model.state_dict().items()
    }
    atomic_write_bytes(path, serialize(tensors, metadata={METADATA_KEY: json.dumps(metadata)}))
    return path


def _open(path: Path, device: str | torch.device = "cpu") -> Any:
    """``safe_open`` of an untrusted file, with the header size checked before safetensors parses it."""
    if not path.is_file():
        raise CheckpointError(f"weights file {path} does not exist")
    try:
        with open(path, "rb") as f:
            prefix = f.read(8)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read weights file ({exc.strerror})") from None
    if len(prefix) < 8:
        raise CheckpointError(f"{path} is not a safetensors weights file ({len(prefix)} bytes)")
    header_bytes = int.from_bytes(prefix, "little")
    if header_bytes > MAX_HEADER_BYTES:
        raise CheckpointError(
            f"{path} is not a safetensors weights file (header of {header_bytes} bytes, limit {MAX_HEADER_BYTES})"
        )
    try:
        return safe_open(str(path), framework="pt", device=str(device))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a safetensors weights file ({exc})") from None


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text} is out of range")
    return value


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _nesting(value: Any) -> int:
    """Deepest list/dict nesting, found without recursion (a hostile file must not overflow the stack)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


def _clip(text: str, limit: int = 300) -> str:
    """Error text quoting file content stays one readable line."""
    return text if len(text) <= limit else f"{text[:limit]}..."


def _parse_metadata(f: Any, path: Path) -> tuple[dict[str, Any], ModelConfig]:
    """The kdic metadata block, validated field by field, and the model config it describes."""
    raw = (f.metadata() or {}).get(METADATA_KEY)
    if raw is None:
        raise CheckpointError(f"{path} has no kdic metadata block; it was not written by kdic.save")
    try:
        metadata = json.loads(raw, parse_float=_finite_float, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, overlong integers, NaN/inf, deep nesting
        raise CheckpointError(f"{path}: corrupt kdic metadata ({_clip(str(exc))})") from None
    if not isinstance(metadata, dict):
        raise CheckpointError(f"{path}: kdic metadata must be a JSON object, got {type(metadata).__name__}")
    if _nesting(metadata) > MAX_NESTING:
        raise CheckpointError(f"{path}: kdic metadata is nested deeper than {MAX_NESTING} levels")
    if metadata.get("format") != FORMAT or metadata.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: unsupported weights format {_clip(repr(metadata.get('format')), 80)} "
            f"version {_clip(repr(metadata.get('format_version')), 80)} "
            f"(this kdic reads {FORMAT} v{FORMAT_VERSION})"
        )
    version, lmbda, extra = metadata.get("kdic_version"), metadata.get("lmbda"), metadata.get("extra", {})
    if not isinstance(version, str) or VERSION_PATTERN.fullmatch(version) is None:
        raise CheckpointError(f"{path}: kdic_version must be a version string, got {_clip(repr(version), 80)}")
    if lmbda is not None and (isinstance(lmbda, bool) or not isinstance(lmbda, (int, float)) or lmbda <= 0):
        raise CheckpointError(f"{path}: lmbda must be a positive number or null, got {_clip(repr(lmbda), 80)}")
    if not isinstance(extra, dict):
        raise CheckpointError(f"{path}: extra must be a JSON object, got {type(extra).__name__}")
    if "config" not in metadata:
        raise CheckpointError(f"{path}: kdic metadata has no model config")
    try:
        config = config_from_dict(metadata["config"])
    except ConfigError as exc:
        raise CheckpointError(f"{path}: invalid model config in metadata: {_clip(str(exc))}") from None
    plain_config = json.loads(json.dumps(to_dict(config)))  # JSON types (lists, not tuples), defaults filled in
    return (
        {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "kdic_version": version,
            "config": plain_config,
            "lmbda": lmbda,
            "extra": extra,
        },
        config,
    )


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The validated kdic metadata of a weights file: format, kdic_version, config (as a dict), lmbda, extra.

    Only known fields come back, each checked, so callers can index them without guarding.
    """
    path = Path(path)
    with _open(path) as f:
        return _parse_metadata(f, path)[0]


def read_config(path: str | os.PathLike) -> ModelConfig:
    """The validated model config a weights file describes (nothing is allocated)."""
    path = Path(path)
    with _open(path) as f:
        return _parse_metadata(f, path)[1]


def _check_tensor_table(config: ModelConfig, f: Any, path: Path) -> None:
    """Compare the config's tensors with the file's header on the meta device: a file whose config
    implies huge tensors it does not hold is refused before anything real is allocated."""
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch's zero-size notice; reported as a problem below
        expected = LearnedImageCodec(config).state_dict()
    stored = {k: f.get_slice(k) for k in f.keys()}
    problems = []
    for k, tensor in expected.items():
        if k not in stored:
            problems.append(f"missing {k}")
            continue
        shape, dtype = tuple(stored[k].get_shape()), stored[k].get_dtype()
        if shape != tuple(tensor.shape):
            problems.append(f"{k}: file has {shape}, model expects {tuple(tensor.shape)}")
        elif dtype not in STORED_FLOATS:
            problems.append(f"{k}: file stores {dtype}, model expects one of {', '.join(STORED_FLOATS)}")
        elif tensor.numel() == 0:
            problems.append(f"{k}: the config gives it zero size")
    problems += [f"unexpected {k!r}" for k in stored if k not in expected]  # repr: names come from the file
    if problems:
        more = f" (and {len(problems) - MAX_PROBLEMS} more)" if len(problems) > MAX_PROBLEMS else ""
        raise CheckpointError(
            f"{path}: weights do not match the model config: {_clip('; '.join(problems[:MAX_PROBLEMS]))}{more}"
        )


def load(path: str | os.PathLike, device: str | torch.device = "cpu") -> LearnedImageCodec:
    """Rebuild the model described by a weights file and load its weights (eval mode).

    Order matters for untrusted files: metadata, then the tensor table against the config (meta
    device), then the tensors themselves (finite), and only then the real model.
    """
    path = Path(path)
    with _open(path, device) as f:
        metadata, config = _parse_metadata(f, path)
        _check_tensor_table(config, f, path)
        state = {k: f.get_tensor(k) for k in f.keys()}
    bad = next((k for k, v in state.items() if not torch.isfinite(v).all()), None)
    if bad is not None:
        raise CheckpointError(f"{path}: tensor {bad} holds NaN or infinite values")
    model = LearnedImageCodec(config)
    model.load_state_dict(state)
    model.lmbda = metadata["lmbda"]
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
    result = digest.digest()
    # nn.Module.__setattr__ stores any value; torch annotates it as taking only tensors and modules
    model._kdic_digest = (key, result)  # type: ignore[assignment]
    return result
