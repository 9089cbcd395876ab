"""Image -> model -> latent codec -> .kdic bytes, and back, with timings and real vs estimated bits."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..checkpoint import weights_digest
from ..entropy import bits
from ..errors import BitstreamError
from ..models import LearnedImageCodec
from .bitstream import DIGEST_BYTES, Header, pack, unpack


@dataclass
class CodingReport:
    """What happened to one image: sizes, rates and where the time went (seconds)."""

    width: int
    height: int
    num_bytes: int
    estimated_bits: float | None = None
    symbols: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def bits_per_pixel(self) -> float:
        """Real rate: every byte of the file, header included."""
        return 8 * self.num_bytes / (self.width * self.height)

    @property
    def estimated_bits_per_pixel(self) -> float | None:
        return None if self.estimated_bits is None else self.estimated_bits / (self.width * self.height)


def to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1)[None].float().div_(255)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    return x[0].mul(255).round_().clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Replicate-pad the bottom and right so both sides are multiples of ``multiple``."""
    h, w = x.shape[-2:]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    if not (pad_h or pad_w):
        return x
    if pad_h >= h or pad_w >= w:  # replicate padding needs a source pixel; repeat edge rows explicitly
        x = torch.cat([x, x[..., -1:, :].expand(-1, -1, pad_h, -1)], dim=-2)
        return torch.cat([x, x[..., :, -1:].expand(-1, -1, -1, pad_w)], dim=-1)
    return F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")


def _timed(timings: dict[str, float], key: str, fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    timings[key] = timings.get(key, 0.0) + time.perf_counter() - start
    return result


@torch.no_grad()
def encode_image(model: LearnedImageCodec, image: np.ndarray, estimate: bool = True) -> tuple[bytes, np.ndarray, CodingReport]:
    """Compress an (H, W, 3) uint8 image. Returns (file bytes, encoder-side reconstruction, report)."""
    model.eval()
    height, width = image.shape[:2]
    timings: dict[str, float] = {}
    x = pad_to_multiple(to_tensor(image), model.padding_multiple)
    y = _timed(timings, "analysis transform", model.g_a, x)
    coded = _timed(timings, "entropy coding", model.latent_codec.compress, y)
    x_hat = _timed(timings, "synthesis transform", model.synthesize, coded["y_hat"])
    header = Header(model.config.name, weights_digest(model)[:DIGEST_BYTES], width, height)
    data = pack(header, coded["strings"])
    report = CodingReport(width, height, len(data), symbols=coded["symbols"], timings=timings)
    if estimate:
        likelihoods = model.latent_codec(y)["likelihoods"]
        report.estimated_bits = float(sum(bits(lik) for lik in likelihoods.values()))
    return data, to_uint8(x_hat[..., :height, :width]), report


def check_weights(header: Header, model: LearnedImageCodec) -> None:
    digest = weights_digest(model)[:DIGEST_BYTES]
    if header.model_id != model.config.name or header.weights_digest != digest:
        raise BitstreamError(
            f"file was encoded with model {header.model_id!r} (weights {header.weights_digest.hex()}), but the decoder "
            f"has {model.config.name!r} (weights {digest.hex()}); decode with the same weights")


@torch.no_grad()
def decode_bytes(model: LearnedImageCodec, data: bytes) -> tuple[np.ndarray, CodingReport]:
    """Decompress .kdic bytes with ``model`` (whose weights must match the file)."""
    model.eval()
    header, streams = unpack(data)
    check_weights(header, model)
    if len(streams) != 2:
        raise BitstreamError(f"expected 2 streams (y, z), found {len(streams)}")
    multiple = model.padding_multiple
    padded_h, padded_w = -(-header.height // multiple) * multiple, -(-header.width // multiple) * multiple
    y_shape = (1, model.config.transform.latent_channels, padded_h // 16, padded_w // 16)
    timings: dict[str, float] = {}
    try:
        decoded = _timed(timings, "entropy decoding", model.latent_codec.decompress, streams, y_shape)
    except (ValueError, RuntimeError) as exc:
        raise BitstreamError(f"entropy-coded data cannot be decoded ({exc})") from None
    x_hat = _timed(timings, "synthesis transform", model.synthesize, decoded["y_hat"])
    report = CodingReport(header.width, header.height, len(data), symbols=decoded["symbols"], timings=timings)
    return to_uint8(x_hat[..., : header.height, : header.width]), report
