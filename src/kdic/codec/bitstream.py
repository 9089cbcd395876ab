"""The .kdic container: a small, checked header around the entropy-coded streams.

Layout (all integers little-endian; see docs/bitstream.md):

    magic "KDIC" | version u8 | model-id length u8 | model id (UTF-8) | weights digest (8 bytes)
    | width u32 | height u32 | stream count u8 | stream lengths u32 x count | streams | CRC32 u32

The CRC covers every byte before it, so any corruption is caught before a single symbol is
decoded; sizes are checked against ``MAX_PIXELS`` before anything is allocated.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from ..errors import BitstreamError

MAGIC = b"KDIC"
FORMAT_VERSION = 1
DIGEST_BYTES = 8
MAX_PIXELS = 1 << 28  # 268M pixels, e.g. 16384 x 16384
MAX_STREAMS = 16


@dataclass(frozen=True)
class Header:
    model_id: str
    weights_digest: bytes
    width: int
    height: int

    def __post_init__(self) -> None:
        if not 1 <= len(self.model_id.encode()) <= 255:
            raise BitstreamError("model id must be 1 to 255 bytes of UTF-8")
        if len(self.weights_digest) != DIGEST_BYTES:
            raise BitstreamError(f"weights digest must be {DIGEST_BYTES} bytes")
        check_image_size(self.width, self.height)


def check_image_size(width: int, height: int) -> None:
    if width < 1 or height < 1:
        raise BitstreamError(f"image size {width}x{height} is empty")
    if width * height > MAX_PIXELS:
        raise BitstreamError(f"image size {width}x{height} exceeds the limit of {MAX_PIXELS} pixels")


def pack(header: Header, streams: list[bytes]) -> bytes:
    """Serialize a header and its streams, with the trailing CRC32."""
    if not 1 <= len(streams) <= MAX_STREAMS:
        raise BitstreamError(f"a file holds 1 to {MAX_STREAMS} streams, got {len(streams)}")
    model_id = header.model_id.encode()
    parts = [MAGIC, struct.pack("<BB", FORMAT_VERSION, len(model_id)), model_id, header.weights_digest,
             struct.pack("<IIB", header.width, header.height, len(streams)),
             struct.pack(f"<{len(streams)}I", *(len(s) for s in streams)), *streams]
    body = b"".join(parts)
    return body + struct.pack("<I", zlib.crc32(body))


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, size: int, what: str) -> bytes:
        if self.pos + size > len(self.data):
            raise BitstreamError(f"file is truncated (while reading the {what})")
        chunk = self.data[self.pos: self.pos + size]
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
    if version != FORMAT_VERSION:
        raise BitstreamError(f"unsupported format version {version} (this kdic reads version {FORMAT_VERSION})")
    if len(data) < 10:
        raise BitstreamError("file is truncated")
    stored_crc = struct.unpack("<I", data[-4:])[0]
    if zlib.crc32(data[:-4]) != stored_crc:
        raise BitstreamError("checksum mismatch: the file is corrupted or truncated")
    reader.data = data[:-4]
    model_id_bytes = reader.take(id_length, "model id")
    digest = reader.take(DIGEST_BYTES, "weights digest")
    width, height, count = struct.unpack("<IIB", reader.take(9, "image size"))
    check_image_size(width, height)
    if not 1 <= count <= MAX_STREAMS:
        raise BitstreamError(f"invalid stream count {count}")
    lengths = struct.unpack(f"<{count}I", reader.take(4 * count, "stream lengths"))
    streams = [reader.take(n, f"stream {i}") for i, n in enumerate(lengths)]
    if reader.pos != len(reader.data):
        raise BitstreamError(f"{len(reader.data) - reader.pos} unexpected bytes after the last stream")
    try:
        model_id = model_id_bytes.decode()
    except UnicodeDecodeError:
        raise BitstreamError("model id is not valid UTF-8") from None
    return Header(model_id, digest, width, height), streams
