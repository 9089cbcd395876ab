"""The real codec: container format, image I/O, encode/decode pipeline."""

from ..lazy import lazy_exports

_EXPORTS = {
    "MAX_PIXELS": ".bitstream",
    "Header": ".bitstream",
    "pack": ".bitstream",
    "unpack": ".bitstream",
    "IMAGE_SUFFIXES": ".image_io",
    "read_image": ".image_io",
    "write_png": ".image_io",
    "CodingReport": ".pipeline",
    "decode_bytes": ".pipeline",
    "encode_image": ".pipeline",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = list(_EXPORTS)
