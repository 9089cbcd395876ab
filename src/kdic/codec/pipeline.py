"""Image -> model -> latent codec -> .kdic bytes, and back, in tiles of bounded memory.

Big photos are entropy-coded as independent latent tiles (``ENTROPY_TILE`` latent units, 2048
pixels a side) that share the file's two range-coded streams; the transforms run on smaller tiles
(``TRANSFORM_TILE``, 1024 pixels) that each see a margin of ``TILE_MARGIN`` latent units of context,
enough that tiled synthesis equals whole-image synthesis, so no seam shows. Kodak-size images are a
single tile of both kinds.

A variable-rate model codes at the lambda the caller picks; the header records it (as float32,
covered by the content digest) and the decoder reads it from there, so both sides derive the
per-channel gains from the same float32 value. The gains are per channel, so applying them per
tile is the same as applying them to the whole latent.
"""

from __future__ import annotations

import ctypes
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..checkpoint import weights_digest
from ..entropy import bits
from ..entropy.latent import ParameterPath
from ..errors import BitstreamError, ConfigError
from ..models import LearnedImageCodec
from .bitstream import DIGEST_BYTES, EXACT_VERSION, PACKED_VERSION, TILE_STEP, Header, pack, unpack
from .refine import check_refine_steps, refine_latent

ENTROPY_TILE = 128  # latent units per entropy tile side (2048 pixels): rate cost < 0.5% on 12 MP
TRANSFORM_TILE = 64  # latent units per transform tile side (1024 pixels): about 1 GB of working memory
TILE_MARGIN = 8  # latent units of context around a transform tile, a multiple of the attention windows
MAX_WHOLE_LATENT = 1 << 16  # latent units a format-1 file (one latent for the whole image) may have


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


_MALLOC_TRIM: Callable[[int], int] | None
try:
    _MALLOC_TRIM = ctypes.CDLL(None).malloc_trim  # glibc only
except (OSError, AttributeError, TypeError):
    _MALLOC_TRIM = None


