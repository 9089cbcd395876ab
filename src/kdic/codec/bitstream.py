"""The .kdic container: a small, checked header around the entropy-coded streams.

Layout of format versions 2 to 4 (all integers little-endian; see docs/bitstream.md):

    magic "KDIC" | version u8 | model-id length u8 | model id (ASCII) | weights digest (8 bytes)
    | width u32 | height u32 | channels u8 (1 gray, 3 RGB) | entropy tile u16 | transform tile u16
    | lambda f32 (the rate point coded at; 0 if unknown)
    | content digest (8 bytes) | stream count u16 | stream lengths u32 x count | streams | CRC32 u32

Versions 3 and 4 have version 2's layout; their entropy parameters are computed with
order-independent arithmetic (``kdic.entropy.exact``), so they decode identically on every machine,
thread count and device; version 4 runs the pointwise parameter networks on the coded positions only
(``kdic.entropy.latent.ParameterPath``), which changes their snapping grids, hence its own number.
Versions 1 and 2 (still read) computed them in float32 on one thread: exact only on CPUs that
compute those floats as the encoder's did. Version 1 (still read) has no channels, tiles,
lambda or content digest, and a u8 stream count. The CRC
covers every byte before it, so any corruption is caught before a single symbol is decoded; sizes,
tiles and the model id are checked before anything is allocated or looked up, and a decoder
checks that there are exactly two streams (y, z) per entropy tile. The content digest binds the
header to the streams and to the weights: it hashes the header fields before it and the latent
the encoder coded, so a file decoded with other weights, or with any header field edited, is
refused instead of turned into garbage.
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass

from ..errors import BitstreamError
from ..models.config import MAX_LMBDA, NAME_PATTERN

MAGIC = b"KDIC"
FORMAT_VERSION = 4
READABLE_VERSIONS = (1, 2, 3, 4)
EXACT_VERSION = 3  # from this version on, entropy parameters come from exact (order-independent) arithmetic
PACKED_VERSION = 4  # from this version on, pointwise parameter networks run on the coded positions only
DIGEST_BYTES = 8
MAX_SIDE = 1 << 16  # pixels per side
MAX_PIXELS = 1 << 27  # 134M pixels, e.g. 16384 x 8192: what the tiled codec holds in about 1 GB
MAX_STREAMS = (1 << 16) - 1  # version 2: two per entropy tile
MAX_STREAMS_V1 = 16
TILE_STEP = 8  # tile sides are multiples of 8 latent units, so attention windows keep the whole-image grid
MAX_ENTROPY_TILE = 256  # latent units a side (4096 px): bounds the entropy decoder's memory whatever a file says
MAX_TRANSFORM_TILE = 128  # latent units a side (2048 px): bounds the synthesis transform's memory


@dataclass(frozen=True)
class Header:
    """What a decoder needs before touching the streams.

    Tiles are in latent units (16 pixels): the entropy tile is coded independently, the transform
    tile is synthesized with a margin of context. Version-1 files have neither (0: one latent,
    one synthesis for the whole image) and no content digest.
    """

    model_id: str
    weights_digest: bytes
    width: int
    height: int
    channels: int = 3
    entropy_tile: int = 128
    transform_tile: int = 64
    lmbda: float = 0.0
    content_digest: bytes = b"\x00" * DIGEST_BYTES
    version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if not NAME_PATTERN.fullmatch(self.model_id):
            raise BitstreamError(f"invalid model id {self.model_id[:80]!r} (lower-case letters, digits, '.', '_', '-')")
        if len(self.weights_digest) != DIGEST_BYTES:
            raise BitstreamError(f"weights digest must be {DIGEST_BYTES} bytes")
        check_image_size(self.width, self.height)
        if self.channels not in (1, 3):
            raise BitstreamError(f"invalid channel count {self.channels} (1 for gray, 3 for RGB)")
        if not (math.isfinite(self.lmbda) and 0 <= self.lmbda <= MAX_LMBDA):
            raise BitstreamError(f"invalid lambda {self.lmbda!r} (0 to {MAX_LMBDA})")
        if self.version == 1:
            return
        for what, tile, limit in (
            ("entropy", self.entropy_tile, MAX_ENTROPY_TILE),
            ("transform", self.transform_tile, MAX_TRANSFORM_TILE),
        ):
            if not (TILE_STEP <= tile <= limit and tile % TILE_STEP == 0):
                raise BitstreamError(f"invalid {what} tile {tile} (multiples of {TILE_STEP} up to {limit})")
        if len(self.content_digest) != DIGEST_BYTES:
            raise BitstreamError(f"content digest must be {DIGEST_BYTES} bytes")

    def bound_fields(self) -> bytes:
        """The fields the content digest covers: all of the header that says what the streams mean."""
        return b"|".join(
            [
                self.model_id.encode(),
                self.weights_digest,
                struct.pack(
                    "<IIBHHf",
                    self.width,
                    self.height,
                    self.channels,
                    self.entropy_tile,
                    self.transform_tile,
                    self.lmbda,
                ),
            ]
        )


def check_image_size(width: int, height: int) -> None:
    """Refuse empty or oversized images before anything is allocated for them."""
    if width < 1 or height < 1:
        raise BitstreamError(f"image size {width}x{height} is empty")
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise BitstreamError(
            f"image size {width}x{height} exceeds the limit of {MAX_SIDE} pixels a side and {MAX_PIXELS} pixels in all"
        )


def pack(header: Header, streams: list[bytes]) -> bytes:
    """Serialize a header and its streams (always the current format version), with the CRC32."""
    if not 1 <= len(streams) <= MAX_STREAMS:
        raise BitstreamError(f"a file holds 1 to {MAX_STREAMS} streams, got {len(streams)}")
    model_id = header.model_id.encode()
    parts = [
        MAGIC,
        struct.pack("<BB", FORMAT_VERSION, len(model_id)),
        model_id,
        header.weights_digest,
        struct.pack(
            "<IIBHHf",
            header.width,
            header.height,
            header.channels,
            header.entropy_tile,
            header.transform_tile,
            header.lmbda,
        ),
        header.content_digest,
        struct.pack("<H", len(streams)),
        struct.pack(f"<{len(streams)}I", *(len(s) for s in streams)),
        *streams,
    ]
    body = b"".join(parts)
    return body + struct.pack("<I", zlib.crc32(body))


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, size: int, what: str) -> bytes:
        if self.pos + size > len(self.data):
            raise BitstreamError(f"file is truncated (while reading the {what})")
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk


def unpack(data: bytes) -> tuple[Header, list[bytes]]:
    """Parse and validate a .kdic file; every failure is a ``BitstreamError`` with one clear line."""
    if len(data) == 0:
        raise BitstreamError("file is empty")
    if not data.startswith(MAGIC):
        raise BitstreamError("file is truncated" if MAGIC.startswith(data) else "not a kdic file (bad magic bytes)")
    reader = _Reader(data)
    reader.take(4, "magic")
    version, id_length = struct.unpack("<BB", reader.take(2, "format version"))
    if version not in READABLE_VERSIONS:
        raise BitstreamError(
            f"unsupported format version {version} (this kdic reads versions {', '.join(map(str, READABLE_VERSIONS))})"
        )
    if len(data) < 10:
        raise BitstreamError("file is truncated")
    stored_crc = struct.unpack("<I", data[-4:])[0]
    if zlib.crc32(data[:-4]) != stored_crc:
        raise BitstreamError("checksum mismatch: the file is corrupted or truncated")
    reader.data = data[:-4]
    model_id_bytes = reader.take(id_length, "model id")
    digest = reader.take(DIGEST_BYTES, "weights digest")
    width, height = struct.unpack("<II", reader.take(8, "image size"))
    fields: dict = {"version": version, "entropy_tile": 0, "transform_tile": 0, "content_digest": b""}
    if version >= 2:
        fields["channels"], fields["entropy_tile"], fields["transform_tile"], fields["lmbda"] = struct.unpack(
            "<BHHf", reader.take(9, "channels, tiles and lambda")
        )
        fields["content_digest"] = reader.take(DIGEST_BYTES, "content digest")
        (count,) = struct.unpack("<H", reader.take(2, "stream count"))
    else:
        (count,) = struct.unpack("<B", reader.take(1, "stream count"))
    try:
        model_id = model_id_bytes.decode("ascii")
    except UnicodeDecodeError:
        raise BitstreamError("model id is not ASCII") from None
    header = Header(model_id, digest, width, height, **fields)
    if not 1 <= count <= (MAX_STREAMS if version >= 2 else MAX_STREAMS_V1):
        raise BitstreamError(f"invalid stream count {count}")
    lengths = struct.unpack(f"<{count}I", reader.take(4 * count, "stream lengths"))
    streams = [reader.take(n, f"stream {i}") for i, n in enumerate(lengths)]
    if reader.pos != len(reader.data):
        raise BitstreamError(f"{len(reader.data) - reader.pos} unexpected bytes after the last stream")
    return header, streams


def describe(data: bytes) -> dict:
    """What ``kdic info`` shows of a .kdic file: its header and the size of each stream."""
    header, streams = unpack(data)
    return {
        "format_version": header.version,
        "bytes": len(data),
        "model": header.model_id,
        "weights_digest": header.weights_digest.hex(),
        "width": header.width,
        "height": header.height,
        "channels": header.channels,
        "entropy_tile": header.entropy_tile,
        "transform_tile": header.transform_tile,
        "lmbda": header.lmbda or None,
        "content_digest": header.content_digest.hex(),
        "bits_per_pixel": 8 * len(data) / (header.width * header.height),
        "stream_bytes": [len(s) for s in streams],
    }