def release_freed_memory() -> None:
    """Hand a finished tile's freed activations back to the system: glibc keeps them otherwise, and the
    process would grow with the number of tiles instead of staying at one tile's size."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def latent_size(model: LearnedImageCodec, height: int, width: int) -> tuple[int, int]:
    """(rows, cols) of y for an image padded to the model's ``padding_multiple``."""
    multiple, stride = model.padding_multiple, model.latent_stride
    return -(-height // multiple) * multiple // stride, -(-width // multiple) * multiple // stride


Box = tuple[int, int, int, int]  # latent rows r0:r1, columns c0:c1


def tile_grid(box: Box, tile: int) -> list[Box]:
    """The tiles of ``box`` in raster order, the order both sides code them in."""
    r0, r1, c0, c1 = box
    return [(r, min(r + tile, r1), c, min(c + tile, c1)) for r in range(r0, r1, tile) for c in range(c0, c1, tile)]


def entropy_tiles(latent: tuple[int, int], max_tile: int) -> list[Box]:
    """Entropy tiles of at most ``max_tile`` a side, balanced so that no thin strip is left over (a
    strip codes badly: its hyperprior sees little context). Both sides derive them from the header."""

    def ceil_div(a: int, b: int) -> int:
        return -(-a // b)

    def side(length: int) -> int:
        return ceil_div(ceil_div(length, ceil_div(length, max_tile)), TILE_STEP) * TILE_STEP

    rows, cols = latent
    return [
        (r, min(r + side(rows), rows), c, min(c + side(cols), cols))
        for r in range(0, rows, side(rows))
        for c in range(0, cols, side(cols))
    ]


def _with_margin(start: int, stop: int, limit: int) -> tuple[int, int]:
    return max(start - TILE_MARGIN, 0), min(stop + TILE_MARGIN, limit)


def _pixels(image: np.ndarray, rows: tuple[int, int], cols: tuple[int, int]) -> Tensor:
    """A region of the image, replicate-padded beyond its bottom and right edges, as (1, 3, h, w) in [0, 1]."""
    r = np.clip(np.arange(*rows), 0, image.shape[0] - 1)
    c = np.clip(np.arange(*cols), 0, image.shape[1] - 1)
    region = torch.from_numpy(np.ascontiguousarray(image[r[:, None], c[None, :]]))
    region = region[None, None].expand(1, 3, -1, -1) if image.ndim == 2 else region.permute(2, 0, 1)[None]
    return region.float().div_(255)


def _analyse(
    model: LearnedImageCodec, image: np.ndarray, box: Box, latent: tuple[int, int], lmbda: float | None
) -> Tensor:
    """y as coded at ``lmbda`` of one entropy tile, transform tile by transform tile, each from its pixels
    plus a margin."""
    y = torch.empty(1, model.config.transform.latent_channels, box[1] - box[0], box[3] - box[2])
    for r0, r1, c0, c1 in tile_grid(box, TRANSFORM_TILE):
        (top, bottom), (left, right) = _with_margin(r0, r1, latent[0]), _with_margin(c0, c1, latent[1])
        stride = model.latent_stride
        y_tile = model.analyze(_pixels(image, (stride * top, stride * bottom), (stride * left, stride * right)), lmbda)
        y[..., r0 - box[0] : r1 - box[0], c0 - box[2] : c1 - box[2]] = y_tile[
            ..., r0 - top : r1 - top, c0 - left : c1 - left
        ]
        del y_tile
        release_freed_memory()
    return y


def _refine(
    model: LearnedImageCodec, image: np.ndarray, box: Box, y: Tensor, lmbda: float | None, steps: int
) -> Tensor:
    """``refine_latent`` on one entropy tile, against the tile's pixels (those inside the image)."""
    stride = model.latent_stride
    top, left = stride * box[0], stride * box[2]
    pixels = _pixels(image, (top, stride * box[1]), (left, stride * box[3]))
    valid = (min(pixels.shape[-2], image.shape[0] - top), min(pixels.shape[-1], image.shape[1] - left))
    return refine_latent(model, pixels, valid, y, lmbda, steps)


@torch.no_grad()
def synthesize_image(
    model: LearnedImageCodec,
    y_hat: Tensor,
    height: int,
    width: int,
    channels: int,
    tile: int,
    lmbda: float | None = None,
) -> np.ndarray:
    """Decoded pixels, tile by tile (each with a margin of latent context), cropped to the image.

    A gray image's three reconstructed channels are averaged: the input had them equal.
    """
    out = np.empty((height, width) if channels == 1 else (height, width, 3), dtype=np.uint8)
    rows, cols = y_hat.shape[-2:]
    for r0, r1, c0, c1 in tile_grid((0, rows, 0, cols), tile):
        (top, bottom), (left, right) = _with_margin(r0, r1, rows), _with_margin(c0, c1, cols)
        x_hat = model.synthesize(y_hat[..., top:bottom, left:right], lmbda)
        stride = model.latent_stride
        y0, x0 = stride * r0, stride * c0
        h, w = min(stride * (r1 - r0), height - y0), min(stride * (c1 - c0), width - x0)
        region = x_hat[..., stride * (r0 - top) :, stride * (c0 - left) :][..., :h, :w]
        if channels == 1:
            out[y0 : y0 + h, x0 : x0 + w] = to_uint8(region.mean(dim=1, keepdim=True))[..., 0]
        else:
            out[y0 : y0 + h, x0 : x0 + w] = to_uint8(region)
        del x_hat, region
        release_freed_memory()
    return out


def _hash_latent(digest, y_hat: Tensor) -> None:
    """Add a tile's decoded latent to the content digest (``+ 0.0`` makes -0.0 and 0.0 hash alike)."""
    digest.update((y_hat + 0.0).contiguous().numpy().tobytes())


@torch.no_grad()
def coded_lmbda(model: LearnedImageCodec, lmbda: float | None) -> float | None:
    """The lambda a variable-rate model codes at: ``lmbda`` rounded to the header's float32 (checked
    against the model's range); None for a fixed-rate model, which refuses any ``lmbda``."""
    model.check_lmbda(lmbda)
    return None if lmbda is None else float(np.float32(lmbda))


def header_rate(model: LearnedImageCodec, header: Header) -> float | None:
    """The lambda to decode ``header`` at: the header's for a variable-rate model, none for a fixed-rate one."""
    if not model.variable_rate:
        return None
    try:
        model.check_lmbda(header.lmbda)
    except ConfigError as exc:
        raise BitstreamError(f"the file's {exc}") from None
    return header.lmbda


@torch.no_grad()
def encode_image(
    model: LearnedImageCodec,
    image: np.ndarray,
    estimate: bool = True,
    reconstruct: bool = True,
    entropy_tile: int = ENTROPY_TILE,
    lmbda: float | None = None,
    refine_steps: int = 0,
) -> tuple[bytes, np.ndarray | None, CodingReport]:
    """Compress an (H, W, 3) or gray (H, W) uint8 image, tile by tile in bounded memory.

    ``lmbda`` is the rate point of a variable-rate model (required there, refused by fixed-rate
    ones, whose header records the weights' own lambda). Returns (file bytes, the decoder's
    reconstruction or None, report); the rate estimate and the reconstruction cost extra passes,
    so they are computed only when asked for. ``refine_steps`` > 0 refines each tile's latent for the
    decoder before coding it (``kdic.codec.refine``): slower encoding, the same decoder.
    """
    model.eval()
    lmbda = coded_lmbda(model, lmbda)
    check_refine_steps(model, refine_steps)
    height, width = image.shape[:2]
    header = Header(
        model.config.name,
        weights_digest(model)[:DIGEST_BYTES],
        width,
        height,
        1 if image.ndim == 2 else 3,
        entropy_tile,
        TRANSFORM_TILE,
        float(np.float32(lmbda if lmbda is not None else model.lmbda or 0.0)),
    )
    latent = latent_size(model, height, width)
    timings: dict[str, float] = {}
    streams: list[bytes] = []
    digest = hashlib.sha256(header.bound_fields())
    y_hat = torch.empty(1, model.config.transform.latent_channels, *latent) if reconstruct else None
    estimated_bits, symbols = 0.0, 0
    for box in entropy_tiles(latent, entropy_tile):
        y = _timed(timings, "analysis transform", _analyse, model, image, box, latent, lmbda)
        if refine_steps:
            y = _timed(timings, "latent refinement", _refine, model, image, box, y, lmbda, refine_steps)
        coded = _timed(timings, "entropy coding", model.compress_latent, y)
        streams += coded["strings"]
        symbols += coded["symbols"]
        _hash_latent(digest, coded["y_hat"])
        if y_hat is not None:
            y_hat[..., box[0] : box[1], box[2] : box[3]] = coded["y_hat"]
        if estimate:
            likelihoods = _timed(timings, "rate estimate", model.latent_likelihoods, y)
            estimated_bits += float(sum(bits(lik) for lik in likelihoods.values()))
        release_freed_memory()
    data = pack(replace(header, content_digest=digest.digest()[:DIGEST_BYTES]), streams)
    report = CodingReport(width, height, len(data), estimated_bits if estimate else None, symbols, timings)
    reconstruction = None
    if y_hat is not None:
        reconstruction = _timed(
            timings,
            "synthesis transform",
            synthesize_image,
            model,
            y_hat,
            height,
            width,
            header.channels,
            TRANSFORM_TILE,
            lmbda,
        )
    return data, reconstruction, report


def parameter_path(version: int) -> ParameterPath:
    """How a file of format ``version`` computes its entropy parameters (what kdic writes: the newest)."""
    return ParameterPath(exact=version >= EXACT_VERSION, packed=version >= PACKED_VERSION)


def check_weights(header: Header, model: LearnedImageCodec) -> None:
    digest = weights_digest(model)[:DIGEST_BYTES]
    if header.model_id != model.config.name or header.weights_digest != digest:
        raise BitstreamError(
            f"file was encoded with model {header.model_id!r} (weights {header.weights_digest.hex()}), but the decoder "
            f"has {model.config.name!r} (weights {digest.hex()}); decode with the same weights"
        )


def _decode_latent(model: LearnedImageCodec, header: Header, streams: list[bytes]) -> tuple[Tensor, int]:
    """y_hat of the whole image: two streams per entropy tile, each used up exactly, matching the digest."""
    latent = latent_size(model, header.height, header.width)
    if header.version == 1 and latent[0] * latent[1] > MAX_WHOLE_LATENT:
        raise BitstreamError(
            f"format-1 file of {header.width}x{header.height}: its single latent exceeds the "
            f"{MAX_WHOLE_LATENT * model.latent_stride**2} pixels decoded in one piece; re-encode it"
        )
    boxes = entropy_tiles(latent, header.entropy_tile or max(latent))
    layout = model.config.family.streams
    per_tile = len(layout)
    if len(streams) != per_tile * len(boxes):
        raise BitstreamError(
            f"expected {per_tile * len(boxes)} streams ({' and '.join(layout)} of {len(boxes)} tiles) "
            f"for a {header.width}x{header.height} image, found {len(streams)}"
        )
    channels = model.config.transform.latent_channels
    y_hat = torch.empty(1, channels, *latent)
    digest = hashlib.sha256(header.bound_fields())
    symbols = 0
    for i, (r0, r1, c0, c1) in enumerate(boxes):
        try:
            decoded = model.decompress_latent(
                streams[per_tile * i : per_tile * (i + 1)],
                (1, channels, r1 - r0, c1 - c0),
                parameter_path(header.version),
            )
        except (ValueError, RuntimeError) as exc:
            raise BitstreamError(f"entropy-coded data of tile {i} cannot be decoded ({exc})") from None
        _hash_latent(digest, decoded["y_hat"])
        y_hat[..., r0:r1, c0:c1] = decoded["y_hat"]
        symbols += decoded["symbols"]
        release_freed_memory()
    if header.version >= 2 and digest.digest()[:DIGEST_BYTES] != header.content_digest:
        raise BitstreamError(
            "the decoded latent does not match the encoder's: the file was made with other "
            "weights or its header was edited"
        )
    return y_hat, symbols


@torch.no_grad()
def decode_bytes(model: LearnedImageCodec, data: bytes) -> tuple[np.ndarray, CodingReport]:
    """Decompress .kdic bytes with ``model`` (whose weights must match the file), tile by tile."""
    model.eval()
    header, streams = unpack(data)
    check_weights(header, model)
    lmbda = header_rate(model, header)
    timings: dict[str, float] = {}
    y_hat, symbols = _timed(timings, "entropy decoding", _decode_latent, model, header, streams)
    image = _timed(
        timings,
        "synthesis transform",
        synthesize_image,
        model,
        y_hat,
        header.height,
        header.width,
        header.channels,
        header.transform_tile or TRANSFORM_TILE,
        lmbda,
    )
    return image, CodingReport(header.width, header.height, len(data), symbols=symbols, timings=timings)
